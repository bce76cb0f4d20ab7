//! What the client sees when the workers are missing or silent.

use futures::StreamExt;
use serde_json::json;

use crate::helpers::{Options, assert_error, spawn_app_with};

#[tokio::test]
async fn with_no_worker_running_a_call_is_a_503_at_once_not_a_timeout() {
    // A long NATS timeout: a 504 here would mean the gateway waited for it.
    let app = spawn_app_with(Options {
        workers: false,
        rpc_timeout_ms: 60_000,
        ..Options::default()
    })
    .await;
    let response = app.signup("ada@example.com", "correct horse battery").await;
    assert_eq!(response.headers()["retry-after"], "1");
    let body = assert_error(response, 503, "/api/auth/signup").await;
    assert_eq!(body["message"], "service unavailable");
    assert!(
        !body.to_string().contains("auth.create_user"),
        "internal detail leaked: {body}"
    );
}

#[tokio::test]
async fn a_silent_worker_gives_a_504_after_the_subjects_own_timeout() {
    // The default timeout is long; the per-subject one for auth.login short.
    let app = spawn_app_with(Options {
        workers: false,
        rpc_timeout_ms: 120_000,
        rpc_timeouts_ms: vec![("auth.login", 300)],
        ..Options::default()
    })
    .await;
    // A silent member of the auth-worker queue group.
    let (silent, _) = app.nats.connect_as("auth-worker").await.unwrap();
    let mut sub = silent
        .queue_subscribe("auth.login", "auth-worker".into())
        .await
        .unwrap();
    app.wait_until_routed("auth.login", &mut sub).await;

    // Bounded so that ignoring the per-subject setting fails the test rather
    // than waiting out the two-minute default.
    let response = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        app.post(
            "/api/auth/login",
            &json!({"email": "ada@example.com", "password": "whatever"}),
        ),
    )
    .await
    .expect("the per-subject timeout applies");
    let body = assert_error(response, 504, "/api/auth/login").await;
    assert_eq!(body["message"], "upstream timed out");

    // The request did reach the silent worker, carrying the request id (the
    // routing probes carry none).
    loop {
        let message = sub.next().await.unwrap();
        if let Some(id) = message.headers.as_ref().and_then(|h| h.get("X-Request-Id")) {
            assert_eq!(id.as_str(), body["requestId"].as_str().unwrap());
            break;
        }
    }
}

#[tokio::test]
async fn readyz_names_the_missing_worker_and_turns_200_when_both_run() {
    let mut app = spawn_app_with(Options {
        workers: false,
        ..Options::default()
    })
    .await;
    let body = assert_error(
        app.http.get(app.url("/readyz")).send().await.unwrap(),
        503,
        "/readyz",
    )
    .await;
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("auth-worker") && message.contains("user-worker"),
        "{message}"
    );

    app.start_auth_worker();
    app.wait_for_service("auth-worker").await;
    let body = assert_error(
        app.http.get(app.url("/readyz")).send().await.unwrap(),
        503,
        "/readyz",
    )
    .await;
    let message = body["message"].as_str().unwrap();
    assert!(
        !message.contains("auth-worker") && message.contains("user-worker"),
        "{message}"
    );

    app.start_user_worker();
    app.wait_for_service("user-worker").await;
    assert_eq!(
        app.http
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}
