//! Asking for a reset mail tells nobody whether an account exists: the same
//! reply, in about the same time, for an address of an account and one of
//! none.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{Options, TestApp, spawn_app_with};

/// A stack whose recover throttles do not get in the way of many requests.
async fn unthrottled() -> TestApp {
    spawn_app_with(Options {
        auth: |s| {
            s.recovery.recover_max_per_email = 1_000_000;
            s.recovery.recover_max_per_address = 1_000_000;
        },
        ..Options::default()
    })
    .await
}

/// One `POST /api/auth/recover`: its status, body and how long it took.
async fn recover(app: &TestApp, email: &str) -> (u16, String, Duration) {
    let started = Instant::now();
    let reply = app
        .post("/api/auth/recover", &json!({ "email": email }))
        .await;
    let status = reply.status().as_u16();
    let body = reply.text().await.unwrap();
    (status, body, started.elapsed())
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

#[tokio::test]
async fn recover_answers_a_known_and_an_unknown_address_alike_and_in_about_the_same_time() {
    let app = unthrottled().await;
    app.signup_ok("ada@example.com").await;
    // Warm both paths (connections, prepared statements).
    for _ in 0..5 {
        recover(&app, "ada@example.com").await;
        recover(&app, "nobody@example.com").await;
    }
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    // Interleaved, so a slow spell of the machine touches both alike.
    for i in 0..40 {
        let (status, body, took) = recover(&app, "ada@example.com").await;
        assert_eq!((status, body.as_str()), (202, ""), "known, round {i}");
        known.push(took);
        let (status, body, took) = recover(&app, "nobody@example.com").await;
        assert_eq!((status, body.as_str()), (202, ""), "unknown, round {i}");
        unknown.push(took);
    }
    let (known, unknown) = (median(known), median(unknown));
    // The bound is loose (a test machine is noisy); it catches a path that
    // does real work the other does not, such as sending the mail while the
    // client waits or hashing. The benchmark measures the ratio closely.
    let ratio = unknown.as_secs_f64() / known.as_secs_f64();
    println!("recover medians: known {known:?}, unknown {unknown:?} ({ratio:.2}×)");
    assert!(
        (0.5..=2.0).contains(&ratio),
        "median for an unknown address {unknown:?}, for a known one {known:?}"
    );
}
