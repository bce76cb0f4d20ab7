//! Access-token verification, local to the gateway.
//!
//! Public keys come from `auth.jwks` and are cached by `kid`. A token naming
//! an unknown `kid` triggers one refetch (single-flight, at most once per
//! `jwks_refresh_min_interval_ms`, so forged `kid`s cannot flood the auth
//! worker). The set is also fetched again every `jwks_refresh_interval_secs`
//! and whenever an auth-worker announces [`auth::KEYS_CHANGED`] (it does when
//! it starts serving), so a key removed from the set stops verifying without
//! a restart of the gateway ([`TokenVerifier::keep_fresh`]). Only EdDSA is
//! accepted, and `exp`, `iss`, `aud` and `sub` are required: jsonwebtoken
//! would otherwise accept a token without `iss`/`aud`.
//!
//! An Ed25519 signature check is the costliest step of a cheap
//! authenticated request such as `GET /api/users/me`, and a client sends
//! the same token for up to its 15 minutes. So a token that verified is
//! remembered, by its exact text, with its caller and expiry: the same token
//! again is accepted without a signature check until its `exp` (plus the
//! leeway), exactly as long as a full check would accept it. A new key set
//! forgets the tokens of every key it no longer holds (a removed key stops
//! verifying at once) and keeps the others, so adding a key during a
//! rotation does not make every client pay a signature check again. At most
//! [`VERIFIED_CAPACITY`] tokens are kept.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

use futures::{Stream, StreamExt};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use runtime::rpc::Rpc;
use shared::{
    Caller, RequestContext,
    auth::{self, AccessClaims, JwkSet, Jwks, JwksRequest},
};

use crate::{error::ApiError, settings::JwtSettings};

pub struct TokenVerifier {
    rpc: Rpc,
    validation: Validation,
    keys: RwLock<HashMap<String, Key>>,
    /// When the keys were last fetched; the lock makes refetches single-flight.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    min_interval: Duration,
    /// Tokens that verified, by their text.
    verified: Mutex<HashMap<Box<str>, Verified>>,
    leeway: i64,
}

/// A public key of the set, by `kid`.
#[derive(Clone)]
struct Key {
    /// The JWK's `x`: a `kid` that comes back with other key material is
    /// another key.
    x: String,
    key: Arc<DecodingKey>,
}

/// A token that verified: its caller, until when it stays valid (`exp` +
/// leeway, Unix seconds), and the `kid` of the key that verified it.
#[derive(Debug, Clone)]
struct Verified {
    caller: Caller,
    valid_until: i64,
    kid: Arc<str>,
}

/// How many verified tokens are remembered (about 400 bytes each).
pub const VERIFIED_CAPACITY: usize = 4096;

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier").finish_non_exhaustive()
    }
}

/// EdDSA only; `exp`, `iss`, `aud` and `sub` must be present and right, and
/// an `nbf`, if any, past.
fn validation(settings: &JwtSettings) -> Validation {
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_issuer(&[&settings.issuer]);
    validation.set_audience(&[&settings.audience]);
    // Without this, jsonwebtoken accepts a token that simply omits iss/aud.
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    // Our tokens carry no `nbf`; one that does is not valid before it.
    validation.validate_nbf = true;
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
        let entry = verified.get(token)?;
        (now <= entry.valid_until).then_some(entry.caller)
    }

    /// Remembers a token that `key` (the set's `kid`) verified, unless the
    /// key left the set meanwhile (a new set arrived during the check).
    fn remember(&self, token: &str, caller: Caller, exp: i64, kid: &str, key: &Arc<DecodingKey>) {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        // Lock order: `verified`, then `keys` (as `install` does).
        let Ok(mut verified) = self.verified.lock() else {
            return;
        };
        if self
            .cached(kid)
            .is_none_or(|current| !Arc::ptr_eq(&current, key))
        {
            return;
        }
        if verified.len() >= VERIFIED_CAPACITY {
            verified.retain(|_, v| now <= v.valid_until);
            if verified.len() >= VERIFIED_CAPACITY {
                verified.clear();
            }
        }
        verified.insert(
            token.into(),
            Verified {
                caller,
                valid_until: exp.saturating_add(self.leeway),
                kid: kid.into(),
            },
        );
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
            mfa: shared::mfa::amr::has_second_factor(&data.claims.amr),
        };
        self.remember(token, caller, data.claims.exp, &kid, &key);
        Ok(caller)
    }

    fn cached(&self, kid: &str) -> Option<Arc<DecodingKey>> {
        Some(Arc::clone(&self.keys.read().ok()?.get(kid)?.key))
    }

    /// Fetches the set for a token of an unknown `kid`: at most once per
    /// `jwks_refresh_min_interval_ms`, whoever asks.
    async fn refetch(&self, kid: &str) -> Result<(), ApiError> {
        let mut last = self.last_fetch.lock().await;
        // Another request may have fetched while this one waited.
        if self.cached(kid).is_some() {
            return Ok(());
        }
        if last.is_some_and(|t| t.elapsed() < self.min_interval) {
            return Ok(());
        }
        self.fetch(&mut last).await
    }

    /// Fetches the set now (periodically, or on the auth-worker's notice),
    /// after any fetch in progress.
    pub async fn refresh(&self) -> Result<(), ApiError> {
        let mut last = self.last_fetch.lock().await;
        self.fetch(&mut last).await
    }

    async fn fetch(&self, last: &mut Option<Instant>) -> Result<(), ApiError> {
        let set = self
            .rpc
            .call::<Jwks>(&RequestContext::default(), &JwksRequest {})
            .await?;
        *last = Some(Instant::now());
        self.install(&set);
        Ok(())
    }

    /// Replaces the key set (not merges: a key dropped from the set stops
    /// verifying) and forgets the tokens of every key that is gone or
    /// changed; the tokens of the keys that stay are still good.
    fn install(&self, set: &JwkSet) {
        let keys = set
            .keys
            .iter()
            .filter(|k| k.kty == "OKP" && k.crv == "Ed25519")
            .filter_map(|k| {
                let key = DecodingKey::from_ed_components(&k.x).ok()?;
                Some((
                    k.kid.clone(),
                    Key {
                        x: k.x.clone(),
                        key: Arc::new(key),
                    },
                ))
            })
            .collect::<HashMap<_, _>>();
        // Lock order: `verified`, then `keys` (as `remember` does), so no
        // token of a removed key is remembered after this.
        let Ok(mut verified) = self.verified.lock() else {
            return;
        };
        let Ok(mut cache) = self.keys.write() else {
            return;
        };
        let kept: HashMap<String, Key> = keys
            .into_iter()
            .map(|(kid, new)| match cache.get(&kid) {
                // The same key: keep its `DecodingKey`, which `remember`
                // compares against.
                Some(old) if old.x == new.x => (kid, old.clone()),
                _ => (kid, new),
            })
            .collect();
        let still_valid = |kid: &str| {
            kept.get(kid)
                .zip(cache.get(kid))
                .is_some_and(|(new, old)| Arc::ptr_eq(&new.key, &old.key))
        };
        let before = verified.len();
        verified.retain(|_, v| still_valid(&v.kid));
        let forgotten = before - verified.len();
        let removed = cache.keys().filter(|kid| !kept.contains_key(*kid)).count();
        tracing::info!(keys = kept.len(), removed, forgotten, "fetched token keys");
        *cache = kept;
    }

    /// Keeps the key set fresh: fetches it every `interval`, and whenever
    /// `notices` yields (the gateway subscribes it to
    /// [`auth::KEYS_CHANGED`]). A failed fetch is tried again sooner, from
    /// the minimum interval up, doubling. Runs until dropped.
    pub async fn keep_fresh(&self, notices: impl Stream<Item = ()>, interval: Duration) {
        let first_retry = self.min_interval.max(Duration::from_millis(100));
        let mut notices = std::pin::pin!(notices.fuse());
        let mut wait = interval;
        loop {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                Some(()) = notices.next() => {
                    tracing::info!(subject = auth::KEYS_CHANGED, "the token keys may have changed");
                }
            }
            wait = match self.refresh().await {
                Ok(()) => interval,
                Err(e) => {
                    let retry = if wait >= interval {
                        first_retry
                    } else {
                        (wait * 2).min(interval)
                    };
                    tracing::warn!(error = %e, retry_in = ?retry, "cannot fetch the token keys");
                    retry
                }
            };
        }
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
            email_verified: true,
            firstname: None,
            lastname: None,
            role: shared::Role::User,
            created_at: now,
            updated_at: now,
        };
        issuer
            .issue_access_token(
                &user,
                &auth_worker::tokens::SessionAuth::password(uuid::Uuid::new_v4()),
            )
            .unwrap()
    }

    /// A verifier whose `auth.jwks` answers with whatever `keys` holds, in
    /// process (no NATS needed to test the cache).
    fn verifier(keys: Arc<Mutex<JwkSet>>) -> TokenVerifier {
        use runtime::rpc::LocalHandler;
        use shared::Endpoint;
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
        v.verified
            .lock()
            .unwrap()
            .get_mut(token.as_str())
            .unwrap()
            .valid_until = now - 1;
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
        let issuer = issuer();
        let v = verifier(Arc::new(Mutex::new(JwkSet { keys: vec![] })));
        v.install(issuer.jwks());
        let kid = &issuer.jwks().keys[0].kid;
        let key = v.cached(kid).unwrap();
        let caller = Caller {
            id: 1,
            role: shared::Role::User,
            session: None,
            mfa: false,
        };
        let far = time::OffsetDateTime::now_utc().unix_timestamp() + 900;
        for i in 0..VERIFIED_CAPACITY + 10 {
            v.remember(&format!("token-{i}"), caller, far, kid, &key);
        }
        assert!(v.verified.lock().unwrap().len() <= VERIFIED_CAPACITY);
    }

    #[tokio::test]
    async fn a_new_key_set_forgets_only_the_tokens_of_the_keys_it_drops() {
        let (a, b) = (issuer(), issuer());
        let keys = Arc::new(Mutex::new(a.jwks().clone()));
        let v = verifier(Arc::clone(&keys));
        let token_a = token(&a, 1);
        assert!(v.verify(&token_a).await.is_ok());
        // B joins the set (a rotation starts): A's tokens stay remembered.
        let mut both = a.jwks().clone();
        both.keys.extend(b.jwks().keys.iter().cloned());
        *keys.lock().unwrap() = both;
        let token_b = token(&b, 2);
        assert!(v.verify(&token_b).await.is_ok());
        assert!(
            v.remembered(&token_a).is_some(),
            "adding a key forgot A's tokens"
        );
        // A leaves: its tokens are forgotten and refused, B's stay.
        *keys.lock().unwrap() = b.jwks().clone();
        v.refresh().await.unwrap();
        assert!(v.remembered(&token_a).is_none());
        assert!(v.verify(&token_a).await.is_err());
        assert!(v.remembered(&token_b).is_some());
    }

    #[tokio::test]
    async fn a_key_that_comes_back_under_its_kid_with_other_material_is_another_key() {
        let (a, b) = (issuer(), issuer());
        let keys = Arc::new(Mutex::new(a.jwks().clone()));
        let v = verifier(Arc::clone(&keys));
        let token_a = token(&a, 1);
        assert!(v.verify(&token_a).await.is_ok());
        // B's key material under A's kid.
        let mut swapped = b.jwks().clone();
        swapped.keys[0].kid.clone_from(&a.jwks().keys[0].kid);
        *keys.lock().unwrap() = swapped;
        v.refresh().await.unwrap();
        assert!(v.remembered(&token_a).is_none());
        assert!(v.verify(&token_a).await.is_err());
    }

    /// Polls `verify(token)` until it fails, for at most 5 s.
    async fn until_refused(v: &TokenVerifier, token: &str) -> bool {
        tokio::time::timeout(Duration::from_secs(5), async {
            while v.verify(token).await.is_ok() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .is_ok()
    }

    #[tokio::test]
    async fn the_key_set_is_fetched_again_periodically() {
        let (a, b) = (issuer(), issuer());
        let keys = Arc::new(Mutex::new(a.jwks().clone()));
        let v = Arc::new(verifier(Arc::clone(&keys)));
        let token_a = token(&a, 1);
        assert!(v.verify(&token_a).await.is_ok());
        let fresh = tokio::spawn({
            let v = Arc::clone(&v);
            async move {
                v.keep_fresh(futures::stream::pending(), Duration::from_millis(50))
                    .await;
            }
        });
        // Nothing asks for the set; A leaves it all the same.
        *keys.lock().unwrap() = b.jwks().clone();
        assert!(
            until_refused(&v, &token_a).await,
            "a token of the removed key still passed after 5 s"
        );
        fresh.abort();
    }

    #[tokio::test]
    async fn the_key_set_is_fetched_again_on_the_auth_workers_notice() {
        let (a, b) = (issuer(), issuer());
        let keys = Arc::new(Mutex::new(a.jwks().clone()));
        let v = Arc::new(verifier(Arc::clone(&keys)));
        let token_a = token(&a, 1);
        assert!(v.verify(&token_a).await.is_ok());
        let (notify, notices) = tokio::sync::mpsc::unbounded_channel();
        let fresh = tokio::spawn({
            let v = Arc::clone(&v);
            async move {
                let notices = futures::stream::unfold(notices, |mut rx| async move {
                    rx.recv().await.map(|()| ((), rx))
                });
                // The period alone would take an hour.
                v.keep_fresh(notices, Duration::from_secs(3600)).await;
            }
        });
        *keys.lock().unwrap() = b.jwks().clone();
        assert!(v.verify(&token_a).await.is_ok(), "remembered until told");
        notify.send(()).unwrap();
        assert!(
            until_refused(&v, &token_a).await,
            "a token of the removed key still passed after 5 s"
        );
        fresh.abort();
    }

    /// CVE-2026-25537: jsonwebtoken before 10.3 took a time claim of the
    /// wrong JSON type for an absent one, skipping its check.
    #[test]
    fn a_time_claim_of_the_wrong_type_or_a_future_nbf_fails() {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut future = full();
        future["nbf"] = json!(now + 3600);
        assert_eq!(check(&future), Err(ErrorKind::ImmatureSignature));
        for (claim, value) in [
            ("nbf", json!((now + 3600).to_string())),
            ("nbf", json!(true)),
            ("exp", json!((now + 60).to_string())),
        ] {
            let mut claims = full();
            claims[claim] = value.clone();
            assert!(check(&claims).is_err(), "{claim}: {value} passed");
        }
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
