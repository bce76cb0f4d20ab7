//! The gateway's one error type and the envelope every error body gets.
//!
//! [`ApiError`] is the only place an HTTP status is chosen. Its response
//! carries an [`ErrorReport`] extension rather than a body: the
//! [`error_envelope`] middleware, which knows the path and request id, writes
//! the contract's body and logs the failure inside the request's span. The same
//! middleware wraps any other error response (axum's 404/405, a 413 from the
//! body limit, a caught panic), so no plain-text error ever leaves the gateway.

use axum::{
    Json,
    extract::{Request, rejection::JsonRejection},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde::Serialize;
use shared::{FieldError, ServiceError, rpc::CallError};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// Everything that can go wrong in a request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A contract error: validation, or a worker's error reply.
    #[error("{0}")]
    Contract(#[from] ServiceError),
    /// No usable bearer token.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// No worker subscribes to the subject.
    #[error("no worker serves {0}")]
    NoWorker(&'static str),
    /// The gateway is not connected to NATS.
    #[error("NATS is not connected")]
    NatsDown,
    /// A worker took the request but did not answer in time.
    #[error("{0} did not answer in time")]
    Timeout(&'static str),
    /// Anything unexpected; the detail is logged, never sent.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<CallError> for ApiError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Service(e) => Self::Contract(e),
            CallError::NoResponders(subject) => Self::NoWorker(subject),
            CallError::Timeout(subject, _) => Self::Timeout(subject),
            CallError::Disconnected => Self::NatsDown,
            e @ (CallError::Transport(..) | CallError::Decode(..)) => Self::Internal(e.into()),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        // A body of the wrong shape is the client's malformed input: 400, as
        // every validation error (axum would say 422).
        let status = match &rejection {
            JsonRejection::JsonDataError(_) => 400,
            other => other.status().as_u16(),
        };
        let message = match &rejection {
            JsonRejection::JsonSyntaxError(_) => "request body is not valid JSON".to_owned(),
            JsonRejection::JsonDataError(e) => {
                // serde's text ("missing field `x` at line 1 column 2") is
                // useful, but it quotes wrong values: a password sent as a
                // number would be echoed and logged. The values go.
                format!(
                    "request body does not match the expected shape: {}",
                    shared::error::redact_values(&e.body_text())
                )
            }
            JsonRejection::MissingJsonContentType(_) => {
                "expected `Content-Type: application/json`".to_owned()
            }
            _ if status == 413 => "request body is too large".to_owned(),
            _ => "could not read the request body".to_owned(),
        };
        Self::Contract(ServiceError::new(status, message))
    }
}

/// The error as the middleware will render it, plus what only the log sees.
#[derive(Debug, Clone)]
pub struct ErrorReport {
    pub error: ServiceError,
    /// Logged, never sent.
    pub detail: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (error, detail) = match self {
            Self::Contract(e) => (e, None),
            Self::Unauthorized(message) => (ServiceError::unauthorized(message), None),
            Self::NoWorker(subject) => (
                ServiceError {
                    retry_after: Some(1),
                    ..ServiceError::unavailable("service unavailable")
                },
                Some(format!("no responders on {subject}")),
            ),
            Self::NatsDown => (
                ServiceError {
                    retry_after: Some(1),
                    ..ServiceError::unavailable("service unavailable")
                },
                Some("not connected to NATS".to_owned()),
            ),
            Self::Timeout(subject) => (
                ServiceError::new(504, "upstream timed out"),
                Some(format!("no reply on {subject} in time")),
            ),
            Self::Internal(e) => (ServiceError::internal(), Some(format!("{e:#}"))),
        };
        report(error, detail)
    }
}

fn report(error: ServiceError, detail: Option<String>) -> Response {
    let status =
        StatusCode::from_u16(error.status_code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = status.into_response();
    response
        .extensions_mut()
        .insert(ErrorReport { error, detail });
    response
}

/// The contract's error body: every error reply has this shape.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    #[schema(example = 409)]
    pub status_code: u16,
    #[schema(example = "Conflict")]
    pub error: &'static str,
    #[schema(example = "email already registered")]
    pub message: String,
    /// Every failing field, for validation errors (400).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<FieldError>,
    #[schema(example = "/api/auth/signup")]
    pub path: String,
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    pub request_id: String,
}

/// Renders every error response in the contract's shape and logs it.
pub async fn error_envelope(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let request_id = request
        .headers()
        .get(crate::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, _body) = response.into_parts();
    let ErrorReport { error, detail } =
        parts
            .extensions
            .remove::<ErrorReport>()
            .unwrap_or_else(|| ErrorReport {
                error: ServiceError::new(status.as_u16(), default_message(status)),
                detail: None,
            });
    if status.is_server_error() {
        tracing::error!(status = status.as_u16(), detail, message = %error.message, "request failed");
    } else {
        tracing::info!(status = status.as_u16(), message = %error.message, "request rejected");
    }
    // A 500 never says more than its generic message.
    let message = if error.status_code == 500 {
        "internal error".to_owned()
    } else {
        error.message
    };
    let body = ErrorBody {
        status_code: status.as_u16(),
        error: shared::error::reason_phrase(status.as_u16()),
        message,
        details: error.details,
        path,
        timestamp: OffsetDateTime::now_utc(),
        request_id,
    };
    if let Some(secs) = error.retry_after {
        parts
            .headers
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    if status == StatusCode::UNAUTHORIZED {
        parts
            .headers
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    let mut response = Json(body).into_response();
    *response.status_mut() = status;
    // Keep the original headers that matter (e.g. `Allow` on a 405).
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE {
            response.headers_mut().append(name, value.clone());
        }
    }
    response
}

fn default_message(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "no such route",
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed on this route",
        StatusCode::PAYLOAD_TOO_LARGE => "request body is too large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported content type",
        StatusCode::REQUEST_TIMEOUT => "request timed out",
        s if s.is_server_error() => "internal error",
        _ => "bad request",
    }
}
