//! The session cookie's value: the token pair, sealed with AES-256-GCM; and
//! the pending-login cookie's, sealed the same way.
//!
//! A value is `v1.` and the base64url (unpadded) of a 12-byte random nonce
//! followed by the ciphertext and its 16-byte tag. The cookie's name, the
//! version and, for a pending login, its purpose are the associated data,
//! so a value sealed for another cookie or format does not open: a session
//! value never opens as a pending login (the `<name>-mfa` cookie, see
//! [`PENDING_SUFFIX`]) nor the other way round, though both use the same
//! keys. Only the gateway holds the key: the browser (and
//! any script in it) sees an opaque string it cannot read or alter.
//!
//! Rotation: [`SessionKeys`] seals with the current key and opens with the
//! current or the previous one; a cookie opened with the previous key is
//! sealed again with the current one on its way back
//! ([`Opened::stale_key`]).

use std::path::Path;

use anyhow::{Context, bail};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ring::{
    aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey},
    rand::{SecureRandom, SystemRandom},
};
use serde::{Deserialize, Serialize};

/// The format tag in front of every value (and in the associated data).
const VERSION: &str = "v1";
/// A key is this many bytes (AES-256).
pub const KEY_LEN: usize = 32;
/// Larger cookie values are refused unread (browsers keep 4096 bytes a
/// cookie; ours is about 1 KiB).
const MAX_VALUE_LEN: usize = 4096;

/// What the cookie holds. Short field names: every request carries it.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Contents {
    /// The access token (a JWT).
    #[serde(rename = "a")]
    pub access_token: String,
    /// The refresh token (opaque).
    #[serde(rename = "r")]
    pub refresh_token: String,
    /// When the access token expires (Unix seconds).
    #[serde(rename = "x")]
    pub access_expires_at: i64,
    /// When the session ends however often it is refreshed (Unix seconds).
    #[serde(rename = "s")]
    pub session_expires_at: i64,
}

impl std::fmt::Debug for Contents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The tokens are secrets: never in a log line.
        f.debug_struct("Contents")
            .field("access_expires_at", &self.access_expires_at)
            .field("session_expires_at", &self.session_expires_at)
            .finish_non_exhaustive()
    }
}

/// What the pending-login cookie holds: the token of a login whose
/// password was right and whose second factor is still to come (see
/// `shared::mfa::MfaChallenge`). The browser never sees the token itself.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Pending {
    /// The pending login's token (opaque).
    #[serde(rename = "t")]
    pub token: String,
    /// When the pending login ends (Unix seconds).
    #[serde(rename = "x")]
    pub expires_at: i64,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a secret: never in a log line.
        f.debug_struct("Pending")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The pending-login cookie's name is the session cookie's and this.
pub const PENDING_SUFFIX: &str = "-mfa";

/// A cookie value that opened.
#[derive(Debug)]
pub struct Opened {
    pub contents: Contents,
    /// It was sealed with the previous key: seal it again with the current.
    pub stale_key: bool,
}

/// Why a value did not open; all of them mean "no session".
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpenError {
    #[error("not a session cookie value")]
    Malformed,
    #[error("the session cookie does not open with any key")]
    Forged,
}

/// The current sealing key and the one before it.
pub struct SessionKeys {
    current: LessSafeKey,
    previous: Option<LessSafeKey>,
    /// The associated data of a session value: `v1` and the cookie's name.
    aad: Vec<u8>,
    /// The associated data of a pending login: `v1;pending;` and the
    /// session cookie's name. A `;` is in no cookie name, so this is no
    /// session value's associated data, whatever the cookie is called.
    pending_aad: Vec<u8>,
    random: SystemRandom,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeys")
            .field("previous", &self.previous.is_some())
            .finish_non_exhaustive()
    }
}

impl SessionKeys {
    /// Keys from raw bytes (each [`KEY_LEN`] long).
    pub fn new(current: &[u8], previous: Option<&[u8]>, cookie_name: &str) -> anyhow::Result<Self> {
        let key = |bytes: &[u8]| -> anyhow::Result<LessSafeKey> {
            if bytes.len() != KEY_LEN {
                bail!("a session key is {KEY_LEN} bytes, not {}", bytes.len());
            }
            let unbound = UnboundKey::new(&AES_256_GCM, bytes)
                .map_err(|_| anyhow::anyhow!("not an AES-256 key"))?;
            Ok(LessSafeKey::new(unbound))
        };
        Ok(Self {
            current: key(current)?,
            previous: previous.map(key).transpose()?,
            aad: format!("{VERSION}.{cookie_name}").into_bytes(),
            pending_aad: format!("{VERSION};pending;{cookie_name}").into_bytes(),
            random: SystemRandom::new(),
        })
    }

    /// A random key that lives as long as the process (for tests, the
    /// benchmark, and a gateway configured without a key file).
    pub fn ephemeral(cookie_name: &str) -> anyhow::Result<Self> {
        Self::new(&generate()?, None, cookie_name)
    }

    /// Keys read from files written by [`write_key_file`]; `previous` may be
    /// absent.
    pub fn from_files(
        current: &Path,
        previous: Option<&Path>,
        cookie_name: &str,
    ) -> anyhow::Result<Self> {
        let current = read_key_file(current)?;
        let previous = previous.map(read_key_file).transpose()?;
        Self::new(&current, previous.as_deref(), cookie_name)
    }

    /// Seals `contents` into a session cookie value.
    pub fn seal(&self, contents: &Contents) -> anyhow::Result<String> {
        let data = serde_json::to_vec(contents).context("encoding the session")?;
        self.seal_bytes(&self.aad, data)
    }

    /// Opens a session cookie value sealed by [`seal`](Self::seal) with the
    /// current or the previous key.
    pub fn open(&self, value: &str) -> Result<Opened, OpenError> {
        let (plain, stale_key) = self.open_bytes(&self.aad, value)?;
        let contents = serde_json::from_slice(&plain).map_err(|_| OpenError::Forged)?;
        Ok(Opened {
            contents,
            stale_key,
        })
    }

    /// Seals a pending login into a pending-login cookie value.
    pub fn seal_pending(&self, pending: &Pending) -> anyhow::Result<String> {
        let data = serde_json::to_vec(pending).context("encoding the pending login")?;
        self.seal_bytes(&self.pending_aad, data)
    }

    /// Opens a pending-login cookie value sealed by
    /// [`seal_pending`](Self::seal_pending) (with the current or the
    /// previous key: a pending login lasts minutes, it is not sealed again).
    pub fn open_pending(&self, value: &str) -> Result<Pending, OpenError> {
        let (plain, _) = self.open_bytes(&self.pending_aad, value)?;
        serde_json::from_slice(&plain).map_err(|_| OpenError::Forged)
    }

    /// `v1.` and the nonce, ciphertext and tag of `data` under `aad`.
    fn seal_bytes(&self, aad: &[u8], mut data: Vec<u8>) -> anyhow::Result<String> {
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .map_err(|_| anyhow::anyhow!("no randomness for a nonce"))?;
        self.current
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut data,
            )
            .map_err(|_| anyhow::anyhow!("sealing the cookie failed"))?;
        let mut raw = Vec::with_capacity(NONCE_LEN + data.len());
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&data);
        Ok(format!("{VERSION}.{}", URL_SAFE_NO_PAD.encode(raw)))
    }

    /// The plain bytes of a value sealed under `aad`, and whether it took
    /// the previous key.
    fn open_bytes(&self, aad: &[u8], value: &str) -> Result<(Vec<u8>, bool), OpenError> {
        if value.len() > MAX_VALUE_LEN {
            return Err(OpenError::Malformed);
        }
        let encoded = value
            .strip_prefix(VERSION)
            .and_then(|v| v.strip_prefix('.'))
            .ok_or(OpenError::Malformed)?;
        let raw = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| OpenError::Malformed)?;
        if raw.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(OpenError::Malformed);
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let try_key = |key: &LessSafeKey| -> Option<Vec<u8>> {
            let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
            let mut data = sealed.to_vec();
            let plain = key.open_in_place(nonce, Aad::from(aad), &mut data).ok()?;
            Some(plain.to_vec())
        };
        if let Some(plain) = try_key(&self.current) {
            return Ok((plain, false));
        }
        self.previous
            .as_ref()
            .and_then(try_key)
            .map(|plain| (plain, true))
            .ok_or(OpenError::Forged)
    }
}

/// [`KEY_LEN`] random bytes.
pub fn generate() -> anyhow::Result<[u8; KEY_LEN]> {
    let mut key = [0u8; KEY_LEN];
    SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| anyhow::anyhow!("no randomness for a session key"))?;
    Ok(key)
}

/// The text of a key file: the key in standard base64 on one line.
pub fn encode_key(key: &[u8]) -> String {
    format!(
        "{}\n",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

/// Reads a key file (its first line, base64 of [`KEY_LEN`] bytes). Errors
/// name the file and say how to make one, never the key.
pub fn read_key_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "reading the session key file {} (`cargo xtask secrets` writes one; \
             `gateway gen-session-key FILE` makes one)",
            path.display()
        )
    })?;
    let line = text.lines().next().unwrap_or_default().trim();
    let key = base64::engine::general_purpose::STANDARD
        .decode(line)
        .ok()
        .filter(|k| k.len() == KEY_LEN)
        .with_context(|| {
            format!(
                "the session key file {} does not hold {KEY_LEN} bytes in base64 on its first line",
                path.display()
            )
        })?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contents() -> Contents {
        Contents {
            access_token: "header.claims.signature".into(),
            refresh_token: "r".repeat(43),
            access_expires_at: 1_700_000_900,
            session_expires_at: 1_702_592_000,
        }
    }

    fn keys(current: [u8; KEY_LEN], previous: Option<[u8; KEY_LEN]>) -> SessionKeys {
        SessionKeys::new(&current, previous.as_ref().map(|k| &k[..]), "__Host-test").unwrap()
    }

    #[test]
    fn a_sealed_value_opens_to_what_was_sealed_and_hides_the_tokens() {
        let keys = keys([1; KEY_LEN], None);
        let value = keys.seal(&contents()).unwrap();
        assert!(value.starts_with("v1."));
        assert!(!value.contains("header") && !value.contains("rrrr"));
        let opened = keys.open(&value).unwrap();
        assert_eq!(opened.contents, contents());
        assert!(!opened.stale_key);
        // A fresh nonce each time: the same contents never seal alike.
        assert_ne!(keys.seal(&contents()).unwrap(), value);
    }

    #[test]
    fn any_changed_byte_makes_the_value_not_open() {
        let keys = keys([1; KEY_LEN], None);
        let value = keys.seal(&contents()).unwrap();
        let raw = URL_SAFE_NO_PAD.decode(&value[3..]).unwrap();
        for i in 0..raw.len() {
            let mut tampered = raw.clone();
            tampered[i] ^= 0x01;
            let value = format!("v1.{}", URL_SAFE_NO_PAD.encode(&tampered));
            assert_eq!(
                keys.open(&value).unwrap_err(),
                OpenError::Forged,
                "byte {i}"
            );
        }
    }

    #[test]
    fn the_previous_key_opens_and_asks_for_resealing_but_an_older_one_does_not() {
        let old = keys([1; KEY_LEN], None).seal(&contents()).unwrap();
        let rotated = keys([2; KEY_LEN], Some([1; KEY_LEN]));
        let opened = rotated.open(&old).unwrap();
        assert!(opened.stale_key);
        assert_eq!(opened.contents, contents());
        let twice = keys([3; KEY_LEN], Some([2; KEY_LEN]));
        assert_eq!(twice.open(&old).unwrap_err(), OpenError::Forged);
    }

    #[test]
    fn a_value_sealed_for_another_cookie_name_does_not_open() {
        let value = keys([1; KEY_LEN], None).seal(&contents()).unwrap();
        let other = SessionKeys::new(&[1; KEY_LEN], None, "__Host-other").unwrap();
        assert_eq!(other.open(&value).unwrap_err(), OpenError::Forged);
    }

    fn pending() -> Pending {
        Pending {
            token: "p".repeat(43),
            expires_at: 1_700_000_300,
        }
    }

    #[test]
    fn a_pending_login_opens_to_what_was_sealed_and_hides_its_token() {
        let keys = keys([1; KEY_LEN], None);
        let value = keys.seal_pending(&pending()).unwrap();
        assert!(value.starts_with("v1.") && !value.contains("pppp"));
        assert_eq!(keys.open_pending(&value).unwrap(), pending());
        let rotated = SessionKeys::new(&[2; KEY_LEN], Some(&[1; KEY_LEN]), "__Host-test").unwrap();
        assert_eq!(rotated.open_pending(&value).unwrap(), pending());
        assert!(!format!("{:?}", pending()).contains("pppp"));
    }

    #[test]
    fn a_session_value_never_opens_as_a_pending_login_nor_the_other_way_round() {
        let keys = keys([1; KEY_LEN], None);
        let session = keys.seal(&contents()).unwrap();
        let pending = keys.seal_pending(&pending()).unwrap();
        assert_eq!(keys.open_pending(&session).unwrap_err(), OpenError::Forged);
        assert_eq!(keys.open(&pending).unwrap_err(), OpenError::Forged);
        // Nor a session value of a cookie named like the pending one.
        let named = SessionKeys::new(&[1; KEY_LEN], None, "__Host-test-mfa").unwrap();
        let value = named.seal(&contents()).unwrap();
        assert_eq!(keys.open_pending(&value).unwrap_err(), OpenError::Forged);
    }

    #[test]
    fn values_that_are_not_ours_are_malformed() {
        let keys = keys([1; KEY_LEN], None);
        for value in [
            "",
            "v1.",
            "v2.AAAA",
            "v1.!!!",
            "v1.AAAA",
            &"v1.".repeat(2000),
        ] {
            assert_eq!(
                keys.open(value).unwrap_err(),
                OpenError::Malformed,
                "{value:.20}"
            );
        }
    }

    #[test]
    fn key_files_round_trip_and_bad_ones_are_refused_without_echoing_them() {
        let dir = std::env::temp_dir().join(format!("session-key-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("key");
        std::fs::write(&good, encode_key(&[7; KEY_LEN])).unwrap();
        assert_eq!(read_key_file(&good).unwrap(), vec![7; KEY_LEN]);
        let short = dir.join("short");
        std::fs::write(&short, "c2VjcmV0LXZhbHVl\n").unwrap();
        let error = format!("{:#}", read_key_file(&short).unwrap_err());
        assert!(
            error.contains("32 bytes") && !error.contains("c2VjcmV0"),
            "{error}"
        );
        let missing = format!("{:#}", read_key_file(&dir.join("none")).unwrap_err());
        assert!(missing.contains("cargo xtask secrets"), "{missing}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
