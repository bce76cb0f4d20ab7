//! At most one `auth.refresh` per session at a time in this gateway copy.
//!
//! A page fires several API calls at once; when its access token is near
//! expiry each of them would refresh it, and every refresh but the first
//! would present a spent refresh token. So the refreshes of one refresh
//! token share one call: the first request makes it, the others wait for its
//! answer, and for [`REMEMBER`] after it requests that still carry the old
//! cookie get the same new pair without another call.
//!
//! Gateway copies do not share this: two copies refreshing the same token at
//! once each make a call, and the auth-worker answers the second (a spent
//! token presented within `refresh.reuse_grace_secs`) with the session's
//! current pair instead of revoking the session.

use std::{future::Future, time::Duration};

use sha2::{Digest, Sha256};

use super::seal::Contents;
use crate::{error::ApiError, single_flight::SingleFlight};

/// How long a refresh's answer is reused for the same old refresh token.
pub const REMEMBER: Duration = Duration::from_secs(10);
/// More sessions than this refreshing within [`REMEMBER`] drop the oldest
/// answers early (they are only an optimisation once the call is done).
const CAPACITY: usize = 10_000;

/// The refreshes in flight or just done, by the SHA-256 of the refresh
/// token they exchanged (never the token itself).
#[derive(Debug)]
pub struct Refresher {
    calls: SingleFlight<[u8; 32], Contents>,
}

impl Default for Refresher {
    fn default() -> Self {
        Self {
            calls: SingleFlight::new(CAPACITY),
        }
    }
}

impl Refresher {
    /// The new cookie contents for `refresh_token`: `call`'s, made once for
    /// every concurrent caller. A failed call is not remembered (the next
    /// request tries again), so a transient 503 does not stick.
    pub async fn refresh<F, Fut>(&self, refresh_token: &str, call: F) -> Result<Contents, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Contents, ApiError>>,
    {
        let key = Sha256::digest(refresh_token.as_bytes()).into();
        self.calls.get(key, |age, _| age < REMEMBER, call).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn contents(access: &str) -> Contents {
        Contents {
            access_token: access.into(),
            refresh_token: "next".into(),
            access_expires_at: 1,
            session_expires_at: 2,
        }
    }

    #[tokio::test]
    async fn concurrent_refreshes_of_one_token_make_one_call() {
        let refresher = Refresher::default();
        let calls = AtomicUsize::new(0);
        let (release, wait) = tokio::sync::watch::channel(false);
        let one = || async {
            refresher
                .refresh("old", || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    let mut wait = wait.clone();
                    wait.wait_for(|go| *go).await.ok();
                    Ok(contents("new"))
                })
                .await
        };
        let all = futures::future::join_all((0..10).map(|_| one()));
        let releaser = async {
            tokio::task::yield_now().await;
            release.send(true).ok();
        };
        let (answers, ()) = tokio::join!(all, releaser);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(
            answers
                .iter()
                .all(|a| a.as_ref().unwrap().access_token == "new")
        );
        // A late request with the same old token reuses the answer.
        let late = refresher
            .refresh("old", || async { Ok(contents("again")) })
            .await
            .unwrap();
        assert_eq!(late.access_token, "new");
        // Another token is another session.
        let other = refresher
            .refresh("other", || async { Ok(contents("other")) })
            .await
            .unwrap();
        assert_eq!(other.access_token, "other");
    }

    #[tokio::test]
    async fn a_failed_refresh_is_not_remembered() {
        let refresher = Refresher::default();
        let failed = refresher
            .refresh("old", || async { Err(ApiError::TimedOut) })
            .await;
        assert!(failed.is_err());
        let retried = refresher
            .refresh("old", || async { Ok(contents("new")) })
            .await
            .unwrap();
        assert_eq!(retried.access_token, "new");
    }
}
