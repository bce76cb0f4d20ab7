//! Fair shares: what one client does costs the others little. Refused
//! attempts do not slow the owner's logins from elsewhere, client addresses
//! behind a trusted proxy are read whatever their form, and one address
//! flooding the cheap routes gets 429 beyond its share while others get in.

use futures::StreamExt;
use testkit::{PASSWORD, assert_error};

use crate::helpers::{Options, spawn_app_with};

async fn login_from(
    app: &crate::helpers::TestApp,
    password: &str,
    address: &str,
) -> reqwest::Response {
    app.login_from("ada@example.com", password, address).await
}

#[tokio::test]
async fn attempts_a_hard_limit_refused_do_not_count_toward_the_emails_slowdown() {
    let app = spawn_app_with(Options::trusting_forwarded_for()).await;
    app.signup_ok("ada@example.com").await;
    // 5 wrong passwords from one address, then 15 the pair limit refuses.
    let mut statuses = Vec::new();
    for _ in 0..20 {
        statuses.push(
            login_from(&app, "wrong password", "198.51.100.1")
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        15,
        "{statuses:?}"
    );
    let counted: i32 = sqlx::query_scalar(
        "select failures from login_failures where scope = 'email' and key = 'ada@example.com'",
    )
    .fetch_one(&app.db.pool().await)
    .await
    .unwrap();
    assert_eq!(
        counted, 5,
        "only the attempts that were checked count for the email"
    );
    assert_eq!(
        login_from(&app, PASSWORD, "198.51.100.2").await.status(),
        200
    );
}

#[tokio::test]
async fn forwarded_addresses_with_ports_or_brackets_are_their_own_address() {
    let app = spawn_app_with(Options::trusting_forwarded_for()).await;
    app.signup_ok("ada@example.com").await;
    for _ in 0..5 {
        assert_eq!(
            login_from(&app, "wrong password", "203.0.113.9:4711")
                .await
                .status(),
            401
        );
    }
    // The same address from another port is the same client…
    assert_eq!(
        login_from(&app, PASSWORD, "203.0.113.9:1").await.status(),
        429
    );
    // …and neither another address nor an IPv6 one with a port is folded
    // into it (or into the proxy's own address).
    assert_eq!(
        login_from(&app, PASSWORD, "203.0.113.10:1").await.status(),
        200
    );
    assert_eq!(
        login_from(&app, PASSWORD, "[2001:db8::1]:443")
            .await
            .status(),
        200
    );
    // An entry that is no address is refused, never counted as the proxy.
    let refused = login_from(&app, PASSWORD, "unknown").await;
    let body = assert_error(refused, 400, "/api/auth/login").await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("X-Forwarded-For"),
        "{body}"
    );
}

#[tokio::test]
async fn one_address_beyond_its_share_of_the_cheap_lane_gets_429_and_others_still_get_in() {
    let mut app = spawn_app_with(Options {
        rpc_timeout_ms: 30_000,
        trust_forwarded_for: true,
        // Room in the lane for every held request: only the share refuses.
        gateway: |s| {
            s.admission.default.initial_limit = 256;
            s.admission.default.min_limit = 256;
        },
        ..Options::without_workers()
    })
    .await;
    app.start_auth_worker();
    app.wait_for_service("auth-worker").await;
    let ada = app.account("ada@example.com").await;
    // A user-worker that takes every `user.get` and never answers: each
    // `/me` is held in the lane until the test ends.
    let (silent, _) = app.nats.connect_as("user-worker").await.unwrap();
    let mut held = silent
        .queue_subscribe("user.get", "user-worker".into())
        .await
        .unwrap();
    app.wait_until_routed("user.get", &mut held).await;
    let me = |address: &'static str| {
        app.http
            .get(app.url("/api/users/me"))
            .bearer_auth(&ada.token)
            .header("x-forwarded-for", address)
            .send()
    };
    // The default share (64) from one address, all held.
    let flood: Vec<_> = (0..64).map(|_| tokio::spawn(me("198.51.100.7"))).collect();
    for _ in 0..64 {
        held.next().await.unwrap();
    }
    // One more from it is refused at once; another address still gets in.
    let refused = me("198.51.100.7").await.unwrap();
    assert!(refused.headers().contains_key("retry-after"));
    assert_error(refused, 429, "/api/users/me").await;
    let other = tokio::spawn(me("198.51.100.8"));
    held.next()
        .await
        .expect("another address reaches the worker");
    other.abort();
    for request in flood {
        request.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_of_one_account_in_progress_at_once_are_never_slowed_down() {
    // A slowdown that would show as the gateway's 504; all 24 at the
    // worker at once (the gateway's hashing lane would let a few through
    // at a time).
    let app = spawn_app_with(Options {
        auth: |s| s.throttle.email_slowdown_ms = 60_000,
        gateway: |s| s.admission.enabled = false,
        ..Options::trusting_forwarded_for()
    })
    .await;
    app.signup_ok("ada@example.com").await;
    let logins = (0..24).map(|i| {
        let address = format!("198.51.100.{}", i + 1);
        let app = &app;
        async move {
            app.login_from("ada@example.com", PASSWORD, &address)
                .await
                .status()
        }
    });
    let statuses = futures::future::join_all(logins).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
}
