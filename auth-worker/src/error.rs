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
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<Error> for ServiceError {
    fn from(e: Error) -> Self {
        match e {
            Error::EmailTaken => ServiceError::conflict(e.to_string()),
            Error::InvalidCredentials => ServiceError::unauthorized(e.to_string()),
            Error::UserNotFound => ServiceError::not_found(e.to_string()),
            Error::Database(e) => e.into(),
            Error::Unexpected(e) => {
                tracing::error!(error = format!("{e:#}"), "unexpected error");
                ServiceError::internal()
            }
        }
    }
}
