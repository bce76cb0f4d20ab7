//! The gateway's request lifecycle: layers and extractors, on real routes
//! where they exist and on test routes behind the same layers otherwise.

use std::time::Duration;

use axum::{Router, routing::get};
use gateway::{
    AppState,
    extract::{Admin, Path},
};
use testkit::assert_error;

use crate::helpers::{Options, TestApp, spawn_app, spawn_app_with};

fn test_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/test/panic",
            get(|| async {
                panic!("secret internal detail");
                #[allow(unreachable_code)]
                ""
            }),
        )
        .route(
            "/test/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        )
        .route(
            "/test/items/{id}",
            get(|Path(id): Path<i64>| async move { id.to_string() }),
        )
        .route(
            "/test/admin",
            get(|Admin(caller): Admin| async move { caller.id.to_string() }),
        )
}

async fn app_with_test_routes() -> TestApp {
    spawn_app_with(Options {
        http_timeout_ms: 300,
        extra_routes: test_routes(),
        ..Options::default()
    })
    .await
}

#[tokio::test]
async fn a_panicking_handler_is_an_opaque_500_and_the_server_keeps_serving() {
    let app = app_with_test_routes().await;
    let body = assert_error(app.get("/test/panic").await, 500, "/test/panic").await;
    assert_eq!(body["message"], "internal error");
    assert!(!body.to_string().contains("secret"), "{body}");
    assert_eq!(app.get("/healthz").await.status(), 200);
}

#[tokio::test]
async fn a_request_over_the_time_limit_is_a_504() {
    let app = app_with_test_routes().await;
    assert_error(app.get("/test/slow").await, 504, "/test/slow").await;
}

#[tokio::test]
async fn a_path_parameter_that_is_not_a_number_is_a_400() {
    let app = app_with_test_routes().await;
    assert_eq!(app.get_text("/test/items/42").await, "42");
    let response = app.get("/test/items/abc").await;
    let body = assert_error(response, 400, "/test/items/abc").await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid path parameter"),
        "{body}"
    );
}

#[tokio::test]
async fn the_admin_guard_answers_401_without_a_token_and_403_without_the_role() {
    let app = app_with_test_routes().await;
    assert_error(app.get("/test/admin").await, 401, "/test/admin").await;
    let token = app.user_token("ada@example.com").await;
    let body = assert_error(
        app.get_with_token("/test/admin", &token).await,
        403,
        "/test/admin",
    )
    .await;
    assert_eq!(body["message"], "admin role required");

    sqlx::query("update users set role = 'ADMIN'")
        .execute(&app.db.pool().await)
        .await
        .unwrap();
    let admin_token = app.access_token("ada@example.com").await;
    assert_eq!(
        app.get_with_token("/test/admin", &admin_token)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn cors_answers_configured_origins_only() {
    let app = spawn_app_with(Options {
        cors_origins: "https://app.example.com",
        ..Options::default()
    })
    .await;
    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/api/users/me"))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let other = app
        .http
        .get(app.url("/healthz"))
        .header("origin", "https://evil.example.com")
        .send()
        .await
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn large_responses_are_compressed_for_clients_that_accept_it() {
    let app = spawn_app().await;
    let gzip = app
        .http
        .get(app.url("/api/openapi.json"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gzip.headers()["content-encoding"], "gzip");
    let plain = app.get("/api/openapi.json").await;
    assert!(plain.headers().get("content-encoding").is_none());
    // Tiny bodies are not worth it.
    let small = app
        .http
        .get(app.url("/healthz"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert!(small.headers().get("content-encoding").is_none());
}

/// The method is the client's to choose (`XYZ1`, `XYZ2`, ... are valid
/// tokens): as a label it would let anyone add metric series without end.
/// Methods other than the standard ones are counted as `other`.
#[tokio::test]
async fn a_client_chosen_method_does_not_become_a_metric_label() {
    let app = spawn_app().await;
    for n in 0..3 {
        let method = reqwest::Method::from_bytes(format!("XCARDINALITY{n}").as_bytes()).unwrap();
        let response = app
            .http
            .request(method, app.url("/api/users/me"))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_client_error(), "{}", response.status());
    }
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(!text.contains("XCARDINALITY"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("http_requests_total{") && l.contains(r#"method="other""#)),
        "{text}"
    );
}

#[tokio::test]
async fn metrics_count_http_requests_by_route_and_nats_requests_by_outcome() {
    let app = spawn_app().await;
    app.signup_ok("ada@example.com").await;
    assert_eq!(
        app.signup("ada@example.com", "correct horse battery")
            .await
            .status(),
        409
    );
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    let has = |needle: &str| text.lines().any(|l| l.contains(needle));
    // (Several tests share the process-wide recorder, so look for presence.)
    assert!(
        has(r#"http_requests_total{method="POST",route="/api/auth/signup",status="201"}"#),
        "{text}"
    );
    assert!(has(
        r#"http_requests_total{method="POST",route="/api/auth/signup",status="409"}"#
    ));
    assert!(has(
        r#"http_request_duration_seconds_bucket{method="POST",route="/api/auth/signup",le="0.005"}"#
    ));
    assert!(has(
        r#"nats_requests_total{subject="auth.create_user",outcome="ok"}"#
    ));
    assert!(has(
        r#"nats_requests_total{subject="auth.create_user",outcome="error_409"}"#
    ));
    assert!(has(
        r#"nats_request_duration_seconds_bucket{subject="auth.create_user""#
    ));
    assert!(has("process_resident_memory_bytes"), "no process metrics");
}

#[tokio::test]
async fn metrics_count_calls_that_found_no_worker() {
    let app = spawn_app_with(Options::without_workers()).await;
    assert_eq!(
        app.signup("ada@example.com", "correct horse battery")
            .await
            .status(),
        503
    );
    let text = app.get_text("/metrics").await;
    assert!(
        text.contains(r#"nats_requests_total{subject="auth.create_user",outcome="no_responders"}"#),
        "{text}"
    );
}
