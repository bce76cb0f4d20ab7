//! The auth worker's error: typed where a caller branches, `anyhow` for the
//! unexpected. Converting into [`ServiceError`] is the only place a status is
//! chosen; unexpected errors are logged there and sent as an opaque 500.

use shared::ServiceError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("email already registered")]
    EmailTaken,
    /// The same answer for an unknown email and a wrong password.
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("user not found")]
    UserNotFound,
    /// Unknown, expired, revoked or spent; or not the caller's.
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    /// Too many attempts for this email and client address, from this
    /// address, or sign-ups from this address.
    #[error("too many attempts")]
    Throttled { retry_after_secs: u64 },
    #[error("current password is incorrect")]
    WrongCurrentPassword,
    /// A protected upstream that does not admit the caller's role.
    #[error("role not allowed for this route")]
    RoleNotAdmitted,
    /// A mail's token that is unknown, spent, voided, expired or of another
    /// purpose: one answer for all, so nothing is learned from it.
    #[error("invalid or expired link")]
    InvalidLink,
    /// `auth.mail_token` for a row no link can use any more.
    #[error("link no longer valid")]
    LinkGone,
    #[error("email already verified")]
    AlreadyVerified,
    /// A change of address to the address the account already has.
    #[error("this is already the account's email")]
    SameEmail,
    /// Not one of the caller's live sessions.
    #[error("session not found")]
    SessionNotFound,
    #[error("admin role required")]
    AdminRequired,
    #[error(transparent)]
    Database(sqlx::Error),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<sqlx::Error> for Error {
    /// The one place a violated constraint becomes a typed error (so `?`
    /// maps it anywhere); any other database error stays one.
    fn from(e: sqlx::Error) -> Self {
        match runtime::db::violated_constraint(&e) {
            Some("users_email_key") => Self::EmailTaken,
            _ => Self::Database(e),
        }
    }
}

impl From<Error> for ServiceError {
    fn from(e: Error) -> Self {
        match e {
            Error::EmailTaken | Error::AlreadyVerified => ServiceError::conflict(e.to_string()),
            Error::InvalidLink | Error::SameEmail => ServiceError::bad_request(e.to_string()),
            Error::LinkGone => ServiceError::new(410, e.to_string()),
            Error::SessionNotFound => ServiceError::not_found(e.to_string()),
            Error::InvalidCredentials => ServiceError::unauthorized(e.to_string()),
            Error::UserNotFound => ServiceError::not_found(e.to_string()),
            Error::InvalidRefreshToken => ServiceError::unauthorized(e.to_string()),
            Error::Throttled { retry_after_secs } => {
                ServiceError::too_many_requests(retry_after_secs)
            }
            // Well-formed input, failed credential check: 403, not 400.
            Error::WrongCurrentPassword | Error::RoleNotAdmitted | Error::AdminRequired => {
                ServiceError::forbidden(e.to_string())
            }
            Error::Database(e) => e.into(),
            Error::Unexpected(e) => {
                tracing::error!(error = format!("{e:#}"), "unexpected error");
                ServiceError::internal()
            }
        }
    }
}
