//! Access tokens (EdDSA JWTs) and opaque refresh tokens.
//!
//! The signing key is an Ed25519 PKCS#8 PEM file read at start-up. Its `kid`
//! is the RFC 7638 JWK thumbprint of the public key, so a key names itself and
//! a rotated key gets a new `kid` without anyone choosing one.

use std::{fs, io::Write, path::Path};

use anyhow::{Context, bail};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::RngCore;
use ring::signature::{Ed25519KeyPair, KeyPair};
use sha2::{Digest, Sha256};
use shared::{
    User,
    auth::{AccessClaims, AssertionClaims, Jwk, JwkSet},
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::settings::JwtSettings;

/// How a session was authenticated, as its tokens and assertions say:
/// its id (`sid`), the methods (`amr`) and when it last authenticated
/// (`auth_time`). Read from the session's row, which a step-up changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionAuth {
    pub id: Uuid,
    pub amr: Vec<String>,
    pub auth_time: OffsetDateTime,
}

impl SessionAuth {
    /// A session that has just logged in with a password.
    pub fn password(id: Uuid) -> Self {
        Self {
            id,
            amr: vec![shared::mfa::amr::PWD.to_owned()],
            auth_time: OffsetDateTime::now_utc(),
        }
    }
}

/// Signs access tokens and knows the public keys to publish.
pub struct TokenIssuer {
    key: EncodingKey,
    kid: String,
    jwks: JwkSet,
    issuer: String,
    audience: String,
    access_ttl_secs: u64,
    assertion_ttl_secs: u64,
}

/// The longest a proxy assertion may live, whatever the settings say.
pub const MAX_ASSERTION_TTL_SECS: u64 = 60;

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    pub fn from_settings(settings: &JwtSettings) -> anyhow::Result<Self> {
        let path = &settings.private_key_file;
        let text = fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read the JWT signing key {}; create one with \
                 `auth-worker gen-key --out {}` (`cargo xtask up` does it for you)",
                path.display(),
                path.display()
            )
        })?;
        let der = pem_contents(&text, "PRIVATE KEY")
            .with_context(|| format!("{} is not a PKCS#8 PEM private key", path.display()))?;
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
            .map_err(|e| anyhow::anyhow!("{} is not an Ed25519 key: {e}", path.display()))?;
        let current = jwk(pair.public_key().as_ref());
        let kid = current.kid.clone();
        let mut keys = vec![current];
        for extra in &settings.extra_public_key_files {
            let text = fs::read_to_string(extra)
                .with_context(|| format!("reading public key {}", extra.display()))?;
            let spki = pem_contents(&text, "PUBLIC KEY")?;
            // An Ed25519 SubjectPublicKeyInfo is a 12-byte prefix and the key.
            if spki.len() != 44 {
                bail!("{} is not an Ed25519 public key", extra.display());
            }
            keys.push(jwk(&spki[12..]));
        }
        Ok(Self {
            key: EncodingKey::from_ed_der(&der),
            kid,
            jwks: JwkSet { keys },
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            access_ttl_secs: settings.access_ttl_secs,
            assertion_ttl_secs: settings.assertion_ttl_secs.clamp(1, MAX_ASSERTION_TTL_SECS),
        })
    }

    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }

    pub fn access_ttl_secs(&self) -> u64 {
        self.access_ttl_secs
    }

    /// A signed access token for `user` in login session `session`.
    pub fn issue_access_token(&self, user: &User, session: &SessionAuth) -> anyhow::Result<String> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let claims = AccessClaims {
            sub: user.id.to_string(),
            role: user.role,
            iat: now,
            exp: now + i64::try_from(self.access_ttl_secs).unwrap_or(i64::MAX / 2),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            jti: Uuid::new_v4().to_string(),
            sid: Some(session.id),
            amr: session.amr.clone(),
            auth_time: Some(session.auth_time.unix_timestamp()),
        };
        self.sign(&claims).context("signing the access token")
    }

    /// `claims` as an EdDSA JWT naming this key's `kid`.
    fn sign(&self, claims: &impl serde::Serialize) -> jsonwebtoken::errors::Result<String> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key)
    }
}

impl TokenIssuer {
    /// Seconds a proxy assertion is valid for.
    pub fn assertion_ttl_secs(&self) -> u64 {
        self.assertion_ttl_secs
    }

    /// A signed assertion that `user` is who a request to the upstream with
    /// `audience` comes from (same key and issuer as access tokens, but a
    /// `proxy:` audience no API accepts, and a life of at most a minute).
    pub fn issue_assertion(
        &self,
        user: &User,
        audience: &str,
        session: &SessionAuth,
    ) -> anyhow::Result<String> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let claims = AssertionClaims {
            sub: user.id.to_string(),
            // An address nobody proved is no identity to vouch for.
            email: if user.email_verified {
                user.email.clone()
            } else {
                String::new()
            },
            email_verified: user.email_verified,
            role: user.role,
            iat: now,
            exp: now + i64::try_from(self.assertion_ttl_secs).unwrap_or(60),
            iss: self.issuer.clone(),
            aud: audience.to_owned(),
            jti: Uuid::new_v4().to_string(),
            amr: session.amr.clone(),
            auth_time: session.auth_time.unix_timestamp(),
        };
        self.sign(&claims).context("signing an assertion")
    }
}

/// A new opaque refresh token (256 random bits, base64url) and the SHA-256
/// that is stored in its place.
pub fn new_refresh_token() -> (String, Vec<u8>) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = refresh_token_hash(&token);
    (token, hash)
}

/// What the database stores for a refresh token.
pub fn refresh_token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Seals `successor` (the refresh token that replaces `spent`) so that only a
/// holder of `spent` can open it: AES-256-GCM under SHA-256 of a label and
/// `spent`, bound to the session. Stored with the spent token, it lets a
/// client that retries a refresh get the current token back, while the
/// database alone yields no usable token (it holds only `spent`'s hash).
pub fn seal_successor(spent: &str, session: Uuid, successor: &str) -> anyhow::Result<Vec<u8>> {
    use ring::aead::{Aad, LessSafeKey, NONCE_LEN, Nonce};
    let key = LessSafeKey::new(successor_key(spent)?);
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let mut sealed = successor.as_bytes().to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(session.as_bytes()),
        &mut sealed,
    )
    .map_err(|_| anyhow::anyhow!("sealing a refresh token failed"))?;
    Ok([nonce.as_slice(), &sealed].concat())
}

/// Opens what [`seal_successor`] made; `None` if `spent` or `session` is not
/// the one it was sealed for, or the bytes were changed.
pub fn open_successor(spent: &str, session: Uuid, sealed: &[u8]) -> Option<String> {
    use ring::aead::{Aad, LessSafeKey, NONCE_LEN, Nonce};
    let key = LessSafeKey::new(successor_key(spent).ok()?);
    let (nonce, ciphertext) = sealed.split_at_checked(NONCE_LEN)?;
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut buffer = ciphertext.to_vec();
    let plain = key
        .open_in_place(nonce, Aad::from(session.as_bytes()), &mut buffer)
        .ok()?;
    String::from_utf8(plain.to_vec()).ok()
}

fn successor_key(spent: &str) -> anyhow::Result<ring::aead::UnboundKey> {
    let mut hasher = Sha256::new();
    hasher.update(b"natsauth refresh successor v1\0");
    hasher.update(spent.as_bytes());
    ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, &hasher.finalize())
        .map_err(|_| anyhow::anyhow!("AES-256-GCM key"))
}

fn jwk(public_key: &[u8]) -> Jwk {
    let x = URL_SAFE_NO_PAD.encode(public_key);
    // RFC 7638: the required members, in lexicographic order, no spaces.
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
    Jwk {
        kty: "OKP".into(),
        crv: "Ed25519".into(),
        x,
        kid,
        alg: "EdDSA".into(),
        use_: "sig".into(),
    }
}

fn pem_contents(text: &str, tag: &str) -> anyhow::Result<Vec<u8>> {
    let pem = pem::parse(text).context("not PEM")?;
    if pem.tag() != tag {
        bail!("expected a {tag} PEM block, found {}", pem.tag());
    }
    Ok(pem.into_contents())
}

/// Writes a new Ed25519 key as PKCS#8 PEM, readable by its owner only.
/// Refuses to overwrite an existing file.
pub fn generate_key_file(path: &Path) -> anyhow::Result<()> {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
        .map_err(|e| anyhow::anyhow!("generating a key: {e}"))?;
    let text = pem::encode(&pem::Pem::new("PRIVATE KEY", pkcs8.as_ref().to_vec()));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {} (it must not exist yet)", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_successor_opens_only_with_the_spent_token_and_its_session() {
        let (spent, _) = new_refresh_token();
        let (next, _) = new_refresh_token();
        let session = Uuid::now_v7();
        let sealed = seal_successor(&spent, session, &next).unwrap();
        assert!(!sealed.windows(next.len()).any(|w| w == next.as_bytes()));
        assert_eq!(
            open_successor(&spent, session, &sealed).as_deref(),
            Some(next.as_str())
        );
        let (other, _) = new_refresh_token();
        assert_eq!(open_successor(&other, session, &sealed), None);
        assert_eq!(open_successor(&spent, Uuid::now_v7(), &sealed), None);
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(open_successor(&spent, session, &tampered), None);
        assert_eq!(open_successor(&spent, session, &sealed[..5]), None);
    }

    #[test]
    fn the_kid_is_the_rfc_7638_thumbprint() {
        // RFC 8037 appendix A.3: the thumbprint of its example Ed25519 key.
        let x = URL_SAFE_NO_PAD
            .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
            .unwrap();
        assert_eq!(jwk(&x).kid, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }

    #[test]
    fn a_generated_key_signs_tokens_that_its_jwk_verifies() {
        let dir = std::env::temp_dir().join(format!("keys-{}", Uuid::new_v4()));
        let path = dir.join("k.pem");
        generate_key_file(&path).unwrap();
        assert!(generate_key_file(&path).is_err(), "overwrote a key");
        let issuer = TokenIssuer::from_settings(&JwtSettings {
            private_key_file: path,
            extra_public_key_files: vec![],
            issuer: "iss".into(),
            audience: "aud".into(),
            access_ttl_secs: 60,
            refresh_ttl_secs: 60,
            // Over the cap: the issuer keeps it at a minute.
            assertion_ttl_secs: 3600,
        })
        .unwrap();
        let user = User {
            id: 3,
            email: "a@b.co".into(),
            email_verified: true,
            firstname: None,
            lastname: None,
            role: shared::Role::User,
            created_at: OffsetDateTime::now_utc(),
            updated_at: OffsetDateTime::now_utc(),
        };
        let token = issuer
            .issue_access_token(&user, &SessionAuth::password(Uuid::nil()))
            .unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::EdDSA);
        // The key set publishes the signing key under the kid the header names.
        assert_eq!(
            header.kid.as_deref(),
            Some(issuer.jwks().keys[0].kid.as_str())
        );
        let key = jsonwebtoken::DecodingKey::from_ed_components(&issuer.jwks().keys[0].x).unwrap();
        let mut validation = jsonwebtoken::Validation::new(Algorithm::EdDSA);
        validation.set_audience(&["aud"]);
        validation.set_issuer(&["iss"]);
        let data = jsonwebtoken::decode::<AccessClaims>(&token, &key, &validation).unwrap();
        assert_eq!(data.claims.sub, "3");

        // An assertion: same key, its own audience, a minute at most, and
        // no access-token audience verifies it.
        let assertion = issuer
            .issue_assertion(&user, "proxy:tool", &SessionAuth::password(Uuid::nil()))
            .unwrap();
        assert!(jsonwebtoken::decode::<AssertionClaims>(&assertion, &key, &validation).is_err());
        validation.set_audience(&["proxy:tool"]);
        let data = jsonwebtoken::decode::<AssertionClaims>(&assertion, &key, &validation).unwrap();
        assert_eq!(data.claims.email, "a@b.co");
        assert!(data.claims.email_verified);
        assert_eq!(data.claims.exp - data.claims.iat, 60);
        assert_eq!(issuer.assertion_ttl_secs(), 60);
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn refresh_tokens_carry_256_bits_and_are_stored_hashed() {
        let (token, hash) = new_refresh_token();
        assert_eq!(URL_SAFE_NO_PAD.decode(&token).unwrap().len(), 32);
        assert_eq!(hash, refresh_token_hash(&token));
        assert_ne!(new_refresh_token().0, token);
    }
}
