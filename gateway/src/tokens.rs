//! Access-token verification, local to the gateway.
//!
//! Public keys come from `auth.jwks` and are cached by `kid`. A token naming
//! an unknown `kid` triggers one refetch (single-flight, at most once per
//! `jwks_refresh_min_interval_ms`, so forged `kid`s cannot flood the auth
//! worker). Only EdDSA is accepted, and `exp`, `iss`, `aud` and `sub` are
//! required: jsonwebtoken would otherwise accept a token without `iss`/`aud`.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
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
}

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
        }
    }

    /// The caller a valid access token names, or 401.
    pub async fn verify(&self, token: &str) -> Result<Caller, ApiError> {
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
        Ok(Caller {
            id,
            role: data.claims.role,
            session: data.claims.sid,
        })
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
        // Replace, not merge: a key dropped from the set stops verifying.
        if let Ok(mut cache) = self.keys.write() {
            *cache = keys;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

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
