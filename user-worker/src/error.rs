//! The user worker's error; converting into [`ServiceError`] is the only place
//! a status is chosen.

use shared::ServiceError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("user not found")]
    UserNotFound,
    /// Also the answer for a draft the caller may not see: its existence is
    /// not revealed.
    #[error("post not found")]
    PostNotFound,
    /// A valid caller without the ownership or role the request needs.
    #[error("{0}")]
    Forbidden(&'static str),
    /// Demoting or deleting the only ADMIN would leave nobody to manage the
    /// system from the API.
    #[error("the last ADMIN cannot be demoted or deleted")]
    LastAdmin,
    #[error(transparent)]
    Database(sqlx::Error),
}

impl From<sqlx::Error> for Error {
    /// The one place a violated constraint becomes a typed error (so `?`
    /// maps it anywhere); any other database error stays one.
    fn from(e: sqlx::Error) -> Self {
        match runtime::db::violated_constraint(&e) {
            // A post's author whose account was deleted after their token
            // was issued.
            Some("posts_author_id_fkey") => Self::UserNotFound,
            _ => Self::Database(e),
        }
    }
}

impl From<Error> for ServiceError {
    fn from(e: Error) -> Self {
        match e {
            Error::UserNotFound | Error::PostNotFound => ServiceError::not_found(e.to_string()),
            Error::Forbidden(message) => ServiceError::forbidden(message),
            Error::LastAdmin => ServiceError::conflict(e.to_string()),
            Error::Database(e) => e.into(),
        }
    }
}
