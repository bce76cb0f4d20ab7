//! The `auth-worker`'s subjects: accounts, credentials and token keys.

use serde::{Deserialize, Serialize};

use crate::{
    ServiceError,
    rpc::endpoint,
    types::{Checker, Email, Name, Password, Secret},
    user::{User, UserId},
};

/// The queue group and service name of the auth worker.
pub const SERVICE: &str = "auth-worker";

/// `auth.create_user` (HTTP sign-up).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateUserRequest {
    // Missing fields default to empty so validation can list every missing
    // field at once instead of serde stopping at the first.
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub password: Secret,
    #[serde(default)]
    pub firstname: Option<String>,
    #[serde(default)]
    pub lastname: Option<String>,
}

/// A sign-up that passed every rule.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: Email,
    pub password: Password,
    pub firstname: Option<Name>,
    pub lastname: Option<Name>,
}

impl CreateUserRequest {
    /// Applies the sign-up rules, reporting every failing field.
    pub fn parse(&self) -> Result<NewUser, ServiceError> {
        let mut c = Checker::new();
        let email = c.check("email", Email::parse(&self.email));
        let password = c.check("password", Password::parse(&self.password));
        let firstname = c.check("firstname", Name::parse_optional(self.firstname.as_deref()));
        let lastname = c.check("lastname", Name::parse_optional(self.lastname.as_deref()));
        c.finish()?;
        match (email, password, firstname, lastname) {
            (Some(email), Some(password), Some(firstname), Some(lastname)) => Ok(NewUser {
                email,
                password,
                firstname,
                lastname,
            }),
            _ => Err(ServiceError::internal()),
        }
    }
}

/// `auth.get_user`: by `{"id": 1}` or by `{"email": "a@example.com"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum GetUserRequest {
    Id { id: UserId },
    Email { email: String },
}

/// `auth.login`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginRequest {
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub password: Secret,
    /// The HTTP client's address as the gateway saw it, for throttling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
}

/// Credentials in a shape worth checking against the database.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub email: Email,
    pub password: Secret,
}

impl LoginRequest {
    /// A login needs an email-shaped email and a password of at most 128
    /// characters (no stored password is longer, and hashing a huge one would
    /// be free work for an attacker). A too-short password is not rejected
    /// here: it simply fails like any wrong password.
    pub fn parse(&self) -> Result<Credentials, ServiceError> {
        let mut c = Checker::new();
        let email = c.check("email", Email::parse(&self.email));
        let n = self.password.expose().chars().count();
        if n == 0 {
            c.check::<()>("password", Err("must not be empty".into()));
        } else if n > Password::MAX_CHARS {
            c.check::<()>(
                "password",
                Err(format!(
                    "must be at most {} characters",
                    Password::MAX_CHARS
                )),
            );
        }
        c.finish()?;
        email
            .map(|email| Credentials {
                email,
                password: self.password.clone(),
            })
            .ok_or_else(ServiceError::internal)
    }
}

/// A successful login (and, later, refresh).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenReply {
    pub access_token: String,
    pub refresh_token: String,
    /// Always `"Bearer"`.
    pub token_type: String,
    /// Lifetime of the access token in seconds.
    pub expires_in: u64,
    pub user: User,
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
}

/// `auth.jwks` takes an empty object (or an empty body).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwksRequest {}

/// A JSON Web Key Set (RFC 7517) of the token-signing public keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

/// An Ed25519 public key as an OKP JWK (RFC 8037).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    CreateUser, "auth.create_user", "create_user", SERVICE, CreateUserRequest => User
);
endpoint!(
    /// `auth.get_user`: a user by id or email (internal; gateway and ops only).
    GetUser, "auth.get_user", "get_user", SERVICE, GetUserRequest => User
);
endpoint!(
    /// `auth.login`: checks credentials and issues an access and a refresh token.
    Login, "auth.login", "login", SERVICE, LoginRequest => TokenReply
);
endpoint!(
    /// `auth.jwks`: the public keys that verify access tokens.
    Jwks, "auth.jwks", "jwks", SERVICE, JwksRequest => JwkSet
);

/// Every subject the auth worker serves, for readiness checks and tests.
pub const SUBJECTS: &[&str] = &[
    <CreateUser as crate::Endpoint>::SUBJECT,
    <GetUser as crate::Endpoint>::SUBJECT,
    <Login as crate::Endpoint>::SUBJECT,
    <Jwks as crate::Endpoint>::SUBJECT,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_user_takes_an_id_or_an_email() {
        let by_id: GetUserRequest = serde_json::from_str(r#"{"id":5}"#).unwrap();
        assert_eq!(by_id, GetUserRequest::Id { id: 5 });
        let by_email: GetUserRequest = serde_json::from_str(r#"{"email":"a@b.co"}"#).unwrap();
        assert_eq!(
            by_email,
            GetUserRequest::Email {
                email: "a@b.co".into()
            }
        );
        assert!(serde_json::from_str::<GetUserRequest>(r#"{"name":"x"}"#).is_err());
    }

    #[test]
    fn sign_up_reports_all_bad_fields_together() {
        let req = CreateUserRequest {
            email: "x".into(),
            password: Secret::new("short"),
            firstname: Some("y".repeat(101)),
            lastname: None,
        };
        let err = req.parse().unwrap_err();
        assert_eq!(err.status_code, 400);
        assert_eq!(err.details.len(), 3);
    }

    #[test]
    fn a_short_password_is_not_a_login_validation_error() {
        let req = LoginRequest {
            email: "a@b.co".into(),
            password: Secret::new("short"),
            client_ip: None,
        };
        assert!(req.parse().is_ok());
        let empty = LoginRequest {
            password: Secret::new(""),
            ..req
        };
        assert_eq!(empty.parse().unwrap_err().details[0].field, "password");
    }
}
