//! The `auth-worker`'s subjects: accounts, credentials and token keys.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::{Validate, ValidationError, ValidationErrors};

use crate::{
    Caller, Done,
    endpoint::endpoint,
    headers::Anonymous,
    types::{
        Email, Secret, email_address, login_password, mail_token, name, new_password,
        refresh_token, trimmed_optional,
    },
    user::{User, UserId},
};

/// The queue group and service name of the auth worker.
pub const SERVICE: &str = "auth-worker";

/// A notice, with an empty body, that an auth-worker publishes when it
/// starts serving (which is when its key set can change): whoever verifies
/// tokens fetches `auth.jwks` again, so a key removed from the set stops
/// verifying at once. Nobody answers it, so it is no [`Endpoint`]; only the
/// auth-worker may publish it (`nats.conf`).
///
/// [`Endpoint`]: crate::Endpoint
pub const KEYS_CHANGED: &str = "auth.keys_changed";

/// The auth-worker's notice ([`crate::user::UserChanged`]) that sessions of
/// a user ended: a logout, a password change, a spent refresh token
/// presented again. Only it may publish it (`nats.conf`).
pub const SESSIONS_ENDED: &str = "auth.sessions_ended";

/// `auth.create_user` (HTTP sign-up).
///
/// Missing fields decode as empty, so validation lists every missing field
/// at once instead of stopping at the first.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
pub struct CreateUserRequest {
    #[serde(default)]
    #[validate(custom(function = "email_address"))]
    #[schema(
        value_type = String,
        example = "ada@example.com",
        required = true,
        min_length = 1,
        max_length = 254
    )]
    pub email: Email,
    #[serde(default)]
    #[validate(custom(function = "new_password"))]
    #[schema(value_type = String, format = Password, required = true, min_length = 8, max_length = 128)]
    pub password: Secret,
    #[serde(default, deserialize_with = "trimmed_optional")]
    #[validate(custom(function = "name"))]
    #[schema(max_length = 100)]
    pub firstname: Option<String>,
    #[serde(default, deserialize_with = "trimmed_optional")]
    #[validate(custom(function = "name"))]
    #[schema(max_length = 100)]
    pub lastname: Option<String>,
}

/// `auth.get_user`: by `{"id": 1}` or by `{"email": "a@example.com"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum GetUserRequest {
    Id {
        id: UserId,
    },
    Email {
        #[schema(value_type = String)]
        email: Email,
    },
}

impl Validate for GetUserRequest {
    fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        match self {
            Self::Id { id } if *id < 1 => errors.add(
                "id",
                ValidationError::new("range").with_message("must be a positive id".into()),
            ),
            Self::Email { email } => {
                if let Err(e) = email_address(email) {
                    errors.add("email", e);
                }
            }
            Self::Id { .. } => {}
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// `auth.login`.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginRequest {
    #[serde(default)]
    #[validate(custom(function = "email_address"))]
    #[schema(
        value_type = String,
        example = "ada@example.com",
        required = true,
        min_length = 1,
        max_length = 254
    )]
    pub email: Email,
    #[serde(default)]
    #[validate(custom(function = "login_password"))]
    #[schema(value_type = String, format = Password, required = true, min_length = 1, max_length = 128)]
    pub password: Secret,
}

/// A successful login (and, later, refresh).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenReply {
    /// An EdDSA JWT; send it as `Authorization: Bearer …`.
    pub access_token: String,
    /// Opaque; exchange it at `/api/auth/refresh`.
    pub refresh_token: String,
    /// Always `"Bearer"`.
    #[schema(example = "Bearer")]
    pub token_type: String,
    /// Lifetime of the access token in seconds.
    #[schema(example = 900)]
    pub expires_in: u64,
    /// Seconds until the session ends: the refresh token (and each one it
    /// is exchanged for) stops working then, however often it is used.
    #[schema(example = 2_592_000)]
    pub refresh_expires_in: u64,
    pub user: User,
}

/// `auth.refresh` (exchange a refresh token for new tokens: rotation) and
/// `auth.logout` (revoke the session of this refresh token, the caller's).
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefreshTokenRequest {
    #[serde(default)]
    #[validate(custom(function = "refresh_token"))]
    #[schema(value_type = String, format = Password, required = true, min_length = 1, max_length = 256)]
    pub refresh_token: Secret,
}

/// `auth.change_password`: the caller's current and new password.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangePasswordRequest {
    #[serde(default)]
    #[validate(custom(function = "login_password"))]
    #[schema(value_type = String, format = Password, required = true, min_length = 1, max_length = 128)]
    pub current_password: Secret,
    #[serde(default)]
    #[validate(custom(function = "new_password"))]
    #[schema(value_type = String, format = Password, required = true, min_length = 8, max_length = 128)]
    pub new_password: Secret,
}

/// `auth.verify_email`: spends a verification (or change of address) token
/// from a mail's link. Replies with the user, `emailVerified: true`.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerifyEmailRequest {
    #[serde(default)]
    #[validate(custom(function = "mail_token"))]
    #[schema(value_type = String, format = Password, required = true, min_length = 1, max_length = 256)]
    pub token: Secret,
}

/// `auth.recover` (`POST /api/auth/recover`): a reset mail for `email`, if
/// it names an account. Always `{}`, whether or not it does.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecoverRequest {
    #[serde(default)]
    #[validate(custom(function = "email_address"))]
    #[schema(value_type = String, example = "ada@example.com", required = true, min_length = 1, max_length = 254)]
    pub email: Email,
}

/// `auth.reset_password`: a reset token and the new password.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResetPasswordRequest {
    #[serde(default)]
    #[validate(custom(function = "mail_token"))]
    #[schema(value_type = String, format = Password, required = true, min_length = 1, max_length = 256)]
    pub token: Secret,
    #[serde(default)]
    #[validate(custom(function = "new_password"))]
    #[schema(value_type = String, format = Password, required = true, min_length = 8, max_length = 128)]
    pub new_password: Secret,
}

/// `auth.change_email`: the caller's new address, confirmed by the current
/// password. Takes effect when the link mailed to the new address is
/// followed.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangeEmailRequest {
    #[serde(default)]
    #[validate(custom(function = "email_address"))]
    #[schema(value_type = String, example = "ada@example.org", required = true, min_length = 1, max_length = 254)]
    pub email: Email,
    #[serde(default)]
    #[validate(custom(function = "login_password"))]
    #[schema(value_type = String, format = Password, required = true, min_length = 1, max_length = 128)]
    pub current_password: Secret,
}

/// A request with nothing in it: `{}` or an empty body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// A request naming one user (the ADMIN actions on a user).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserRequest {
    #[validate(range(min = 1, message = "must be a positive id"))]
    pub id: UserId,
}

/// `auth.revoke_session`: one of the caller's sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionRequest {
    pub id: uuid::Uuid,
}

/// One live session of the caller, as the sessions list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
// The gateway's `SessionInfo` (the browser session's reply) has the name.
#[schema(as = SessionItem)]
pub struct SessionInfo {
    pub id: uuid::Uuid,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: time::OffsetDateTime,
    /// The last login or refresh of the session.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub last_used_at: time::OffsetDateTime,
    /// The browser family and system, e.g. "Firefox on Linux".
    pub user_agent: Option<String>,
    /// The client's network at login: an IPv4 /24 or an IPv6 /48.
    pub network: Option<String>,
    /// The session of this request.
    pub current: bool,
}

/// `auth.list_sessions`: the caller's live sessions, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionList {
    pub items: Vec<SessionInfo>,
}

/// `auth.mail_token`: the token of an `email_tokens` row, made now, for the
/// mail that carries it (only the mail-worker may ask, `nats.conf`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MailTokenRequest {
    pub token_id: uuid::Uuid,
}

/// A token for a mail's link. 410 instead when the row was spent, voided
/// or has expired (the mail is not worth sending).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MailToken {
    #[schema(value_type = String, format = Password)]
    pub token: Secret,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: time::OffsetDateTime,
}

/// The claims of an access token. Signed by the auth-worker (EdDSA, with the
/// key's `kid` in the header), verified by the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user id, as a string (RFC 7519 `StringOrURI`).
    pub sub: String,
    pub role: crate::Role,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
    /// A unique id per token.
    pub jti: String,
    /// The login session (refresh-token family) the token was issued for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<uuid::Uuid>,
    /// How the session was authenticated (RFC 8176: `pwd`, `otp`, `hwk`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// When the session last authenticated (a login or a step-up), Unix
    /// seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
}

/// `auth.proxy_assertion`: a signed statement of who the caller is, for one
/// protected upstream (the gateway's reverse proxy sends it as
/// `X-Auth-Assertion`). Refused with 403 unless the caller's current role is
/// one of `roles`, so an assertion is never minted for a user the route would
/// not let through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxyAssertionRequest {
    /// `proxy:<route name>`.
    #[validate(custom(function = "proxy_audience"))]
    pub audience: String,
    /// The roles the route admits.
    #[validate(length(min = 1, max = 2, message = "must list one or two roles"))]
    pub roles: Vec<crate::Role>,
}

/// The audience prefix of every proxy assertion.
pub const PROXY_AUDIENCE_PREFIX: &str = "proxy:";

/// Whether `name` may name a proxy route: 1 to 64 of `a-z`, `0-9`, `-`,
/// starting with a letter or digit. (It becomes an audience and a metric
/// label.)
pub fn is_route_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
}

fn proxy_audience(audience: &str) -> Result<(), ValidationError> {
    match audience.strip_prefix(PROXY_AUDIENCE_PREFIX) {
        Some(name) if is_route_name(name) => Ok(()),
        _ => Err(ValidationError::new("audience")
            .with_message("must be `proxy:` and a route name (a-z, 0-9, -)".into())),
    }
}

/// An assertion and the user it speaks for (the headers the proxy sets).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProxyAssertion {
    /// An EdDSA JWT ([`AssertionClaims`]), verifiable with the JWK Set.
    pub assertion: String,
    /// Seconds it is valid for (at most 60).
    pub expires_in: u64,
    /// The caller as it is now (current role and email).
    pub user: User,
    /// How the caller's session is authenticated now (`pwd`, `otp`, `hwk`).
    #[serde(default)]
    pub amr: Vec<String>,
    /// When the session last authenticated, Unix seconds.
    #[serde(default)]
    pub auth_time: i64,
}

/// The claims of a proxy assertion: who the user is, for one upstream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssertionClaims {
    /// The user id, as a string.
    pub sub: String,
    /// Empty unless the address is verified.
    pub email: String,
    /// Whether `email` is a verified address.
    pub email_verified: bool,
    pub role: crate::Role,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    /// `proxy:<route name>`: an upstream accepts only its own.
    pub aud: String,
    pub jti: String,
    /// How the session is authenticated (`pwd`, `otp`, `hwk`).
    #[serde(default)]
    pub amr: Vec<String>,
    /// When the session last authenticated (a login or a step-up), Unix
    /// seconds: a tool can demand a recent one itself.
    #[serde(default)]
    pub auth_time: i64,
}

/// `auth.jwks` takes an empty object (or an empty body).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JwksRequest {}

/// A JSON Web Key Set (RFC 7517) of the token-signing public keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

/// An Ed25519 public key as an OKP JWK (RFC 8037).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Jwk {
    /// `"OKP"`.
    pub kty: String,
    /// `"Ed25519"`.
    pub crv: String,
    /// The public key, base64url without padding.
    pub x: String,
    /// The RFC 7638 thumbprint of the key; tokens name it in their header.
    pub kid: String,
    /// `"EdDSA"`.
    pub alg: String,
    /// `"sig"`.
    #[serde(rename = "use")]
    pub use_: String,
}

endpoint!(
    /// `auth.create_user`: registers a USER and returns it.
    CreateUser, "auth.create_user", "auth_create_user", SERVICE, Anonymous, CreateUserRequest => User
);
endpoint!(
    /// `auth.get_user`: a user by id or email (internal; gateway and ops only).
    GetUser, "auth.get_user", "auth_get_user", SERVICE, Anonymous, GetUserRequest => User
);
endpoint!(
    /// `auth.login`: checks credentials and issues an access and a refresh token.
    Login, "auth.login", "auth_login", SERVICE, Anonymous, LoginRequest => crate::mfa::LoginReply
);
endpoint!(
    /// `auth.jwks`: the public keys that verify access tokens.
    Jwks, "auth.jwks", "auth_jwks", SERVICE, Anonymous, JwksRequest => JwkSet
);
endpoint!(
    /// `auth.refresh`: rotates a refresh token; a spent one revokes its session.
    Refresh, "auth.refresh", "auth_refresh", SERVICE, Anonymous, RefreshTokenRequest => TokenReply
);
endpoint!(
    /// `auth.logout`: revokes the caller's session of this refresh token.
    Logout, "auth.logout", "auth_logout", SERVICE, Caller, RefreshTokenRequest => Done
);
endpoint!(
    /// `auth.change_password`: checks the current password, stores the new
    /// one and revokes every other session of the caller.
    ChangePassword, "auth.change_password", "auth_change_password", SERVICE, Caller, ChangePasswordRequest => Done
);
endpoint!(
    /// `auth.proxy_assertion`: a short-lived signed assertion of the caller's
    /// identity for one protected upstream (403 for a role it does not admit).
    MintAssertion, "auth.proxy_assertion", "auth_proxy_assertion", SERVICE, Caller, ProxyAssertionRequest => ProxyAssertion
);

endpoint!(
    /// `auth.verify_email`: spends a verification or change-of-address token.
    VerifyEmail, "auth.verify_email", "auth_verify_email", SERVICE, Anonymous, VerifyEmailRequest => User
);
endpoint!(
    /// `auth.resend_verification`: a new verification mail for the caller
    /// (throttled; 409 when the address is already verified).
    ResendVerification, "auth.resend_verification", "auth_resend_verification", SERVICE, Caller, Empty => Done
);
endpoint!(
    /// `auth.recover`: a reset mail if the email names an account; the same
    /// reply, in about the same time, if not (throttled).
    Recover, "auth.recover", "auth_recover", SERVICE, Anonymous, RecoverRequest => Done
);
endpoint!(
    /// `auth.reset_password`: spends a reset token, sets the password and
    /// ends every session of the user.
    ResetPassword, "auth.reset_password", "auth_reset_password", SERVICE, Anonymous, ResetPasswordRequest => Done
);
endpoint!(
    /// `auth.change_email`: checks the current password, mails a
    /// confirmation to the new address and a notice to the old one.
    ChangeEmail, "auth.change_email", "auth_change_email", SERVICE, Caller, ChangeEmailRequest => Done
);
endpoint!(
    /// `auth.list_sessions`: the caller's live sessions.
    ListSessions, "auth.list_sessions", "auth_list_sessions", SERVICE, Caller, Empty => SessionList
);
endpoint!(
    /// `auth.revoke_session`: ends one of the caller's sessions (404 for
    /// another user's).
    RevokeSession, "auth.revoke_session", "auth_revoke_session", SERVICE, Caller, SessionRequest => Done
);
endpoint!(
    /// `auth.end_other_sessions`: ends every session of the caller but this one.
    EndOtherSessions, "auth.end_other_sessions", "auth_end_other_sessions", SERVICE, Caller, Empty => Done
);
endpoint!(
    /// `auth.admin_recover` (ADMIN): mails the user a reset link.
    AdminRecover, "auth.admin_recover", "auth_admin_recover", SERVICE, Caller, UserRequest => Done
);
endpoint!(
    /// `auth.end_user_sessions` (ADMIN): ends every session of the user.
    EndUserSessions, "auth.end_user_sessions", "auth_end_user_sessions", SERVICE, Caller, UserRequest => Done
);
endpoint!(
    /// `auth.mail_token`: the token for a mail's link (the mail-worker only).
    IssueMailToken, "auth.mail_token", "auth_mail_token", SERVICE, Anonymous, MailTokenRequest => MailToken
);

/// Every subject the auth worker serves, for readiness checks and tests.
pub const SUBJECTS: &[&str] = &[
    <CreateUser as crate::Endpoint>::SUBJECT,
    <GetUser as crate::Endpoint>::SUBJECT,
    <Login as crate::Endpoint>::SUBJECT,
    <Jwks as crate::Endpoint>::SUBJECT,
    <Refresh as crate::Endpoint>::SUBJECT,
    <Logout as crate::Endpoint>::SUBJECT,
    <ChangePassword as crate::Endpoint>::SUBJECT,
    <MintAssertion as crate::Endpoint>::SUBJECT,
    <VerifyEmail as crate::Endpoint>::SUBJECT,
    <ResendVerification as crate::Endpoint>::SUBJECT,
    <Recover as crate::Endpoint>::SUBJECT,
    <ResetPassword as crate::Endpoint>::SUBJECT,
    <ChangeEmail as crate::Endpoint>::SUBJECT,
    <ListSessions as crate::Endpoint>::SUBJECT,
    <RevokeSession as crate::Endpoint>::SUBJECT,
    <EndOtherSessions as crate::Endpoint>::SUBJECT,
    <AdminRecover as crate::Endpoint>::SUBJECT,
    <EndUserSessions as crate::Endpoint>::SUBJECT,
    <IssueMailToken as crate::Endpoint>::SUBJECT,
    <crate::mfa::LoginMfa as crate::Endpoint>::SUBJECT,
    <crate::mfa::LoginPasskeyOptions as crate::Endpoint>::SUBJECT,
    <crate::mfa::GetMfaStatus as crate::Endpoint>::SUBJECT,
    <crate::mfa::BeginTotp as crate::Endpoint>::SUBJECT,
    <crate::mfa::ConfirmTotp as crate::Endpoint>::SUBJECT,
    <crate::mfa::RemoveTotp as crate::Endpoint>::SUBJECT,
    <crate::mfa::PasskeyOptions as crate::Endpoint>::SUBJECT,
    <crate::mfa::RegisterPasskey as crate::Endpoint>::SUBJECT,
    <crate::mfa::RenamePasskey as crate::Endpoint>::SUBJECT,
    <crate::mfa::RemovePasskey as crate::Endpoint>::SUBJECT,
    <crate::mfa::NewRecoveryCodes as crate::Endpoint>::SUBJECT,
    <crate::mfa::StepUpOptions as crate::Endpoint>::SUBJECT,
    <crate::mfa::StepUp as crate::Endpoint>::SUBJECT,
    <crate::mfa::ResetMfa as crate::Endpoint>::SUBJECT,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ServiceError;

    #[test]
    fn get_user_takes_an_id_or_an_email() {
        let by_id: GetUserRequest = serde_json::from_str(r#"{"id":5}"#).unwrap();
        assert_eq!(by_id, GetUserRequest::Id { id: 5 });
        let by_email: GetUserRequest = serde_json::from_str(r#"{"email":" a@B.co. "}"#).unwrap();
        assert_eq!(
            by_email,
            GetUserRequest::Email {
                email: Email::parse("a@b.co").unwrap()
            }
        );
        assert!(serde_json::from_str::<GetUserRequest>(r#"{"name":"x"}"#).is_err());
        let bad: GetUserRequest = serde_json::from_str(r#"{"email":"nope"}"#).unwrap();
        assert!(bad.validate().is_err());
    }

    #[test]
    fn sign_up_reports_every_bad_or_missing_field_together() {
        let req: CreateUserRequest =
            serde_json::from_str(r#"{"email":"x","password":"short","firstname":"a\u0000b"}"#)
                .unwrap();
        let err = ServiceError::from(req.validate().unwrap_err());
        let fields: Vec<_> = err.details.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, ["email", "firstname", "password"]);

        let empty: CreateUserRequest = serde_json::from_str("{}").unwrap();
        let err = ServiceError::from(empty.validate().unwrap_err());
        assert!(
            err.details
                .iter()
                .any(|d| d.field == "email" && d.message == "is required")
        );
        assert!(err.details.iter().any(|d| d.field == "password"));
    }

    #[test]
    fn a_good_sign_up_is_normalized_and_valid() {
        let req: CreateUserRequest = serde_json::from_str(
            r#"{"email":" Ada@Example.com ","password":"correct horse","lastname":"  "}"#,
        )
        .unwrap();
        assert!(req.validate().is_ok());
        assert_eq!(req.email.as_str(), "Ada@example.com");
        assert_eq!(req.lastname, None);
    }

    #[test]
    fn a_short_password_is_not_a_login_validation_error() {
        let req: LoginRequest =
            serde_json::from_str(r#"{"email":"a@b.co","password":"short"}"#).unwrap();
        assert!(req.validate().is_ok());
        let empty: LoginRequest = serde_json::from_str(r#"{"email":"a@b.co"}"#).unwrap();
        let err = ServiceError::from(empty.validate().unwrap_err());
        assert_eq!(err.details[0].field, "password");
    }

    #[test]
    fn the_password_never_appears_in_a_request_debug() {
        let req: LoginRequest =
            serde_json::from_str(r#"{"email":"a@b.co","password":"hunter2222"}"#).unwrap();
        assert!(!format!("{req:?}").contains("hunter2222"));
    }
}
