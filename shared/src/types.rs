//! Parsed input: the rules every route keeps, applied by the gateway before a
//! request leaves it and again by the worker that receives it, so a request
//! published straight onto NATS is held to the same rules.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{FieldError, ServiceError};

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

/// An email address: trimmed, at most 254 characters, one `@` with a
/// non-empty local part and a dotted domain. Compared case-insensitively by the
/// database (a unique index on `lower(email)`), stored as entered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let email = raw.trim();
        if email.is_empty() {
            return Err("must not be empty".into());
        }
        if email.chars().count() > 254 {
            return Err("must be at most 254 characters".into());
        }
        let invalid = || "must be an email address".to_string();
        let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && !domain.contains('@');
        if local.is_empty()
            || local.chars().count() > 64
            || !domain_ok
            || email.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(invalid());
        }
        Ok(Self(email.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A new password: 8 to 128 characters (Unicode scalar values).
#[derive(Clone)]
pub struct Password(Secret);

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_CHARS: usize = 128;

    pub fn parse(raw: &Secret) -> Result<Self, String> {
        let n = raw.expose().chars().count();
        if n < Self::MIN_CHARS {
            return Err(format!("must be at least {} characters", Self::MIN_CHARS));
        }
        if n > Self::MAX_CHARS {
            return Err(format!("must be at most {} characters", Self::MAX_CHARS));
        }
        Ok(Self(raw.clone()))
    }

    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([REDACTED])")
    }
}

/// A first or last name: trimmed, 1 to 100 characters, no control
/// characters. An empty or blank value means "none".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name(String);

impl Name {
    pub const MAX_CHARS: usize = 100;

    pub fn parse_optional(raw: Option<&str>) -> Result<Option<Self>, String> {
        let Some(name) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        if name.chars().count() > Self::MAX_CHARS {
            return Err(format!("must be at most {} characters", Self::MAX_CHARS));
        }
        if name.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        Ok(Some(Self(name.to_owned())))
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// Collects every failing field of one request, so a client learns all its
/// mistakes at once.
#[derive(Debug, Default)]
pub struct Checker {
    errors: Vec<FieldError>,
}

impl Checker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps the value, or records `field`'s message and returns `None`.
    pub fn check<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(message) => {
                self.errors.push(FieldError::new(field, message));
                None
            }
        }
    }

    /// `Ok(())` when nothing failed, else the 400 listing every field.
    pub fn finish(self) -> Result<(), ServiceError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ServiceError::validation(self.errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_is_trimmed_and_keeps_its_case() {
        let email = Email::parse("  Ada@Example.COM ").unwrap();
        assert_eq!(email.as_str(), "Ada@Example.COM");
    }

    #[test]
    fn malformed_emails_are_rejected() {
        for bad in [
            "",
            "   ",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a@.com",
            "a@b.",
            "a@@b.com",
            "a b@c.com",
            "a@b..com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let long = format!("{}@example.com", "a".repeat(65));
        assert!(Email::parse(&long).is_err());
    }

    #[test]
    fn a_password_must_have_8_to_128_characters() {
        assert!(Password::parse(&Secret::new("1234567")).is_err());
        assert!(Password::parse(&Secret::new("12345678")).is_ok());
        assert!(Password::parse(&Secret::new("é".repeat(128))).is_ok());
        assert!(Password::parse(&Secret::new("x".repeat(129))).is_err());
    }

    #[test]
    fn a_secret_never_shows_in_debug_output() {
        let secret = Secret::new("hunter22");
        assert!(!format!("{secret:?}").contains("hunter22"));
        let password = Password::parse(&secret).unwrap();
        assert!(!format!("{password:?}").contains("hunter22"));
        assert_eq!(serde_json::to_string(&secret).unwrap(), "\"hunter22\"");
    }

    #[test]
    fn blank_names_mean_none_and_long_ones_fail() {
        assert_eq!(Name::parse_optional(Some("  ")).unwrap(), None);
        assert_eq!(
            Name::parse_optional(Some(" Ada "))
                .unwrap()
                .unwrap()
                .into_string(),
            "Ada"
        );
        assert!(Name::parse_optional(Some(&"x".repeat(101))).is_err());
        assert!(Name::parse_optional(Some("a\u{0}b")).is_err());
    }

    #[test]
    fn the_checker_reports_every_failing_field() {
        let mut checker = Checker::new();
        checker.check("email", Email::parse("nope"));
        checker.check("password", Password::parse(&Secret::new("short")));
        let err = checker.finish().unwrap_err();
        let fields: Vec<_> = err.details.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, ["email", "password"]);
    }
}
