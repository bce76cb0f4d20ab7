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
    /// A second step of a login with a pending login that is unknown,
    /// expired, spent or failed too often.
    #[error("login expired: enter your email and password again")]
    NoPendingLogin,
    /// A wrong, replayed or malformed code or passkey: 403, like a wrong
    /// current password (the pending login or session itself is fine, and
    /// 401 would tell the login page to start over).
    #[error("invalid code or passkey")]
    WrongSecondFactor,
    /// A passkey answer that does not verify (or is no credential).
    #[error("the passkey could not be verified")]
    InvalidPasskey,
    #[error("an authenticator app is already on")]
    TotpAlreadyOn,
    #[error("set up the authenticator app first")]
    NoTotpEnrolment,
    #[error("no second factor is on")]
    NoSecondFactor,
    /// A session that has not proved the user's factor asks to change them.
    #[error("prove your second factor first (step-up)")]
    StepUpRequired,
    #[error("an ADMIN must keep a second factor")]
    LastAdminFactor,
    #[error("passkey not found")]
    PasskeyNotFound,
    #[error("this passkey is already registered")]
    PasskeyExists,
    /// The gateway sent no origin a relying party can be built for.
    #[error("passkeys need the gateway's session.public_origin (an origin with a domain name)")]
    PasskeysUnavailable,
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
            Error::EmailTaken
            | Error::AlreadyVerified
            | Error::TotpAlreadyOn
            | Error::NoTotpEnrolment
            | Error::NoSecondFactor
            | Error::LastAdminFactor
            | Error::PasskeyExists
            | Error::PasskeysUnavailable => ServiceError::conflict(e.to_string()),
            Error::NoPendingLogin => ServiceError::unauthorized(e.to_string()),
            Error::WrongSecondFactor | Error::StepUpRequired => {
                ServiceError::forbidden(e.to_string())
            }
            Error::InvalidPasskey => ServiceError::bad_request(e.to_string()),
            Error::PasskeyNotFound => ServiceError::not_found(e.to_string()),
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
