//! The gateway's one error type and the envelope every error body gets.
//!
//! [`ApiError`] is the only place an HTTP status is chosen: the `match` in
//! its `IntoResponse` (and `upstream_reply`'s, for what a NATS call
//! returned) says which error gives which status, what the reply says and
//! what only the log sees. Its response carries an [`ErrorReport`]
//! extension rather than a body: the [`error_envelope`] middleware, which
//! knows the path and request id, writes the contract's body and logs the
//! failure inside the request's span. The same middleware wraps any error
//! response no `ApiError` made (axum's 405 for a wrong method), so no
//! plain-text error ever leaves the gateway.

use axum::{
    Json,
    extract::{
        Request,
        rejection::{
            BytesRejection, FailedToBufferBody, JsonRejection, PathRejection, QueryRejection,
        },
    },
    http::{HeaderValue, StatusCode, header, response::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};
use runtime::rpc::CallError;
use serde::Serialize;
use shared::{FieldError, ServiceError};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// Everything that can go wrong in a request.
///
/// Where the client is told what went wrong, the `#[error]` text is the
/// reply's message; for [`Upstream`](Self::Upstream) and
/// [`Internal`](Self::Internal) it is only logged.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Input that does not parse: a body that is not JSON or not of the
    /// expected shape, a path or query value. The message says what is wrong,
    /// never the value sent.
    #[error("{0}")]
    BadRequest(String),
    /// A body that parsed but broke its `validator` rules.
    #[error("validation failed")]
    Validation(#[from] validator::ValidationErrors),
    /// No usable bearer token.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// A valid token whose caller may not use the route.
    #[error("{0}")]
    Forbidden(&'static str),
    /// An ADMIN whose session has not proved a second factor, where
    /// `mfa.require_for_admin` demands one.
    #[error("an ADMIN must sign in with a second factor: enrol one at /account")]
    AdminNeedsSecondFactor,
    /// A protected upstream that requires a second factor (or a recent
    /// one: `max_age` seconds) the session has not proved: 401 with RFC
    /// 9470's `insufficient_user_authentication` challenge.
    #[error("a second factor is required for this tool")]
    StepUpRequired { max_age: Option<u64> },
    /// No route has the request's path.
    #[error("no such route")]
    NoRoute,
    /// A body over `http.max_body_bytes`.
    #[error("request body is too large")]
    PayloadTooLarge,
    /// A body not declared as JSON.
    #[error("expected `Content-Type: application/json`")]
    UnsupportedMediaType,
    /// The whole request outlasted `http.request_timeout_ms`.
    #[error("request timed out")]
    TimedOut,
    /// A protected upstream refused the connection or broke it off; the
    /// cause is logged.
    #[error("upstream unavailable")]
    BadGateway(String),
    /// A protected upstream sent no response head within its route's
    /// `timeout_ms`.
    #[error("upstream timed out")]
    UpstreamTimedOut,
    /// `/readyz`: what does not answer (`nats`, or worker services).
    #[error("not ready: {} unavailable", .0.join(", "))]
    NotReady(Vec<String>),
    /// Whatever a NATS call returned instead of its reply, a worker's error
    /// reply included.
    #[error(transparent)]
    Upstream(#[from] CallError),
    /// Anything unexpected; the detail is logged, never sent.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<JsonRejection> for ApiError {
    /// What `axum::Json::from_bytes` refuses. The [`Json`](crate::extract::Json)
    /// extractor checks the content type and reads the body itself, so
    /// only a syntax or a data error gets here.
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonSyntaxError(_) => {
                Self::BadRequest("request body is not valid JSON".to_owned())
            }
            // A body of the wrong shape is the client's malformed input: 400,
            // as every validation error (axum would say 422). serde's text
            // ("missing field `x` at line 1 column 2") is useful, but it
            // quotes wrong values: a password sent as a number would be
            // echoed and logged. The values go.
            JsonRejection::JsonDataError(e) => Self::BadRequest(format!(
                "request body does not match the expected shape: {}",
                shared::error::redact_values(&e.body_text())
            )),
            // `JsonRejection` is non-exhaustive; anything else is a bug here.
            other => Self::Internal(anyhow::anyhow!("unexpected JSON rejection: {other}")),
        }
    }
}

impl From<BytesRejection> for ApiError {
    /// Reading a body: over the limit of `DefaultBodyLimit`, or cut short.
    fn from(rejection: BytesRejection) -> Self {
        match rejection {
            BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_)) => {
                Self::PayloadTooLarge
            }
            _ => Self::BadRequest("could not read the request body".to_owned()),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        match rejection {
            PathRejection::FailedToDeserializePathParams(e) => {
                Self::BadRequest(format!("invalid path parameter: {}", e.body_text()))
            }
            // No parameters on a route that declares some: a routing bug.
            other => Self::Internal(anyhow::anyhow!("path extraction: {other}")),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::BadRequest(format!("invalid query string: {}", rejection.body_text()))
    }
}

/// The error as the middleware will render it, plus what only the log sees.
#[derive(Debug, Clone)]
pub struct ErrorReport {
    pub error: ServiceError,
    /// Logged, never sent.
    pub detail: Option<String>,
    /// Logged at debug level only: a refusal of admission control.
    pub quiet: bool,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        use StatusCode as S;
        let challenge = self.challenge();
        let (status, reply) = match self {
            Self::BadRequest(message) => (S::BAD_REQUEST, Reply::new(message)),
            Self::Validation(errors) => (S::BAD_REQUEST, Reply::from(ServiceError::from(errors))),
            Self::Unauthorized(message) => (S::UNAUTHORIZED, Reply::new(message)),
            Self::Forbidden(message) => (S::FORBIDDEN, Reply::new(message)),
            e @ Self::AdminNeedsSecondFactor => (S::FORBIDDEN, Reply::new(e.to_string())),
            e @ Self::StepUpRequired { .. } => (S::UNAUTHORIZED, Reply::new(e.to_string())),
            e @ Self::NoRoute => (S::NOT_FOUND, Reply::new(e.to_string())),
            e @ Self::PayloadTooLarge => (S::PAYLOAD_TOO_LARGE, Reply::new(e.to_string())),
            e @ Self::UnsupportedMediaType => {
                (S::UNSUPPORTED_MEDIA_TYPE, Reply::new(e.to_string()))
            }
            e @ Self::TimedOut => (S::GATEWAY_TIMEOUT, Reply::new(e.to_string())),
            Self::BadGateway(cause) => (
                S::BAD_GATEWAY,
                Reply::new("upstream unavailable").log(cause),
            ),
            e @ Self::UpstreamTimedOut => (S::GATEWAY_TIMEOUT, Reply::new(e.to_string())),
            e @ Self::NotReady(_) => (S::SERVICE_UNAVAILABLE, Reply::new(e.to_string())),
            Self::Upstream(e) => upstream_reply(e),
            Self::Internal(e) => (S::INTERNAL_SERVER_ERROR, Reply::internal(format!("{e:#}"))),
        };
        let mut response = status.into_response();
        if let Some(challenge) = challenge {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        response.extensions_mut().insert(ErrorReport {
            error: ServiceError {
                details: reply.details,
                retry_after: reply.retry_after,
                ..ServiceError::new(status.as_u16(), reply.message)
            },
            detail: reply.detail,
            quiet: reply.quiet,
        });
        response
    }
}

impl ApiError {
    /// The `WWW-Authenticate` of an error that asks for more than the plain
    /// `Bearer` the envelope gives every other 401.
    fn challenge(&self) -> Option<HeaderValue> {
        let Self::StepUpRequired { max_age } = self else {
            return None;
        };
        let mut value = format!(
            "Bearer error=\"insufficient_user_authentication\", error_description=\"{self}\""
        );
        if let Some(max_age) = max_age {
            value.push_str(&format!(", max_age={max_age}"));
        }
        HeaderValue::try_from(value).ok()
    }
}

/// The status and reply for what a NATS call returned instead of its reply.
fn upstream_reply(error: CallError) -> (StatusCode, Reply) {
    use StatusCode as S;
    match error {
        // A worker's error reply passes through with its status.
        CallError::Service(e) => match worker_status(e.status_code) {
            Some(status) => (status, Reply::from(e)),
            None => (
                S::INTERNAL_SERVER_ERROR,
                Reply::internal(format!("worker error reply without an error status: {e}")),
            ),
        },
        // Nobody to ask, or no way to ask: the client may retry soon.
        // Which subject, and why, is for the log.
        e @ (CallError::NoResponders(_) | CallError::Disconnected) => (
            S::SERVICE_UNAVAILABLE,
            Reply {
                retry_after: Some(1),
                ..Reply::new("service unavailable")
            }
            .log(e),
        ),
        e @ CallError::Timeout(..) => (S::GATEWAY_TIMEOUT, Reply::new("upstream timed out").log(e)),
        // Admission control's refusal: load, not a fault. Counted in
        // metrics, logged at debug only (a flood must not become a
        // flood of log lines).
        CallError::Refused(e) => match worker_status(e.status_code) {
            Some(status) => (
                status,
                Reply {
                    quiet: true,
                    ..Reply::from(e)
                },
            ),
            None => (
                S::INTERNAL_SERVER_ERROR,
                Reply::internal(format!("refusal without an error status: {e}")),
            ),
        },
        e @ (CallError::Transport(..) | CallError::Decode(..)) => {
            (S::INTERNAL_SERVER_ERROR, Reply::internal(e.to_string()))
        }
    }
}

/// What an error's reply says besides its status, and what only the log
/// sees. The status is not here: the matches above choose it.
struct Reply {
    message: String,
    details: Vec<FieldError>,
    retry_after: Option<u64>,
    detail: Option<String>,
    quiet: bool,
}

impl Reply {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            details: Vec::new(),
            retry_after: None,
            detail: None,
            quiet: false,
        }
    }

    /// A 500's reply: nothing about the cause, which goes to the log.
    fn internal(detail: String) -> Self {
        Self::new("internal error").log(detail)
    }

    fn log(self, detail: impl ToString) -> Self {
        Self {
            detail: Some(detail.to_string()),
            ..self
        }
    }
}

impl From<ServiceError> for Reply {
    /// Its message, fields and retry hint; its status is the caller's to
    /// keep or not.
    fn from(e: ServiceError) -> Self {
        Self {
            message: e.message,
            details: e.details,
            retry_after: e.retry_after,
            detail: None,
            quiet: false,
        }
    }
}

/// A worker's error status, if it is one. An error reply that claims, say,
/// 200 must not leave the gateway as a success without a body.
fn worker_status(code: u16) -> Option<StatusCode> {
    StatusCode::from_u16(code)
        .ok()
        .filter(|s| s.is_client_error() || s.is_server_error())
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

/// Marks an error response that is a page of the web app (its "forbidden",
/// "not found" or "not built" page, HTML for a person): the envelope leaves
/// its body alone.
#[derive(Debug, Clone, Copy)]
pub struct PageResponse;

/// Marks admission control's refusal (503/429 before NATS): the request's
/// response line is logged at debug level only, as its error is.
#[derive(Debug, Clone, Copy)]
pub struct Refused;

/// Marks a response that came from a protected upstream through the proxy:
/// the envelope leaves it as the upstream sent it.
#[derive(Debug, Clone, Copy)]
pub struct Proxied;

/// Renders every error response in the contract's shape and logs it
/// inside the request's span, except a page of the web app
/// ([`PageResponse`]) and a protected upstream's answer ([`Proxied`]).
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
    if response.extensions().get::<Proxied>().is_some() {
        // A protected upstream's own answer, whatever its status.
        return response;
    }
    if response.extensions().get::<PageResponse>().is_some() {
        tracing::info!(
            status = status.as_u16(),
            "page answered with an error status"
        );
        return response;
    }
    let (mut parts, _body) = response.into_parts();
    let report = parts
        .extensions
        .remove::<ErrorReport>()
        .unwrap_or_else(|| ErrorReport {
            error: ServiceError::new(status.as_u16(), default_message(status)),
            detail: None,
            quiet: false,
        });
    log(status, &report);
    envelope(status, parts, report, path, request_id)
}

/// One line per error response: debug for admission control's refusals,
/// error (with the detail) for a 5xx, info for the rest.
fn log(status: StatusCode, report: &ErrorReport) {
    let ErrorReport {
        error,
        detail,
        quiet,
    } = report;
    if *quiet {
        tracing::debug!(status = status.as_u16(), message = %error.message, "request refused");
    } else if status.is_server_error() {
        tracing::error!(status = status.as_u16(), detail = detail.as_deref(), message = %error.message, "request failed");
    } else {
        tracing::info!(status = status.as_u16(), message = %error.message, "request rejected");
    }
}

/// The response with the contract's [`ErrorBody`], its `Retry-After` and
/// `WWW-Authenticate`, and the original headers that matter.
fn envelope(
    status: StatusCode,
    mut parts: Parts,
    ErrorReport { error, quiet, .. }: ErrorReport,
    path: String,
    request_id: String,
) -> Response {
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
    // A challenge of the error's own (a step-up's) stays.
    if status == StatusCode::UNAUTHORIZED && !parts.headers.contains_key(header::WWW_AUTHENTICATE) {
        parts
            .headers
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    let mut response = Json(body).into_response();
    *response.status_mut() = status;
    if quiet {
        response.extensions_mut().insert(Refused);
    }
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn rendered(error: ApiError) -> (u16, ErrorReport) {
        let response = error.into_response();
        let report = response.extensions().get::<ErrorReport>().cloned().unwrap();
        (response.status().as_u16(), report)
    }

    #[test]
    fn each_error_has_its_status_and_its_message() {
        let mut invalid = validator::ValidationErrors::new();
        invalid.add(
            "first_name",
            validator::ValidationError::new("length").with_message("is too long".into()),
        );
        let table: Vec<(ApiError, u16, &str)> = vec![
            (ApiError::BadRequest("bad".into()), 400, "bad"),
            (ApiError::Validation(invalid), 400, "validation failed"),
            (
                ApiError::Unauthorized("token expired"),
                401,
                "token expired",
            ),
            (
                ApiError::Forbidden("admin role required"),
                403,
                "admin role required",
            ),
            (
                ApiError::AdminNeedsSecondFactor,
                403,
                "an ADMIN must sign in with a second factor: enrol one at /account",
            ),
            (
                ApiError::StepUpRequired { max_age: None },
                401,
                "a second factor is required for this tool",
            ),
            (ApiError::NoRoute, 404, "no such route"),
            (ApiError::PayloadTooLarge, 413, "request body is too large"),
            (
                ApiError::UnsupportedMediaType,
                415,
                "expected `Content-Type: application/json`",
            ),
            (ApiError::TimedOut, 504, "request timed out"),
            (
                ApiError::BadGateway("connection refused".into()),
                502,
                "upstream unavailable",
            ),
            (ApiError::UpstreamTimedOut, 504, "upstream timed out"),
            (
                ApiError::NotReady(vec!["nats".into()]),
                503,
                "not ready: nats unavailable",
            ),
            (
                CallError::Service(ServiceError::conflict("email already registered")).into(),
                409,
                "email already registered",
            ),
            (
                CallError::Service(ServiceError::new(410, "gone")).into(),
                410,
                "gone",
            ),
            (
                CallError::Service(ServiceError::too_many_requests(7)).into(),
                429,
                "too many attempts, retry later",
            ),
            (
                CallError::Service(ServiceError::new(200, "fine")).into(),
                500,
                "internal error",
            ),
            (
                CallError::NoResponders("auth.login").into(),
                503,
                "service unavailable",
            ),
            (CallError::Disconnected.into(), 503, "service unavailable"),
            (
                CallError::Timeout("auth.login", Duration::from_secs(5)).into(),
                504,
                "upstream timed out",
            ),
            (
                CallError::Transport("auth.login", "broken".into()).into(),
                500,
                "internal error",
            ),
            (
                CallError::Decode("auth.login", "bad reply".into()).into(),
                500,
                "internal error",
            ),
            (anyhow::anyhow!("boom").into(), 500, "internal error"),
        ];
        for (error, status, message) in table {
            let name = format!("{error:?}");
            let (got, report) = rendered(error);
            assert_eq!(got, status, "{name}");
            assert_eq!(report.error.status_code, status, "{name}");
            assert_eq!(report.error.message, message, "{name}");
        }
    }

    #[test]
    fn a_step_up_answers_rfc_9470s_challenge_with_max_age_only_when_set() {
        let challenge = |max_age| {
            ApiError::StepUpRequired { max_age }
                .into_response()
                .headers()
                .get(header::WWW_AUTHENTICATE)
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(
            challenge(None),
            "Bearer error=\"insufficient_user_authentication\", \
             error_description=\"a second factor is required for this tool\""
        );
        assert!(challenge(Some(300)).ends_with("\", max_age=300"));
        assert!(
            ApiError::Unauthorized("token expired")
                .into_response()
                .headers()
                .get(header::WWW_AUTHENTICATE)
                .is_none()
        );
    }

    #[tokio::test]
    async fn the_envelope_keeps_a_step_up_challenge_and_gives_other_401s_bearer() {
        use axum::{Router, routing::get};
        use tower::ServiceExt;
        let app = Router::new()
            .route(
                "/tool",
                get(|| async { ApiError::StepUpRequired { max_age: Some(60) } }),
            )
            .route(
                "/api",
                get(|| async { ApiError::Unauthorized("missing bearer token") }),
            )
            .layer(axum::middleware::from_fn(error_envelope));
        let challenge = |path: &'static str| {
            let app = app.clone();
            async move {
                let request = Request::builder().uri(path).body(axum::body::Body::empty());
                let response = app.oneshot(request.unwrap()).await.unwrap();
                assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
                let values: Vec<String> = response
                    .headers()
                    .get_all(header::WWW_AUTHENTICATE)
                    .iter()
                    .map(|v| v.to_str().unwrap().to_owned())
                    .collect();
                values
            }
        };
        let step_up = challenge("/tool").await;
        assert_eq!(step_up.len(), 1, "{step_up:?}");
        assert!(
            step_up[0].contains("insufficient_user_authentication")
                && step_up[0].ends_with("max_age=60")
        );
        assert_eq!(challenge("/api").await, ["Bearer"]);
    }

    #[test]
    fn a_validation_error_lists_each_field_in_camel_case() {
        let mut invalid = validator::ValidationErrors::new();
        invalid.add(
            "first_name",
            validator::ValidationError::new("length").with_message("is too long".into()),
        );
        let (_, report) = rendered(invalid.into());
        assert_eq!(
            report.error.details,
            [FieldError::new("firstName", "is too long")]
        );
    }

    #[test]
    fn a_503_from_nats_says_when_to_retry_and_keeps_the_subject_for_the_log() {
        let (_, report) = rendered(CallError::NoResponders("auth.login").into());
        assert_eq!(report.error.retry_after, Some(1));
        assert!(report.detail.unwrap().contains("auth.login"));
        let (_, worker) = rendered(CallError::Service(ServiceError::too_many_requests(7)).into());
        assert_eq!(worker.error.retry_after, Some(7));
    }

    #[test]
    fn a_500_keeps_its_cause_for_the_log_only() {
        let (_, report) = rendered(anyhow::anyhow!("secret cause").into());
        assert_eq!(report.error.message, "internal error");
        assert!(report.detail.unwrap().contains("secret cause"));
    }

    #[test]
    fn a_body_of_the_wrong_shape_is_a_400_that_does_not_echo_the_value() {
        type Login = std::collections::HashMap<String, String>;
        let rejection = Json::<Login>::from_bytes(br#"{"password": 12345678}"#).unwrap_err();
        let (status, report) = rendered(rejection.into());
        assert_eq!(status, 400);
        assert!(report.error.message.contains("invalid type"), "{report:?}");
        assert!(!report.error.message.contains("12345678"), "{report:?}");

        let rejection = Json::<Login>::from_bytes(b"{\"password\": ").unwrap_err();
        let (status, report) = rendered(rejection.into());
        assert_eq!(status, 400);
        assert_eq!(report.error.message, "request body is not valid JSON");
    }
}
