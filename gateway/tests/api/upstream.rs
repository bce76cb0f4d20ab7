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
async fn a_worker_that_takes_a_request_and_never_answers_gives_a_504() {
    let app = spawn_app_with(Options {
        workers: false,
        rpc_timeout_ms: 300,
    })
    .await;
    // A silent member of the auth-worker queue group.
    let (silent, _) = app.nats.connect_as("auth-worker").await.unwrap();
    let mut sub = silent
        .queue_subscribe("auth.login", "auth-worker".into())
        .await
        .unwrap();
    silent.flush().await.unwrap();

    let response = app
        .post(
            "/api/auth/login",
            &json!({"email": "ada@example.com", "password": "whatever"}),
        )
        .await;
    let body = assert_error(response, 504, "/api/auth/login").await;
    assert_eq!(body["message"], "upstream timed out");

    // The request did reach the silent worker, carrying the request id.
    let message = sub.next().await.unwrap();
    let headers = message.headers.unwrap();
    assert_eq!(
        headers.get("X-Request-Id").unwrap().as_str(),
        body["requestId"].as_str().unwrap()
    );
}
