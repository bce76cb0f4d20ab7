//! The identity assertions the proxy sends upstream, minted by the
//! auth-worker (`auth.proxy_assertion`: the gateway holds no signing key)
//! and reused until shortly before they expire.
//!
//! An entry is keyed by the user, the SHA-256 of the access token it was
//! minted for (never the token), and the route; so a refreshed token, a
//! route of another audience or another user never shares one. Concurrent
//! requests of one key share one call (a page and its assets arrive
//! together). A failed call is not remembered.
//!
//! Revocation: the auth-worker checks the caller's session and current role
//! when it mints, and the gateway drops a user's entries as soon as it hears
//! that the user's sessions or role changed ([`Assertions::forget_user`]),
//! so a logout, a password change or a demotion closes the proxy at once.

use std::{future::Future, sync::Arc, time::Duration};

use sha2::{Digest, Sha256};
use shared::{User, auth::ProxyAssertion, user::UserId};

use crate::{error::ApiError, single_flight::SingleFlight};

/// An assertion is reused while at least this much of its life is left, so
/// an upstream always gets one that is valid for a while yet.
pub const REUSE_MARGIN: Duration = Duration::from_secs(15);
/// More entries than this: the expired ones go, then, if still full, all
/// that no request is waiting on.
const CAPACITY: usize = 50_000;

/// A minted assertion, the user it speaks for and how the user's session
/// is authenticated (for the route's second-factor rule).
#[derive(Debug, Clone)]
pub struct Minted {
    pub assertion: Arc<str>,
    pub user: Arc<User>,
    /// The session's `amr` (`pwd`, `otp`, `hwk`) when it was minted: an
    /// entry belongs to one access token, whose `amr` does not change.
    pub amr: Arc<[String]>,
    /// When the session last proved who it is (Unix seconds).
    pub auth_time: i64,
    /// How long after the call it is handed out.
    reuse_for: Duration,
}

impl Minted {
    /// The auth-worker's reply, valid for its `expires_in`.
    pub fn new(reply: ProxyAssertion) -> Self {
        Self {
            assertion: reply.assertion.into(),
            user: Arc::new(reply.user),
            amr: reply.amr.into(),
            auth_time: reply.auth_time,
            reuse_for: Duration::from_secs(reply.expires_in).saturating_sub(REUSE_MARGIN),
        }
    }
}

/// By user, the SHA-256 of the access token, and audience.
type Key = (UserId, [u8; 32], Arc<str>);

/// The cache (one per gateway copy).
#[derive(Debug)]
pub struct Assertions {
    calls: SingleFlight<Key, Minted>,
}

impl Default for Assertions {
    fn default() -> Self {
        Self {
            calls: SingleFlight::new(CAPACITY),
        }
    }
}

impl Assertions {
    /// The assertion for `user` holding `access_token` on `route`: a fresh
    /// cached one, or `mint`'s (one call for all concurrent requests).
    pub async fn get<F, Fut>(
        &self,
        user: UserId,
        access_token: &str,
        route: &Arc<str>,
        mint: F,
    ) -> Result<Minted, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Minted, ApiError>>,
    {
        let key = (
            user,
            Sha256::digest(access_token.as_bytes()).into(),
            Arc::clone(route),
        );
        self.calls
            .get(key, |age, minted| age < minted.reuse_for, mint)
            .await
    }

    /// Drops every assertion of `user` (its sessions or role changed).
    pub fn forget_user(&self, user: UserId) {
        self.calls.forget(|(owner, _, _)| *owner == user);
    }

    /// How many entries are held.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use time::OffsetDateTime;

    use super::*;

    /// An assertion for user `id`, valid for `life` seconds.
    fn minted(id: UserId, life: u64) -> Minted {
        Minted::new(ProxyAssertion {
            assertion: "jwt".into(),
            expires_in: life,
            user: user(id),
            amr: vec!["pwd".into()],
            auth_time: 0,
        })
    }

    fn user(id: UserId) -> User {
        User {
            id,
            email: "a@b.co".into(),
            email_verified: true,
            firstname: None,
            lastname: None,
            role: shared::Role::Admin,
            created_at: OffsetDateTime::now_utc(),
            updated_at: OffsetDateTime::now_utc(),
        }
    }

    #[tokio::test]
    async fn one_mint_serves_concurrent_requests_until_near_expiry() {
        let cache = Assertions::default();
        let calls = AtomicUsize::new(0);
        let route: Arc<str> = "proxy:a".into();
        let mint = |life: u64| {
            let calls = &calls;
            move || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                tokio::task::yield_now().await;
                Ok(minted(1, life))
            }
        };
        let all =
            futures::future::join_all((0..10).map(|_| cache.get(1, "token", &route, mint(60))))
                .await;
        assert!(all.iter().all(Result::is_ok));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Another token, route or user: its own.
        cache.get(1, "other", &route, mint(60)).await.unwrap();
        cache
            .get(1, "token", &"proxy:b".into(), mint(60))
            .await
            .unwrap();
        cache.get(2, "token", &route, mint(60)).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        // One within the margin of its end is not handed out again.
        cache.get(3, "t", &route, mint(10)).await.unwrap();
        cache.get(3, "t", &route, mint(10)).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 6);
    }

    #[tokio::test]
    async fn a_failure_is_not_kept_and_forgetting_a_user_drops_its_entries() {
        let cache = Assertions::default();
        let route: Arc<str> = "proxy:a".into();
        let failed = cache
            .get(1, "t", &route, || async {
                Err(ApiError::Forbidden("role not allowed"))
            })
            .await;
        assert!(failed.is_err());
        let ok = cache
            .get(1, "t", &route, || async { Ok(minted(1, 60)) })
            .await;
        assert!(ok.is_ok());
        cache
            .get(2, "t", &route, || async { Ok(minted(2, 60)) })
            .await
            .unwrap();
        cache.forget_user(1);
        assert_eq!(cache.len(), 1);
    }
}
