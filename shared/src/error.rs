//! The error that travels in a NATS reply.
//!
//! A worker answers a failed request with the headers `Nats-Service-Error-Code`
//! (an HTTP-style status) and `Nats-Service-Error` (the message) *and* this
//! JSON body, so an operator using `nats req` sees the same thing the gateway
//! turns into an HTTP error.

use serde::{Deserialize, Serialize};

/// One failing input field, as listed in a validation error's `details`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An error reply: status code, message and, for validation errors, the
/// failing fields. 5xx errors carry a generic message only; the detail stays
/// in the worker's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "camelCase")]
#[error("{status_code} {message}")]
pub struct ServiceError {
    pub status_code: u16,
    pub error: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<FieldError>,
    /// Seconds to wait before retrying (429 and 503).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

impl ServiceError {
    pub fn new(status_code: u16, message: impl Into<String>) -> Self {
        Self {
            status_code,
            error: reason_phrase(status_code).to_owned(),
            message: message.into(),
            details: Vec::new(),
            retry_after: None,
        }
    }

    /// 400 with every failing field.
    pub fn validation(details: Vec<FieldError>) -> Self {
        Self {
            details,
            ..Self::new(400, "validation failed")
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(409, message)
    }

    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        Self {
            retry_after: Some(retry_after_secs),
            ..Self::new(429, "too many attempts, retry later")
        }
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, message)
    }

    /// 500 with a message that reveals nothing; log the cause before calling.
    pub fn internal() -> Self {
        Self::new(500, "internal error")
    }

    pub fn is_server_error(&self) -> bool {
        self.status_code >= 500
    }
}

impl From<validator::ValidationErrors> for ServiceError {
    /// A 400 listing every failing field (camelCase, as in the JSON), sorted.
    fn from(errors: validator::ValidationErrors) -> Self {
        let mut details: Vec<FieldError> = errors
            .field_errors()
            .into_iter()
            .flat_map(|(field, errs)| {
                let field = crate::types::camel_case(&field);
                errs.iter().map(move |e| {
                    let message = e
                        .message
                        .as_ref()
                        .map_or_else(|| format!("is invalid ({})", e.code), |m| m.to_string());
                    FieldError::new(field.clone(), message)
                })
            })
            .collect();
        details.sort_by(|a, b| a.field.cmp(&b.field).then(a.message.cmp(&b.message)));
        Self::validation(details)
    }
}

#[cfg(feature = "sqlx")]
impl From<sqlx::Error> for ServiceError {
    /// A database that cannot be reached is a 503 (the caller may retry);
    /// anything else unexpected is an opaque 500. Either way the cause is
    /// logged here, once, and never sent.
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                tracing::error!(error = %e, "database unavailable");
                Self {
                    retry_after: Some(1),
                    ..Self::unavailable("database unavailable")
                }
            }
            e => {
                tracing::error!(error = %e, "database error");
                Self::internal()
            }
        }
    }
}

/// The standard reason phrase of the statuses this system uses.
pub fn reason_phrase(status_code: u16) -> &'static str {
    match status_code {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_validation_error_lists_its_fields_in_camel_case_json() {
        let err = ServiceError::validation(vec![FieldError::new("email", "is not an email")]);
        let json = serde_json::to_value(&err).unwrap();
        assert_eq!(json["statusCode"], 400);
        assert_eq!(json["error"], "Bad Request");
        assert_eq!(json["details"][0]["field"], "email");
        assert!(json.get("retryAfter").is_none());
    }

    #[test]
    fn an_internal_error_says_nothing_specific() {
        let err = ServiceError::internal();
        assert_eq!(err.status_code, 500);
        assert_eq!(err.message, "internal error");
        assert!(err.is_server_error());
    }
}
