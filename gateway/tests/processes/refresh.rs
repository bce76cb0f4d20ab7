//! A cookie refresh whose reply is lost (the auth-worker stopped mid-way,
//! the gateway answered 504) never logs the person out.

use std::time::Duration;

use reqwest::header;
use testkit::{PASSWORD, TempDir, eventually};

use crate::stack::Stack;

const COOKIE: &str = "__Host-natsauth";

/// The session cookie a reply sets, as sent back (`name=value`).
fn cookie_of(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{COOKIE}=")))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_answered_504_while_the_worker_was_stopped_keeps_the_session() {
    let stack = Stack::start_with(&[
        // Every request refreshes the cookie's access token.
        ("GATEWAY_SESSION__REFRESH_BEFORE_SECS", "100000000"),
        ("GATEWAY_RPC__TIMEOUT_MS", "1500"),
    ])
    .await;
    let logs = TempDir::new();
    let log = logs.path.join("auth-worker.log");
    let auth = stack.worker_logging("auth-worker", &[], Some(&log));
    let _user = stack.worker("user-worker");
    stack.wait_for_copies("auth-worker", 1).await;
    stack.signup_ok("ada@example.com").await;
    let login = stack.session_login("ada@example.com", PASSWORD).await;
    assert_eq!(login.status(), 200);
    let old = cookie_of(&login).expect("the session cookie");
    let session = |cookie: String| {
        stack
            .http
            .get(stack.url("/api/session"))
            .header(header::COOKIE, cookie)
            .send()
    };

    // The refresh reaches a stopped worker: the gateway gives up (504).
    auth.signal("STOP").await;
    let lost = session(old.clone()).await.unwrap();
    assert_eq!(lost.status(), 504);
    assert!(cookie_of(&lost).is_none());
    // Resumed, the worker rotates the token the gateway no longer waits for.
    auth.signal("CONT").await;
    let pool = sqlx::PgPool::connect(stack.db_url()).await.unwrap();
    let rotated = eventually(Duration::from_secs(20), Duration::from_millis(50), || {
        let pool = pool.clone();
        async move {
            let spent: i64 = sqlx::query_scalar(
                "select count(*) from refresh_tokens where spent_at is not null",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            spent == 1
        }
    });
    assert!(rotated.await, "the stale refresh was applied");
    // The person reloads the page a little later, with the only cookie the
    // browser has.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let reload = session(old).await.unwrap();
    assert_eq!(reload.status(), 200, "the old cookie still works");
    let new = cookie_of(&reload).expect("a refreshed cookie");
    assert_eq!(session(new).await.unwrap().status(), 200);
    let revoked: i64 =
        sqlx::query_scalar("select count(*) from sessions where revoked_at is not null")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(revoked, 0, "no session was revoked");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        !logged.contains("spent refresh token presented"),
        "a reuse was logged:\n{logged}"
    );
}
