//! Access-token verification, local to the gateway.
//!
//! Public keys come from `auth.jwks` and are cached by `kid`. A token naming
//! an unknown `kid` triggers one refetch (single-flight, at most once per
//! `jwks_refresh_min_interval_ms`, so forged `kid`s cannot flood the auth
//! worker). Only EdDSA is accepted, and `exp`, `iss`, `aud` and `sub` are
//! required: jsonwebtoken would otherwise accept a token without `iss`/`aud`.
//!
//! An Ed25519 signature check costs about 40 % of the gateway's CPU on
//! `GET /api/users/me` (perf, `cargo xtask bench`), and a client sends the
//! same token for up to its 15 minutes. So a token that verified is
//! remembered, by its exact text, with its caller and expiry: the same token
//! again is accepted without a signature check until its `exp` (plus the
//! leeway), exactly as long as a full check would accept it. Fetching a new
//! key set forgets them all (a key removed from the set stops verifying at
//! once). At most [`VERIFIED_CAPACITY`] tokens are kept.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use shared::{
    Caller, RequestContext,
    auth::{AccessClaims, Jwks, JwksRequest},
    rpc::Rpc,
};

use crate::{error::ApiError, settings::JwtSettings};

pub struct TokenVerifier {
    rpc: Rpc,
    validation: Validation,
    keys: RwLock<HashMap<String, Arc<DecodingKey>>>,
    /// When the keys were last fetched; the lock makes refetches single-flight.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    min_interval: Duration,
    /// Tokens that verified: their caller and `exp` + leeway (Unix seconds).
    verified: Mutex<HashMap<Box<str>, (Caller, i64)>>,
    leeway: i64,
}

/// How many verified tokens are remembered (about 400 bytes each).
pub const VERIFIED_CAPACITY: usize = 4096;

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier").finish_non_exhaustive()
    }
}

/// EdDSA only; `exp`, `iss`, `aud` and `sub` must be present and right.
fn validation(settings: &JwtSettings) -> Validation {
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_issuer(&[&settings.issuer]);
    validation.set_audience(&[&settings.audience]);
    // Without this, jsonwebtoken accepts a token that simply omits iss/aud.
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = settings.leeway_secs;
    validation
}

const INVALID: ApiError = ApiError::Unauthorized("invalid token");

impl TokenVerifier {
    pub fn new(rpc: Rpc, settings: &JwtSettings) -> Self {
        Self {
            rpc,
            validation: validation(settings),
            keys: RwLock::default(),
            last_fetch: tokio::sync::Mutex::new(None),
            min_interval: Duration::from_millis(settings.jwks_refresh_min_interval_ms),
            verified: Mutex::default(),
            leeway: i64::try_from(settings.leeway_secs).unwrap_or(i64::MAX),
        }
    }

    /// The caller of a token that verified before and has not expired.
    fn remembered(&self, token: &str) -> Option<Caller> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let verified = self.verified.lock().ok()?;
        let (caller, valid_until) = verified.get(token)?;
        (now <= *valid_until).then_some(*caller)
    }

    fn remember(&self, token: &str, caller: Caller, exp: i64) {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let Ok(mut verified) = self.verified.lock() else {
            return;
        };
        if verified.len() >= VERIFIED_CAPACITY {
            verified.retain(|_, (_, valid_until)| now <= *valid_until);
            if verified.len() >= VERIFIED_CAPACITY {
                verified.clear();
            }
        }
        verified.insert(token.into(), (caller, exp.saturating_add(self.leeway)));
    }

    /// The caller a valid access token names, or 401.
    pub async fn verify(&self, token: &str) -> Result<Caller, ApiError> {
        if let Some(caller) = self.remembered(token) {
            return Ok(caller);
        }
        // An `alg` outside jsonwebtoken's list (such as `none`) fails here.
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| ApiError::Unauthorized("malformed token"))?;
        if header.alg != Algorithm::EdDSA {
            return Err(INVALID);
        }
        let kid = header.kid.ok_or(INVALID)?;
        let key = match self.cached(&kid) {
            Some(key) => key,
            None => {
                self.refetch(&kid).await?;
                self.cached(&kid).ok_or(INVALID)?
            }
        };
        let data = jsonwebtoken::decode::<AccessClaims>(token, &key, &self.validation).map_err(
            |e| match e.kind() {
                ErrorKind::ExpiredSignature => ApiError::Unauthorized("token expired"),
                _ => INVALID,
            },
        )?;
        let id = data.claims.sub.parse().map_err(|_| INVALID)?;
        let caller = Caller {
            id,
            role: data.claims.role,
            session: data.claims.sid,
        };
        self.remember(token, caller, data.claims.exp);
        Ok(caller)
    }

    fn cached(&self, kid: &str) -> Option<Arc<DecodingKey>> {
        self.keys.read().ok()?.get(kid).cloned()
    }

    async fn refetch(&self, kid: &str) -> Result<(), ApiError> {
        let mut last = self.last_fetch.lock().await;
        // Another request may have fetched while this one waited.
        if self.cached(kid).is_some() {
            return Ok(());
        }
        if last.is_some_and(|t| t.elapsed() < self.min_interval) {
            return Ok(());
        }
        let set = self
            .rpc
            .call::<Jwks>(&RequestContext::default(), &JwksRequest {})
            .await?;
        *last = Some(Instant::now());
        let keys = set
            .keys
            .iter()
            .filter(|k| k.kty == "OKP" && k.crv == "Ed25519")
            .filter_map(|k| {
                let key = DecodingKey::from_ed_components(&k.x).ok()?;
                Some((k.kid.clone(), Arc::new(key)))
            })
            .collect::<HashMap<_, _>>();
        tracing::info!(keys = keys.len(), "fetched token keys");
        // Replace, not merge: a key dropped from the set stops verifying,
        // and so do the tokens it verified.
        if let Ok(mut cache) = self.keys.write() {
            *cache = keys;
        }
        if let Ok(mut verified) = self.verified.lock() {
            verified.clear();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::HashMap, sync::Mutex};

    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::{Value, json};

    use super::*;

    fn settings() -> JwtSettings {
        crate::Settings::load(None).unwrap().jwt
    }

    /// Decodes into untyped claims, so only the `Validation` can object.
    fn check(claims: &Value) -> Result<(), ErrorKind> {
        let dir = std::env::temp_dir().join(format!("gw-{}", uuid::Uuid::new_v4().simple()));
        let path = dir.join("k.pem");
        auth_worker::tokens::generate_key_file(&path).unwrap();
        let pem = std::fs::read(&path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::EdDSA),
            claims,
            &EncodingKey::from_ed_pem(&pem).unwrap(),
        )
        .unwrap();
        // The public key is the last 32 bytes of the PKCS#8 document ring wrote.
        let der = pem_der(&pem);
        let key = DecodingKey::from_ed_der(&der[der.len() - 32..]);
        jsonwebtoken::decode::<HashMap<String, Value>>(&token, &key, &validation(&settings()))
            .map(drop)
            .map_err(|e| e.into_kind())
    }

    fn pem_der(pem: &[u8]) -> Vec<u8> {
        use base64::Engine;
        let text = std::str::from_utf8(pem).unwrap();
        let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap()
    }

    fn full() -> Value {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        json!({"sub": "1", "exp": now + 60, "iss": "natsauth", "aud": "natsauth-api"})
    }

    /// An issuer with a fresh key, as the auth-worker makes them.
    fn issuer() -> auth_worker::tokens::TokenIssuer {
        let dir = std::env::temp_dir().join(format!("gw-{}", uuid::Uuid::new_v4().simple()));
        let mut jwt = auth_worker::Settings::load(None).unwrap().jwt;
        jwt.private_key_file = dir.join("k.pem");
        auth_worker::tokens::generate_key_file(&jwt.private_key_file).unwrap();
        let issuer = auth_worker::tokens::TokenIssuer::from_settings(&jwt).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        issuer
    }

    fn token(issuer: &auth_worker::tokens::TokenIssuer, id: i64) -> String {
        let now = time::OffsetDateTime::now_utc();
        let user = shared::User {
            id,
            email: format!("u{id}@example.com"),
            firstname: None,
            lastname: None,
            role: shared::Role::User,
            created_at: now,
            updated_at: now,
        };
        issuer
            .issue_access_token(&user, uuid::Uuid::new_v4())
            .unwrap()
    }

    /// A verifier whose `auth.jwks` answers with whatever `keys` holds, in
    /// process (no NATS needed to test the cache).
    fn verifier(keys: Arc<Mutex<shared::auth::JwkSet>>) -> TokenVerifier {
        use shared::{Endpoint, rpc::LocalHandler};
        let handler: LocalHandler = Arc::new(move |_, _| {
            let body = serde_json::to_vec(&*keys.lock().unwrap()).unwrap();
            Box::pin(async move { Ok(body.into()) })
        });
        let rpc = Rpc::local([(Jwks::SUBJECT, handler)], Duration::from_secs(1));
        let mut settings = settings();
        settings.jwks_refresh_min_interval_ms = 0;
        TokenVerifier::new(rpc, &settings)
    }

    #[tokio::test]
    async fn a_verified_token_is_remembered_only_until_it_expires() {
        let issuer = issuer();
        let v = verifier(Arc::new(Mutex::new(issuer.jwks().clone())));
        let token = token(&issuer, 7);
        assert!(v.remembered(&token).is_none());
        let caller = v.verify(&token).await.unwrap();
        assert_eq!(caller.id, 7);
        assert_eq!(v.remembered(&token), Some(caller));
        // Past `exp` + leeway, the memory no longer answers.
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        v.remember(&token, caller, now - v.leeway - 1);
        assert!(v.remembered(&token).is_none());
        // One character off is another token: never remembered.
        let mut other = token.clone();
        other.pop();
        assert!(v.remembered(&other).is_none());
        assert!(v.verify(&other).await.is_err());
    }

    #[tokio::test]
    async fn a_new_key_set_without_the_key_forgets_the_tokens_it_verified() {
        let (old, new) = (issuer(), issuer());
        let keys = Arc::new(Mutex::new(old.jwks().clone()));
        let v = verifier(Arc::clone(&keys));
        let old_token = token(&old, 1);
        assert!(v.verify(&old_token).await.is_ok());
        // The key is rotated out; a token of the new key makes the gateway
        // fetch the set again.
        *keys.lock().unwrap() = new.jwks().clone();
        assert!(v.verify(&token(&new, 2)).await.is_ok());
        assert!(
            v.verify(&old_token).await.is_err(),
            "a token of a removed key still passed"
        );
    }

    #[test]
    fn the_memory_stays_bounded() {
        let v = verifier(Arc::new(Mutex::new(shared::auth::JwkSet { keys: vec![] })));
        let caller = Caller {
            id: 1,
            role: shared::Role::User,
            session: None,
        };
        let far = time::OffsetDateTime::now_utc().unix_timestamp() + 900;
        for i in 0..VERIFIED_CAPACITY + 10 {
            v.remember(&format!("token-{i}"), caller, far);
        }
        assert!(v.verified.lock().unwrap().len() <= VERIFIED_CAPACITY);
    }

    #[test]
    fn complete_claims_pass_and_each_missing_spec_claim_fails() {
        assert_eq!(check(&full()), Ok(()));
        for claim in ["exp", "iss", "aud", "sub"] {
            let mut claims = full();
            claims.as_object_mut().unwrap().remove(claim);
            assert_eq!(
                check(&claims),
                Err(ErrorKind::MissingRequiredClaim(claim.into())),
                "{claim}"
            );
        }
    }
}
