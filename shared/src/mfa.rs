//! The second factor: TOTP (RFC 6238) with recovery codes, and passkeys
//! (WebAuthn). The `auth-worker` serves every subject here.
//!
//! * A login of a user with a factor answers [`MfaChallenge`] instead of
//!   tokens: a short-lived pending login, not a session. The second step
//!   ([`LoginMfa`]) proves a factor ([`FactorProof`]) and starts the
//!   session.
//! * A signed-in session proves a factor again with [`StepUp`]; its `amr`
//!   and `auth_time` (in the access token, the session row and every proxy
//!   assertion) say how and when it last did.
//! * The caller's own factors: [`MfaStatus`], enrolment
//!   ([`BeginTotp`]/[`ConfirmTotp`], [`PasskeyOptions`]/[`RegisterPasskey`]),
//!   renaming and removal (the password and a current factor), new
//!   recovery codes. An ADMIN resets another user's factors
//!   ([`ResetMfa`]) without ever reading them.
//!
//! WebAuthn options and credentials cross as JSON objects exactly as the
//! browser's `PublicKeyCredential` JSON and webauthn-rs write them
//! (base64url for binary fields); only the auth-worker reads them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::{Validate, ValidationError, ValidationErrors};

use crate::{
    Caller, Done,
    auth::{Empty, SERVICE, TokenReply, UserRequest},
    endpoint::endpoint,
    headers::Anonymous,
    types::{Secret, login_password, printable},
};

/// How a session was authenticated (RFC 8176 `amr` values).
pub mod amr {
    /// A password.
    pub const PWD: &str = "pwd";
    /// A one-time password: a TOTP code or a recovery code.
    pub const OTP: &str = "otp";
    /// A hardware-bound key: a passkey.
    pub const HWK: &str = "hwk";

    /// Whether `amr` names a second factor.
    pub fn has_second_factor<S: AsRef<str>>(amr: &[S]) -> bool {
        amr.iter().any(|m| matches!(m.as_ref(), OTP | HWK))
    }
}

/// A second factor a user can prove.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Method {
    /// A 6-digit code from an authenticator app.
    Totp,
    /// One of the single-use recovery codes.
    RecoveryCode,
    /// A passkey (WebAuthn).
    Passkey,
}

/// A proof of a second factor: exactly one of a code (a TOTP code, 6
/// digits, or a recovery code, `xxxxx-xxxxx`) and a passkey assertion
/// (the JSON of the browser's `PublicKeyCredential`, for the challenge of
/// the matching options call).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FactorProof {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Password, example = "123456", max_length = 32)]
    pub code: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub passkey: Option<serde_json::Value>,
}

/// The longest code accepted for checking (a recovery code is 11).
pub const CODE_MAX_CHARS: usize = 32;

impl FactorProof {
    /// The field errors of a proof, under the names the body uses.
    fn check(&self, errors: &mut ValidationErrors) {
        match (&self.code, &self.passkey) {
            (None, None) => errors.add(
                "code",
                ValidationError::new("required").with_message("send a code or a passkey".into()),
            ),
            (Some(_), Some(_)) => errors.add(
                "passkey",
                ValidationError::new("exclusive")
                    .with_message("send a code or a passkey, not both".into()),
            ),
            (Some(code), None) => {
                let code = code.expose();
                let bad = code.trim().is_empty()
                    || code.chars().count() > CODE_MAX_CHARS
                    || printable(code).is_err();
                if bad {
                    errors.add(
                        "code",
                        ValidationError::new("code")
                            .with_message("must be a 6-digit code or a recovery code".into()),
                    );
                }
            }
            (None, Some(passkey)) => {
                if !passkey.is_object() {
                    errors.add(
                        "passkey",
                        ValidationError::new("passkey")
                            .with_message("must be a PublicKeyCredential object".into()),
                    );
                }
            }
        }
    }
}

impl Validate for FactorProof {
    fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        self.check(&mut errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// A pending login's token: present and of a plausible size.
fn mfa_token(token: &Secret) -> Result<(), ValidationError> {
    match token.expose().chars().count() {
        0 => Err(ValidationError::new("required").with_message("is required".into())),
        n if n > 256 => {
            Err(ValidationError::new("length").with_message("is not an MFA token".into()))
        }
        _ => Ok(()),
    }
}

/// The answer to a password login of a user with a second factor: no
/// session yet, only a pending login that [`LoginMfa`] completes.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MfaChallenge {
    /// Always `true`: tells this reply from a [`TokenReply`].
    pub mfa_required: bool,
    /// The pending login (opaque, single-purpose, short-lived). The
    /// browser session keeps it in a cookie instead; the API hands it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Password)]
    pub mfa_token: Option<Secret>,
    /// The factors this user can prove.
    pub methods: Vec<Method>,
    /// Seconds the pending login lasts.
    #[schema(example = 300)]
    pub expires_in: u64,
}

/// `auth.login`'s reply: tokens, or a second factor to prove first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum LoginReply {
    Tokens(TokenReply),
    MfaRequired(MfaChallenge),
}

/// `auth.login_mfa`: the pending login and a factor.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoginMfaRequest {
    #[serde(default = "empty_secret")]
    #[schema(value_type = String, format = Password, required = true)]
    pub mfa_token: Secret,
    #[serde(flatten)]
    pub proof: FactorProof,
}

fn empty_secret() -> Secret {
    Secret::new("")
}

impl Validate for LoginMfaRequest {
    fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        if let Err(e) = mfa_token(&self.mfa_token) {
            errors.add("mfaToken", e);
        }
        self.proof.check(&mut errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// `auth.login_passkey_options`: the pending login whose passkey is asked
/// for.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PendingLoginRequest {
    #[serde(default = "empty_secret")]
    #[validate(custom(function = "mfa_token"))]
    #[schema(value_type = String, format = Password, required = true)]
    pub mfa_token: Secret,
}

/// WebAuthn options for `navigator.credentials.create()` or `.get()`, as
/// JSON (`{"publicKey": {…}}`, binary fields base64url). Their challenge is
/// single-use and bound to the session or pending login that asked.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
pub struct WebAuthnOptions(pub serde_json::Value);

/// A step-up or an enrolment changed how the session is authenticated: a
/// new access token that says so.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessGrant {
    /// The new access token. The browser session keeps it in the cookie
    /// (the body then has none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub access_token: String,
    /// Seconds the access token lasts.
    pub expires_in: u64,
    /// How the session is authenticated now (`pwd`, `otp`, `hwk`).
    #[schema(example = json!(["pwd", "otp"]))]
    pub amr: Vec<String>,
    /// When the session last proved a factor (or logged in).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub auth_time: time::OffsetDateTime,
}

/// A passkey of the caller, as the account page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasskeyInfo {
    pub id: uuid::Uuid,
    #[schema(example = "Laptop")]
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: time::OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<time::OffsetDateTime>,
}

/// `auth.mfa_status`: the caller's factors and session (never a secret).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MfaStatus {
    /// An authenticator app is enrolled (and confirmed).
    pub totp: bool,
    pub passkeys: Vec<PasskeyInfo>,
    /// Unused recovery codes.
    pub recovery_codes_left: u32,
    /// A factor is required of this user (an ADMIN, by policy).
    pub required: bool,
    /// How the caller's session is authenticated.
    pub amr: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub auth_time: time::OffsetDateTime,
}

/// `auth.totp_begin`: a new, unconfirmed authenticator-app secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TotpEnrolment {
    /// The secret, base32, for typing into an app.
    #[schema(value_type = String, format = Password)]
    pub secret: Secret,
    /// The `otpauth://totp/…` URI the QR code holds.
    #[schema(value_type = String, format = Password)]
    pub otpauth_uri: Secret,
    /// The QR code of `otpauthUri`, an SVG document.
    pub qr_svg: String,
}

/// `auth.totp_confirm`: the first code from the app.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfirmTotpRequest {
    #[serde(default = "empty_secret")]
    #[schema(value_type = String, format = Password, example = "123456", required = true)]
    pub code: Secret,
}

impl Validate for ConfirmTotpRequest {
    fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        if !is_totp_code(self.code.expose()) {
            errors.add(
                "code",
                ValidationError::new("code").with_message("must be the app's 6-digit code".into()),
            );
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// Six ASCII digits (spaces around or inside are the user's and go).
pub fn is_totp_code(code: &str) -> bool {
    let digits: Vec<char> = code.chars().filter(|c| !c.is_whitespace()).collect();
    digits.len() == 6 && digits.iter().all(char::is_ascii_digit)
}

/// Recovery codes, shown once (only their hashes are kept).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryCodes {
    #[schema(example = json!(["k7f2m-9qx4t"]))]
    pub recovery_codes: Vec<String>,
}

/// `auth.totp_confirm`'s reply: the factor is on. The first factor also
/// upgrades the session that enrolled it (`grant`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FactorAdded {
    /// New recovery codes when this is the first factor (else none: the
    /// existing ones still hold).
    #[serde(default)]
    pub recovery_codes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passkey: Option<PasskeyInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<AccessGrant>,
}

/// A passkey's name: 1 to 64 printable characters.
fn passkey_name(name: &str) -> Result<(), ValidationError> {
    match name.trim().chars().count() {
        0 => Err(ValidationError::new("required").with_message("is required".into())),
        n if n > 64 => {
            Err(ValidationError::new("length").with_message("must be at most 64 characters".into()))
        }
        _ => printable(name),
    }
}

/// `auth.passkey_register`: the new credential and its name.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterPasskeyRequest {
    #[serde(default)]
    #[validate(custom(function = "passkey_name"))]
    #[schema(example = "Laptop", required = true, min_length = 1, max_length = 64)]
    pub name: String,
    /// The browser's `PublicKeyCredential` JSON from `create()`.
    #[serde(default)]
    #[validate(custom(function = "json_object"))]
    #[schema(value_type = Object, required = true)]
    pub credential: serde_json::Value,
}

fn json_object(value: &serde_json::Value) -> Result<(), ValidationError> {
    if value.is_object() {
        Ok(())
    } else {
        Err(ValidationError::new("object")
            .with_message("must be a PublicKeyCredential object".into()))
    }
}

/// `auth.passkey_rename`.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RenamePasskeyRequest {
    pub id: uuid::Uuid,
    #[serde(default)]
    #[validate(custom(function = "passkey_name"))]
    #[schema(example = "Phone", required = true, min_length = 1, max_length = 64)]
    pub name: String,
}

/// Removing a factor: the password and a current factor.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RemoveFactorRequest {
    /// The passkey to remove (`auth.passkey_remove`); absent for the app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<uuid::Uuid>,
    #[serde(default = "empty_secret")]
    #[schema(value_type = String, format = Password, required = true)]
    pub current_password: Secret,
    #[serde(flatten)]
    pub proof: FactorProof,
}

impl Validate for RemoveFactorRequest {
    fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        if let Err(e) = login_password(&self.current_password) {
            errors.add("currentPassword", e);
        }
        self.proof.check(&mut errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

endpoint!(
    /// `auth.login_mfa`: completes a pending login with a factor.
    LoginMfa, "auth.login_mfa", "auth_login_mfa", SERVICE, Anonymous, LoginMfaRequest => TokenReply
);
endpoint!(
    /// `auth.login_passkey_options`: passkey options for a pending login.
    LoginPasskeyOptions, "auth.login_passkey_options", "auth_login_passkey_options", SERVICE, Anonymous, PendingLoginRequest => WebAuthnOptions
);
endpoint!(
    /// `auth.mfa_status`: the caller's factors.
    GetMfaStatus, "auth.mfa_status", "auth_mfa_status", SERVICE, Caller, Empty => MfaStatus
);
endpoint!(
    /// `auth.totp_begin`: a new authenticator-app secret to confirm.
    BeginTotp, "auth.totp_begin", "auth_totp_begin", SERVICE, Caller, Empty => TotpEnrolment
);
endpoint!(
    /// `auth.totp_confirm`: the first code turns the app on.
    ConfirmTotp, "auth.totp_confirm", "auth_totp_confirm", SERVICE, Caller, ConfirmTotpRequest => FactorAdded
);
endpoint!(
    /// `auth.totp_remove`: turns the app off (password and a factor).
    RemoveTotp, "auth.totp_remove", "auth_totp_remove", SERVICE, Caller, RemoveFactorRequest => Done
);
endpoint!(
    /// `auth.passkey_options`: options to create a passkey.
    PasskeyOptions, "auth.passkey_options", "auth_passkey_options", SERVICE, Caller, Empty => WebAuthnOptions
);
endpoint!(
    /// `auth.passkey_register`: stores a new passkey.
    RegisterPasskey, "auth.passkey_register", "auth_passkey_register", SERVICE, Caller, RegisterPasskeyRequest => FactorAdded
);
endpoint!(
    /// `auth.passkey_rename`: a passkey's new name.
    RenamePasskey, "auth.passkey_rename", "auth_passkey_rename", SERVICE, Caller, RenamePasskeyRequest => PasskeyInfo
);
endpoint!(
    /// `auth.passkey_remove`: removes a passkey (password and a factor).
    RemovePasskey, "auth.passkey_remove", "auth_passkey_remove", SERVICE, Caller, RemoveFactorRequest => Done
);
endpoint!(
    /// `auth.recovery_codes`: ten new recovery codes (a factor first).
    NewRecoveryCodes, "auth.recovery_codes", "auth_recovery_codes", SERVICE, Caller, FactorProof => RecoveryCodes
);
endpoint!(
    /// `auth.step_up_options`: passkey options for a step-up or a removal.
    StepUpOptions, "auth.step_up_options", "auth_step_up_options", SERVICE, Caller, Empty => WebAuthnOptions
);
endpoint!(
    /// `auth.step_up`: the session proves a factor again.
    StepUp, "auth.step_up", "auth_step_up", SERVICE, Caller, FactorProof => AccessGrant
);
endpoint!(
    /// `auth.reset_mfa` (ADMIN): removes every factor of a user and ends
    /// the user's sessions.
    ResetMfa, "auth.reset_mfa", "auth_reset_mfa", SERVICE, Caller, UserRequest => Done
);

/// Every subject of this module.
pub const SUBJECTS: &[&str] = &[
    <LoginMfa as crate::Endpoint>::SUBJECT,
    <LoginPasskeyOptions as crate::Endpoint>::SUBJECT,
    <GetMfaStatus as crate::Endpoint>::SUBJECT,
    <BeginTotp as crate::Endpoint>::SUBJECT,
    <ConfirmTotp as crate::Endpoint>::SUBJECT,
    <RemoveTotp as crate::Endpoint>::SUBJECT,
    <PasskeyOptions as crate::Endpoint>::SUBJECT,
    <RegisterPasskey as crate::Endpoint>::SUBJECT,
    <RenamePasskey as crate::Endpoint>::SUBJECT,
    <RemovePasskey as crate::Endpoint>::SUBJECT,
    <NewRecoveryCodes as crate::Endpoint>::SUBJECT,
    <StepUpOptions as crate::Endpoint>::SUBJECT,
    <StepUp as crate::Endpoint>::SUBJECT,
    <ResetMfa as crate::Endpoint>::SUBJECT,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_is_a_code_or_a_passkey_never_both_nor_neither() {
        let proof = |json: &str| {
            serde_json::from_str::<FactorProof>(json)
                .unwrap()
                .validate()
        };
        assert!(proof(r#"{"code":"123456"}"#).is_ok());
        assert!(proof(r#"{"code":"k7f2m-9qx4t"}"#).is_ok());
        assert!(proof(r#"{"passkey":{"id":"x"}}"#).is_ok());
        assert!(proof("{}").is_err());
        assert!(proof(r#"{"code":"123456","passkey":{}}"#).is_err());
        assert!(proof(r#"{"code":"  "}"#).is_err());
        assert!(proof(r#"{"code":"1\u00002"}"#).is_err());
        assert!(proof(r#"{"passkey":"nope"}"#).is_err());
        assert!(proof(&format!(r#"{{"code":"{}"}}"#, "1".repeat(33))).is_err());
    }

    #[test]
    fn a_totp_code_is_six_digits() {
        assert!(is_totp_code("123456"));
        assert!(is_totp_code(" 123 456 "));
        for bad in ["12345", "1234567", "12345a", "１２３４５６", ""] {
            assert!(!is_totp_code(bad), "{bad}");
        }
    }

    #[test]
    fn a_login_reply_is_tokens_or_a_challenge() {
        let challenge: LoginReply = serde_json::from_str(
            r#"{"mfaRequired":true,"mfaToken":"t","methods":["totp","passkey"],"expiresIn":300}"#,
        )
        .unwrap();
        assert!(matches!(challenge, LoginReply::MfaRequired(c) if c.methods.len() == 2));
    }

    #[test]
    fn second_factors_are_otp_and_hwk() {
        assert!(!amr::has_second_factor(&["pwd"]));
        assert!(amr::has_second_factor(&["pwd", "otp"]));
        assert!(amr::has_second_factor(&["pwd", "hwk"]));
    }
}
