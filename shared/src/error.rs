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

/// [`ServiceError::busy`]'s message.
const BUSY: &str = "busy, retry later";

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

    /// A worker copy's reply when all its `max_in_flight` slots are taken:
    /// the handler did not run, so the request may be sent again.
    pub fn busy() -> Self {
        Self {
            retry_after: Some(1),
            ..Self::unavailable(BUSY)
        }
    }

    /// Whether this is [`ServiceError::busy`]'s reply.
    pub fn is_busy(&self) -> bool {
        self.status_code == 503 && self.message == BUSY
    }

    /// 500 with a message that reveals nothing; log the cause before calling.
    pub fn internal() -> Self {
        Self::new(500, "internal error")
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
        if database_unavailable(&e) {
            // The body says only what the caller can act on; which
            // dependency failed is for the log.
            tracing::error!(error = %e, "database unavailable");
            Self {
                retry_after: Some(1),
                ..Self::unavailable("service unavailable")
            }
        } else {
            tracing::error!(error = %e, "database error");
            Self::internal()
        }
    }
}

/// Whether `e` says the database is out of reach rather than that the query
/// went wrong: no connection in time, a broken socket, or the server ending
/// or refusing sessions — SQLSTATE class 08 (connection exception), 57P01
/// `admin_shutdown` (what a query in flight gets from `pg_ctl stop -m fast`),
/// 57P02 `crash_shutdown`, 57P03 `cannot_connect_now` (starting up or
/// shutting down), 53300 `too_many_connections`.
#[cfg(feature = "sqlx")]
fn database_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || ["57P01", "57P02", "57P03", "53300"].contains(&&*code)
        }),
        _ => false,
    }
}

/// serde's description of a body that did not decode, without the values the
/// client sent. serde quotes the offending value (``invalid type: integer
/// `12345678`, expected a string``), so a password sent as a JSON number
/// would reach the reply and the log line; only its kind is kept.
pub fn describe_json_error(e: &serde_json::Error) -> String {
    redact_values(&e.to_string())
}

/// Removes the value from serde's `invalid type: …` and `invalid value: …`
/// messages; field names and what was expected stay. (An `unknown variant`
/// names a value of an enum field, such as a role, never a secret: it stays.)
pub fn redact_values(message: &str) -> String {
    for marker in ["invalid type: ", "invalid value: "] {
        let Some(start) = message.find(marker) else {
            continue;
        };
        let after = start + marker.len();
        // What was expected comes from our types, after the value; the last
        // ", expected " is it even if the value holds those words.
        let end = message[after..]
            .rfind(", expected ")
            .map_or(message.len(), |i| after + i);
        // `integer `5``, `string "x"`: keep the kind before the quoted value.
        let kind = message[after..end]
            .split(['`', '"', '\''])
            .next()
            .unwrap_or_default()
            .trim();
        let head = message[..after].trim_end();
        let sep = if kind.is_empty() { "" } else { " " };
        return format!("{head}{sep}{kind}{}", &message[end..]);
    }
    message.to_owned()
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
        410 => "Gone",
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

    /// A PostgreSQL error with just a SQLSTATE.
    #[cfg(feature = "sqlx")]
    #[derive(Debug, thiserror::Error)]
    #[error("sqlstate {0}")]
    struct Sqlstate(&'static str);

    #[cfg(feature = "sqlx")]
    impl sqlx::error::DatabaseError for Sqlstate {
        fn message(&self) -> &str {
            self.0
        }
        fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
            Some(self.0.into())
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    #[cfg(feature = "sqlx")]
    #[test]
    fn a_database_out_of_reach_is_503_and_a_failed_query_is_500() {
        let status = |e: sqlx::Error| ServiceError::from(e).status_code;
        assert_eq!(status(sqlx::Error::PoolTimedOut), 503);
        assert_eq!(status(sqlx::Error::PoolClosed), 503);
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(status(sqlx::Error::Io(reset)), 503);
        // Sessions ended by `pg_ctl stop`, a server starting up or shutting
        // down, a lost connection, no connection slot left.
        for code in ["57P01", "57P02", "57P03", "08006", "08001", "53300"] {
            assert_eq!(
                status(sqlx::Error::Database(Box::new(Sqlstate(code)))),
                503,
                "{code}"
            );
        }
        // A query that is wrong stays an opaque 500.
        for code in ["42P01", "23505", "57014"] {
            assert_eq!(
                status(sqlx::Error::Database(Box::new(Sqlstate(code)))),
                500,
                "{code}"
            );
        }
        assert_eq!(status(sqlx::Error::RowNotFound), 500);
    }

    #[test]
    fn a_decoding_error_names_the_kind_of_value_but_never_the_value() {
        #[derive(Debug, serde::Deserialize)]
        #[expect(dead_code, reason = "only the errors of decoding it are looked at")]
        struct Login {
            password: String,
            role: Option<crate::Role>,
        }
        for (body, kept) in [
            (
                r#"{"password": 987654321}"#,
                "invalid type: integer, expected a string",
            ),
            (
                r#"{"password": 98.5}"#,
                "invalid type: floating point, expected a string",
            ),
            (
                r#"{"password": true}"#,
                "invalid type: boolean, expected a string",
            ),
            (
                r#"{"password": ["s3cret"]}"#,
                "invalid type: sequence, expected a string",
            ),
        ] {
            let e = serde_json::from_str::<Login>(body).unwrap_err();
            let text = describe_json_error(&e);
            assert!(text.starts_with(kept), "{text}");
            for secret in ["987654321", "98.5", "true", "s3cret"] {
                assert!(!text.contains(secret), "{text}");
            }
        }
        // Field names and positions stay: they are what the client needs.
        assert_eq!(
            redact_values(
                "password: invalid type: string \"abc\", expected i64 at line 1 column 9"
            ),
            "password: invalid type: string, expected i64 at line 1 column 9"
        );
        assert_eq!(
            redact_values("missing field `email`"),
            "missing field `email`"
        );
    }

    #[test]
    fn an_internal_error_says_nothing_specific() {
        let err = ServiceError::internal();
        assert_eq!(err.status_code, 500);
        assert_eq!(err.message, "internal error");
    }
}
