//! The input rules every route keeps, in one place.
//!
//! Request types in [`crate::auth`] and [`crate::user`] derive
//! [`validator::Validate`] with the rules below; the gateway validates a body
//! before it leaves, and the worker validates again what it receives (see
//! [`crate::endpoint::decode_request`]), so a request published straight
//! onto NATS is held to the same rules. Decoding already trims names and
//! normalizes emails ([`Email`]).

use std::{borrow::Cow, fmt, ops::Deref};

use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};
use utoipa::{
    PartialSchema, ToSchema,
    openapi::{KnownFormat, ObjectBuilder, RefOr, Schema, SchemaFormat, Type},
};
use validator::{ValidateIp, ValidationError};

/// Longest email address (RFC 5321 path limit).
pub const EMAIL_MAX_CHARS: u64 = 254;
/// Longest local part of an email address (RFC 5321).
pub const EMAIL_LOCAL_MAX_CHARS: usize = 64;
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

/// An email address, normalized: the one spelling under which it is stored
/// and compared, so that one mailbox has one account.
///
/// * White space around it is trimmed.
/// * The local part is Unicode NFC (`é` typed as one code point or as `e`
///   and a combining accent is the same mailbox). Its case is kept, as
///   typed: the database compares it case-insensitively (`lower(email)`,
///   and the unique index `users_email_key`).
/// * The domain is mapped by IDNA, UTS #46 (lower-cased, and full-width or
///   other compatibility spellings folded to the one they stand for),
///   stored in its ASCII form (`xn--…` labels) and without the root's
///   trailing dot. ASCII because that is what DNS and SMTP take, it has one
///   spelling per domain, and it compares byte for byte whatever the
///   database's collation; a display can show the Unicode form with
///   `idna::domain_to_unicode`. An address literal (`[192.0.2.1]`) is kept,
///   lower-cased.
///
/// What it accepts: HTML5's local part (which `validator` checked before)
/// plus any non-ASCII character but white space and controls (RFC 6531),
/// at most 64 characters; a domain that UTS #46 maps to letters, digits and
/// hyphens in labels of 1 to 63 characters (no hyphen first or last); at
/// most 254 characters in all, counted normalized.
///
/// [`Email::parse`] is the constructor. Decoding never fails on a string:
/// it normalizes an address, and keeps anything else as sent (trimmed) for
/// `validate` ([`email_address`]) to report beside every other bad field.
/// Every request is validated before a handler sees it
/// ([`crate::endpoint::decode_request`]), so a handler's `Email` is normalized.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// `raw` normalized, or why it is not an email address (`required`,
    /// `length` or `email`, as [`email_address`] reports it).
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(invalid("required", "is required"));
        }
        let not_an_address = || invalid("email", "must be an email address");
        let (local, domain) = raw.rsplit_once('@').ok_or_else(not_an_address)?;
        let domain = normalized_domain(domain).ok_or_else(not_an_address)?;
        let local = match is_nfc_quick(local.chars()) {
            IsNormalized::Yes => Cow::Borrowed(local),
            _ => Cow::Owned(local.nfc().collect::<String>()),
        };
        let address = format!("{local}@{domain}");
        if address.chars().count() as u64 > EMAIL_MAX_CHARS {
            return Err(invalid("length", "must be at most 254 characters"));
        }
        if !is_local_part(&local) {
            return Err(not_an_address());
        }
        Ok(Self(address))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// The domain of an address as [`Email`] stores it, if it is one.
fn normalized_domain(domain: &str) -> Option<String> {
    if let Some(literal) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
        return literal
            .validate_ip()
            .then(|| format!("[{}]", literal.to_ascii_lowercase()));
    }
    // STD3: only letters, digits and hyphens once mapped (a host name, as
    // HTML5's check wanted); hyphens checked first and last only, as that
    // check did; label and name lengths as DNS has them, the root's dot
    // allowed here and dropped below.
    let ascii = Uts46::new()
        .to_ascii(
            domain.as_bytes(),
            AsciiDenyList::STD3,
            Hyphens::CheckFirstLast,
            DnsLength::VerifyAllowRootDot,
        )
        .ok()?;
    Some(ascii.strip_suffix('.').unwrap_or(&ascii).to_owned())
}

/// HTML5's characters for a local part, and RFC 6531's non-ASCII ones.
fn is_local_part(local: &str) -> bool {
    (1..=EMAIL_LOCAL_MAX_CHARS).contains(&local.chars().count())
        && local.chars().all(|c| {
            if c.is_ascii() {
                c.is_ascii_alphanumeric() || ".!#$%&'*+/=?^_`{|}~-".contains(c)
            } else {
                !c.is_control() && !c.is_whitespace()
            }
        })
}

impl Deref for Email {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Ok(Self::parse(&raw).unwrap_or_else(|_| Self(raw.trim().to_owned())))
    }
}

/// An email address, as decoded: [`Email::parse`] must take it (a decoded
/// `Email` that is not an address holds the text as sent).
pub fn email_address(email: &Email) -> Result<(), ValidationError> {
    Email::parse(email.as_str()).map(drop)
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

/// A token from a mail's link: present and of a plausible size (43
/// base64url characters are issued).
pub fn mail_token(token: &Secret) -> Result<(), ValidationError> {
    match token.chars() {
        0 => Err(invalid("required", "is required")),
        n if n > 256 => Err(invalid("length", "is not a link token")),
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

    fn email(raw: &str) -> String {
        Email::parse(raw)
            .unwrap_or_else(|e| panic!("{raw:?}: {e}"))
            .into_string()
    }

    #[test]
    fn emails_must_be_present_short_and_well_formed() {
        assert!(Email::parse("ada@example.com").is_ok());
        assert!(Email::parse("a@localhost").is_ok());
        assert_eq!(Email::parse("  ").unwrap_err().code, "required");
        for bad in [
            "plain",
            "@example.com",
            "a@",
            "a b@c.com",
            "a@@b.com",
            "a\u{0}b@c.com",
            "a\u{a0}b@c.com",
            "a@example..com",
            "a@example.com..",
            "a@.",
            "a@-example.com",
            "a@example-.com",
            "a@exa_mple.com",
            "a@exa mple.com",
            "a@xn--a.com",
            "a@[1.2.3]",
            "\"a\"@example.com",
        ] {
            let err = Email::parse(bad).expect_err(bad);
            assert_eq!(err.code, "email", "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(Email::parse(&long).unwrap_err().code, "length");
        // Counted as stored: a domain's ASCII form can be longer than typed.
        let label = "ü".repeat(45);
        let long = format!("{}@{label}.{label}.{label}.{label}.de", "a".repeat(64));
        assert!(long.chars().count() <= 254);
        assert_eq!(Email::parse(&long).unwrap_err().code, "length");
        let local = format!("{}@example.com", "a".repeat(65));
        assert_eq!(Email::parse(&local).unwrap_err().code, "email");
    }

    #[test]
    fn an_email_is_trimmed_its_domain_lower_cased_and_its_local_part_kept() {
        assert_eq!(email(" \tADA@Example.COM \n"), "ADA@example.com");
        assert_eq!(email("\u{3000}ada@example.com\u{3000}"), "ada@example.com");
        assert_eq!(email("a@[192.0.2.1]"), "a@[192.0.2.1]");
        assert_eq!(email("a@[2001:DB8::1]"), "a@[2001:db8::1]");
    }

    #[test]
    fn look_alike_domains_are_one_domain() {
        for spelling in [
            "ada@example.com",
            "ada@EXAMPLE.com",
            "ada@ｅｘａｍｐｌｅ.com",
            "ada@ＥＸＡＭＰＬＥ．ＣＯＭ",
            "ada@example。com",
            "ada@example.com.",
            "ada@example.com．",
        ] {
            assert_eq!(email(spelling), "ada@example.com", "{spelling:?}");
        }
    }

    #[test]
    fn an_international_domain_is_stored_in_its_ascii_form() {
        assert_eq!(email("ada@Bücher.DE"), "ada@xn--bcher-kva.de");
        assert_eq!(email("ada@xn--BCHER-kva.de"), "ada@xn--bcher-kva.de");
        assert_eq!(email("ada@ＢＵ\u{308}cher.de"), "ada@xn--bcher-kva.de");
        assert_eq!(email("用户@例子.广告"), "用户@xn--fsqu00a.xn--4rr70v");
    }

    #[test]
    fn the_local_part_is_nfc() {
        let composed = "jos\u{e9}@example.com";
        assert_eq!(email("jose\u{301}@example.com"), composed);
        assert_eq!(email(composed), composed);
        // Its case is the database's to ignore, not changed here.
        assert_eq!(email("JOS\u{c9}@example.com"), "JOS\u{c9}@example.com");
    }

    #[test]
    fn normalizing_twice_changes_nothing() {
        for raw in [
            " ADA@Example.COM ",
            "ada@ｅｘａｍｐｌｅ.com.",
            "jose\u{301}@Bücher.de",
            "用户@例子.广告",
            "a@[2001:DB8::1]",
        ] {
            let once = email(raw);
            assert_eq!(email(&once), once, "{raw:?}");
        }
    }

    #[test]
    fn decoding_normalizes_and_leaves_the_verdict_to_validation() {
        let e: Email = serde_json::from_str(r#"" ADA@ｅｘａｍｐｌｅ.com. ""#).unwrap();
        assert_eq!(e.as_str(), "ADA@example.com");
        assert!(email_address(&e).is_ok());
        assert_eq!(serde_json::to_string(&e).unwrap(), r#""ADA@example.com""#);
        let bad: Email = serde_json::from_str(r#"" nope ""#).unwrap();
        assert_eq!(bad.as_str(), "nope");
        assert_eq!(email_address(&bad).unwrap_err().code, "email");
        let empty = Email::default();
        assert_eq!(email_address(&empty).unwrap_err().code, "required");
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
