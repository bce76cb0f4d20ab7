//! Waiting for a state that a test cannot await as an event: polled, with
//! a bound.

use std::{future::Future, time::Duration};

/// Checks `holds` every `every` until it is true, for `within` at most;
/// whether it came true.
pub async fn eventually<F, Fut>(within: Duration, every: Duration, mut holds: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let polled = tokio::time::timeout(within, async {
        while !holds().await {
            tokio::time::sleep(every).await;
        }
    });
    polled.await.is_ok()
}
