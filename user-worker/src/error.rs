//! The user worker's error; converting into [`ServiceError`] is the only place
//! a status is chosen.

use shared::ServiceError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("user not found")]
    UserNotFound,
    /// No caller header, or one that does not parse: the request did not come
    /// through the gateway's token check.
    #[error("missing caller")]
    NoCaller,
    #[error("not allowed")]
    Forbidden,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl From<Error> for ServiceError {
    fn from(e: Error) -> Self {
        match e {
            Error::UserNotFound => ServiceError::not_found(e.to_string()),
            Error::NoCaller => ServiceError::unauthorized(e.to_string()),
            Error::Forbidden => ServiceError::forbidden(e.to_string()),
            Error::Database(e) => e.into(),
        }
    }
}
