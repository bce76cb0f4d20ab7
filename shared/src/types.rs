//! The input rules every route keeps, in one place.
//!
//! Request types in [`crate::auth`] and [`crate::user`] derive
//! [`validator::Validate`] with the rules below; the gateway validates a body
//! before it leaves, and the worker validates again what it receives (see
//! [`crate::rpc::decode_request`]), so a request published straight onto NATS is held to
//! the same rules. Decoding already trims emails and names.

use std::{borrow::Cow, fmt};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::{
    PartialSchema, ToSchema,
    openapi::{KnownFormat, ObjectBuilder, RefOr, Schema, SchemaFormat, Type},
};
use validator::ValidationError;

/// Longest email address (RFC 5321 path limit).
pub const EMAIL_MAX_CHARS: u64 = 254;
/// Password length bounds, in characters.
pub const PASSWORD_MIN_CHARS: usize = 8;
pub const PASSWORD_MAX_CHARS: usize = 128;
/// Longest first or last name.
pub const NAME_MAX_CHARS: u64 = 100;

/// A secret as it travels in a request body: serializable (the gateway must
/// forward it), but never printed by `Debug`.
#[derive(Clone, Default)]
pub struct Secret(SecretString);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(SecretString::from(value.into()))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    fn chars(&self) -> usize {
        self.expose().chars().count()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.expose())
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::new)
    }
}

impl PartialSchema for Secret {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Password)))
            .into()
    }
}

impl ToSchema for Secret {}

/// Decodes a string with surrounding white space removed.
pub fn trimmed<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let s = String::deserialize(deserializer)?;
    Ok(match s.trim() {
        t if t.len() == s.len() => s,
        t => t.to_owned(),
    })
}

/// Decodes an optional string, trimmed; blank means absent.
pub fn trimmed_optional<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty()))
}

fn invalid(code: &'static str, message: impl Into<Cow<'static, str>>) -> ValidationError {
    ValidationError::new(code).with_message(message.into())
}

/// An email address: present, at most 254 characters, and well-formed by
/// `validator`'s check (RFC 5321 lengths, HTML5 local part, IDN domains).
pub fn email_address(email: &str) -> Result<(), ValidationError> {
    use validator::ValidateEmail;
    if email.is_empty() {
        Err(invalid("required", "is required"))
    } else if email.chars().count() as u64 > EMAIL_MAX_CHARS {
        Err(invalid("length", "must be at most 254 characters"))
    } else if !email.validate_email() {
        Err(invalid("email", "must be an email address"))
    } else {
        Ok(())
    }
}

/// A new password: 8 to 128 characters.
pub fn new_password(password: &Secret) -> Result<(), ValidationError> {
    match password.chars() {
        n if n < PASSWORD_MIN_CHARS => Err(invalid(
            "length",
            format!("must be at least {PASSWORD_MIN_CHARS} characters"),
        )),
        n if n > PASSWORD_MAX_CHARS => Err(invalid(
            "length",
            format!("must be at most {PASSWORD_MAX_CHARS} characters"),
        )),
        _ => Ok(()),
    }
}

/// A password offered at login: present, and no longer than any stored one
/// can be (hashing a huge one would be free work for an attacker). A short
/// one is not rejected here: it simply fails like any wrong password.
pub fn login_password(password: &Secret) -> Result<(), ValidationError> {
    match password.chars() {
        0 => Err(invalid("required", "is required")),
        n if n > PASSWORD_MAX_CHARS => Err(invalid(
            "length",
            format!("must be at most {PASSWORD_MAX_CHARS} characters"),
        )),
        _ => Ok(()),
    }
}

/// A refresh token as issued: present and of a plausible size (43 base64url
/// characters are issued; anything far off cannot be one).
pub fn refresh_token(token: &Secret) -> Result<(), ValidationError> {
    match token.chars() {
        0 => Err(invalid("required", "is required")),
        n if n > 256 => Err(invalid("length", "is not a refresh token")),
        _ => Ok(()),
    }
}

/// A person's first or last name: at most 100 characters, printable.
pub fn name(text: &str) -> Result<(), ValidationError> {
    if text.chars().count() as u64 > NAME_MAX_CHARS {
        Err(invalid("length", "must be at most 100 characters"))
    } else {
        printable(text)
    }
}

/// Text a person would type: no control characters.
pub fn printable(text: &str) -> Result<(), ValidationError> {
    if text.chars().any(char::is_control) {
        Err(invalid("printable", "must not contain control characters"))
    } else {
        Ok(())
    }
}

/// `snake_case` field names as the JSON shows them (`camelCase`).
pub fn camel_case(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut upper = false;
    for c in field.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Probe {
        #[serde(deserialize_with = "trimmed")]
        email: String,
        #[serde(default, deserialize_with = "trimmed_optional")]
        name: Option<String>,
    }

    #[test]
    fn emails_and_names_are_trimmed_and_blank_names_mean_none() {
        let p: Probe =
            serde_json::from_str(r#"{"email":"  Ada@Example.COM ","name":"   "}"#).unwrap();
        assert_eq!(p.email, "Ada@Example.COM");
        assert_eq!(p.name, None);
        let p: Probe = serde_json::from_str(r#"{"email":"a","name":" Ada "}"#).unwrap();
        assert_eq!(p.name.as_deref(), Some("Ada"));
    }

    #[test]
    fn emails_must_be_present_short_and_well_formed() {
        assert!(email_address("ada@example.com").is_ok());
        for bad in ["", "plain", "@example.com", "a@", "a b@c.com", "a@@b.com"] {
            assert!(email_address(bad).is_err(), "{bad:?} was accepted");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(email_address(&long).unwrap_err().code, "length");
    }

    #[test]
    fn a_new_password_must_have_8_to_128_characters() {
        assert!(new_password(&Secret::new("1234567")).is_err());
        assert!(new_password(&Secret::new("12345678")).is_ok());
        assert!(new_password(&Secret::new("é".repeat(128))).is_ok());
        assert!(new_password(&Secret::new("x".repeat(129))).is_err());
    }

    #[test]
    fn a_login_password_must_be_present_and_not_huge() {
        assert!(login_password(&Secret::new("")).is_err());
        assert!(login_password(&Secret::new("short")).is_ok());
        assert!(login_password(&Secret::new("x".repeat(129))).is_err());
    }

    #[test]
    fn a_secret_never_shows_in_debug_output() {
        let secret = Secret::new("hunter22");
        assert!(!format!("{secret:?}").contains("hunter22"));
        assert_eq!(serde_json::to_string(&secret).unwrap(), "\"hunter22\"");
    }

    #[test]
    fn control_characters_are_not_printable() {
        assert!(printable("Ada Lovelace").is_ok());
        assert!(printable("a\u{0}b").is_err());
        assert!(printable("a\nb").is_err());
    }

    #[test]
    fn field_names_become_camel_case() {
        assert_eq!(camel_case("current_password"), "currentPassword");
        assert_eq!(camel_case("email"), "email");
    }
}
