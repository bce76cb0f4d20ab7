//! What the client sees when the workers are missing or silent.

use async_nats::{Client, Subscriber};
use futures::StreamExt;
use serde_json::json;
use testkit::assert_error;

use crate::helpers::{Options, TestApp, endpoint, spawn_app_with};

/// A silent member of the auth-worker's queue group for `auth.login`: it
/// takes requests and never answers. Returns once the server routes
/// `auth.login` to it; the client must live as long as the subscription.
async fn silent_auth_worker(app: &TestApp) -> (Client, Subscriber) {
    let (silent, _) = app.nats.connect_as("auth-worker").await.unwrap();
    let mut sub = silent
        .queue_subscribe("auth.login", "auth-worker".into())
        .await
        .unwrap();
    app.wait_until_routed("auth.login", &mut sub).await;
    (silent, sub)
}

#[tokio::test]
async fn with_no_worker_running_a_call_is_a_503_at_once_not_a_timeout() {
    // A long NATS timeout: a 504 here would mean the gateway waited for it.
    let app = spawn_app_with(Options {
        rpc_timeout_ms: 60_000,
        ..Options::without_workers()
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
        rpc_timeout_ms: 120_000,
        rpc_timeouts_ms: vec![("auth.login", 300)],
        ..Options::without_workers()
    })
    .await;
    let (_silent, mut sub) = silent_auth_worker(&app).await;

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
    let mut app = spawn_app_with(Options::without_workers()).await;
    let body = assert_error(app.get("/readyz").await, 503, "/readyz").await;
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("auth-worker") && message.contains("user-worker"),
        "{message}"
    );

    app.start_auth_worker();
    app.wait_for_service("auth-worker").await;
    let body = assert_error(app.get("/readyz").await, 503, "/readyz").await;
    let message = body["message"].as_str().unwrap();
    assert!(
        !message.contains("auth-worker") && message.contains("user-worker"),
        "{message}"
    );

    app.start_user_worker();
    app.wait_for_service("user-worker").await;
    assert_eq!(app.get("/readyz").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_worker_answers_a_fast_503_with_a_retry_hint_instead_of_a_timeout() {
    // The worker's own backpressure, as a caller without admission control
    // sees it (the gateway's would hold the logins back, or send a "busy"
    // one again: `tests/processes/overload.rs`).
    let app = spawn_app_with(Options {
        auth: |s| s.service.max_in_flight = 1,
        gateway: |s| s.admission.enabled = false,
        ..Options::default()
    })
    .await;
    app.signup_ok("ada@example.com").await;
    // Each login holds the only slot for an argon2 verification.
    let attempts = (0..12).map(|_| {
        let app = &app;
        async move {
            let response = app.login("ada@example.com", "correct horse battery").await;
            let status = response.status().as_u16();
            let retry_after = response.headers().get("retry-after").cloned();
            let body: serde_json::Value = response.json().await.unwrap();
            (status, retry_after, body)
        }
    });
    let results = futures::future::join_all(attempts).await;
    let busy: Vec<_> = results.iter().filter(|(s, _, _)| *s == 503).collect();
    assert!(!busy.is_empty(), "no request was turned away: {results:?}");
    for (_, retry_after, body) in &busy {
        assert_eq!(retry_after.as_ref().unwrap(), "1");
        assert_eq!(body["message"], "busy, retry later");
    }
    assert!(
        results.iter().all(|(s, _, _)| *s == 200 || *s == 503),
        "{results:?}"
    );
    assert!(results.iter().any(|(s, _, _)| *s == 200));

    // The rejections are counted as errors of the endpoint.
    let stats = app.service_api("$SRV.STATS.auth-worker").await;
    let login = endpoint(&stats, "auth.login");
    assert_eq!(login["num_errors"].as_u64().unwrap(), busy.len() as u64);
}

#[tokio::test]
async fn the_trace_context_and_request_id_cross_the_hop_to_the_worker() {
    let app = spawn_app_with(Options {
        rpc_timeout_ms: 300,
        ..Options::without_workers()
    })
    .await;
    let (_silent, mut sub) = silent_auth_worker(&app).await;

    let incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    for client_trace in [Some(incoming), None] {
        let mut request = app
            .http
            .post(app.url("/api/auth/login"))
            .header("x-request-id", "trace-test-1")
            .json(&json!({"email": "ada@example.com", "password": "whatever"}));
        if let Some(tp) = client_trace {
            request = request.header("traceparent", tp);
        }
        assert_eq!(request.send().await.unwrap().status(), 504);
        let headers = loop {
            let message = sub.next().await.unwrap();
            if let Some(h) = message.headers.filter(|h| h.get("X-Request-Id").is_some()) {
                break h;
            }
        };
        assert_eq!(
            headers.get("X-Request-Id").unwrap().as_str(),
            "trace-test-1"
        );
        let sent = headers.get("traceparent").unwrap().as_str().to_owned();
        let parsed = shared::headers::TraceParent::parse(&sent).expect("a valid traceparent");
        match client_trace {
            Some(tp) => {
                assert_eq!(parsed.trace_id_hex(), "0af7651916cd43dd8448eb211c80319c");
                assert_ne!(sent, tp, "the gateway is a new hop with its own parent id");
            }
            None => assert_ne!(parsed.trace_id, [0; 16]),
        }
    }
}
