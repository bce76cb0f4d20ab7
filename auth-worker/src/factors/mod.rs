//! The second factors' secrets and checks, apart from their storage
//! (`db::mfa`) and their subjects (`handlers::mfa`):
//!
//! * [`totp`]: authenticator-app secrets, sealed at rest, and code checks
//!   that name the time step they matched (so a code is never taken twice).
//! * [`recovery`]: single-use recovery codes, kept as SHA-256.
//! * [`passkeys`]: the WebAuthn relying party, one per public origin.
//! * [`SealingKey`]: AES-256-GCM under the key of `mfa.key_file`.

pub mod passkeys;
pub mod recovery;
pub mod totp;

use anyhow::{Context, bail};
use base64::{Engine, engine::general_purpose::STANDARD};
use rand::RngCore;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

/// Seals what must not be readable from the database alone (a TOTP
/// secret): AES-256-GCM with a random nonce, the user id as associated
/// data, so a sealed value copied to another user's row does not open.
pub struct SealingKey(LessSafeKey);

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey([REDACTED])")
    }
}

impl SealingKey {
    /// The key in `path`: 32 bytes in standard base64 on the first line
    /// (`cargo xtask secrets` writes one, as it does the session key).
    /// Empty: a key made now, so secrets sealed by this process are lost
    /// when it stops (tests and one-off runs only; logged).
    pub fn from_file(path: &str) -> anyhow::Result<Self> {
        if path.is_empty() {
            tracing::warn!(
                "mfa.key_file is empty: authenticator-app secrets are sealed with a key made now \
                 and cannot be read after this process stops, nor by other copies"
            );
            let mut key = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut key);
            return Self::new(&key);
        }
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read the second-factor key {path}; create one with `cargo xtask secrets` \
                 (32 random bytes, base64)"
            )
        })?;
        let key = STANDARD
            .decode(text.lines().next().unwrap_or_default().trim())
            .with_context(|| format!("{path} is not base64"))?;
        Self::new(&key).with_context(|| format!("the key in {path}"))
    }

    fn new(key: &[u8]) -> anyhow::Result<Self> {
        if key.len() != 32 {
            bail!("a second-factor key is 32 bytes, not {}", key.len());
        }
        let key = UnboundKey::new(&AES_256_GCM, key)
            .map_err(|_| anyhow::anyhow!("not an AES-256 key"))?;
        Ok(Self(LessSafeKey::new(key)))
    }

    /// `plain` sealed for `user`: the nonce, then the ciphertext and tag.
    pub fn seal(&self, user: i64, plain: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let mut sealed = plain.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(user.to_be_bytes()),
                &mut sealed,
            )
            .map_err(|_| anyhow::anyhow!("sealing failed"))?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    /// Opens what [`seal`](Self::seal) made for `user`; an error when the
    /// key, the user or the bytes differ.
    pub fn open(&self, user: i64, sealed: &[u8]) -> anyhow::Result<Vec<u8>> {
        let (nonce, ciphertext) = sealed
            .split_at_checked(NONCE_LEN)
            .context("a sealed value too short")?;
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| anyhow::anyhow!("a sealed value's nonce"))?;
        let mut buffer = ciphertext.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(user.to_be_bytes()), &mut buffer)
            .map_err(|_| {
                anyhow::anyhow!(
                    "a sealed second-factor secret does not open (another mfa.key_file?)"
                )
            })?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_for_its_user_and_key() {
        let key = SealingKey::new(&[7u8; 32]).unwrap();
        let sealed = key.seal(5, b"secret").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(key.open(5, &sealed).unwrap(), b"secret");
        assert!(key.open(6, &sealed).is_err());
        let other = SealingKey::new(&[8u8; 32]).unwrap();
        assert!(other.open(5, &sealed).is_err());
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(key.open(5, &tampered).is_err());
        assert!(SealingKey::new(&[0u8; 16]).is_err());
    }
}
