//! Every error has the contract's body, whatever produced it.

use serde_json::json;
use testkit::assert_error;

use crate::helpers::spawn_app;

#[tokio::test]
async fn an_unknown_route_is_a_404_in_the_contracts_shape() {
    let app = spawn_app().await;
    assert_error(app.get("/api/nope").await, 404, "/api/nope").await;
}

#[tokio::test]
async fn a_wrong_method_is_a_405_that_says_which_are_allowed() {
    let app = spawn_app().await;
    let response = app.get("/api/auth/signup").await;
    assert!(
        response.headers()["allow"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    assert_error(response, 405, "/api/auth/signup").await;
}

#[tokio::test]
async fn malformed_json_a_wrong_content_type_and_a_wrong_field_type_are_client_errors() {
    let app = spawn_app().await;
    let path = "/api/auth/signup";
    let syntax = app
        .http
        .post(app.url(path))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    assert_error(syntax, 400, path).await;

    let text = app
        .http
        .post(app.url(path))
        .body("email=a")
        .send()
        .await
        .unwrap();
    assert_error(text, 415, path).await;

    let wrong_type = app.post(path, &json!({"email": 5, "password": "x"})).await;
    let body = assert_error(wrong_type, 400, path).await;
    assert!(
        body["message"].as_str().unwrap().contains("invalid type"),
        "{body}"
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413() {
    let app = spawn_app().await;
    let huge = json!({"email": "a@example.com", "password": "x".repeat(2_000_000)});
    assert_error(
        app.post("/api/auth/signup", &huge).await,
        413,
        "/api/auth/signup",
    )
    .await;
}

#[tokio::test]
async fn the_callers_request_id_is_echoed_and_a_missing_or_unsafe_one_is_made() {
    let app = spawn_app().await;
    let mine = app
        .http
        .get(app.url("/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(mine.headers()["x-request-id"], "abc-123");

    let made = app.get("/healthz").await;
    let id = made.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");

    let unsafe_id = app
        .http
        .get(app.url("/api/nope"))
        .header("x-request-id", "bad id\twith spaces")
        .send()
        .await
        .unwrap();
    let body = assert_error(unsafe_id, 404, "/api/nope").await;
    assert_ne!(body["requestId"], "bad id\twith spaces");
}

#[tokio::test]
async fn a_json_array_is_refused_where_an_object_is_expected_and_creates_nothing() {
    let app = spawn_app().await;
    let response = app
        .http
        .post(app.url("/api/auth/signup"))
        .header("content-type", "application/json")
        .body(r#"["arr@example.com","password123","Ada","Lovelace"]"#)
        .send()
        .await
        .unwrap();
    let body = assert_error(response, 400, "/api/auth/signup").await;
    assert_eq!(body["message"], "request body must be a JSON object");
    assert_eq!(app.db.count("users").await, 0);
}
