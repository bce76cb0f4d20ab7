//! Error bodies leak nothing: neither a password sent in the wrong type nor
//! the database's name in an outage.

use serde_json::json;
use testkit::{PASSWORD, assert_error};

use crate::helpers::{Options, spawn_app, spawn_app_with};

#[tokio::test]
async fn a_password_sent_as_a_number_never_appears_in_the_error() {
    let app = spawn_app().await;
    for path in ["/api/auth/login", "/api/auth/signup"] {
        let response = app
            .post(
                path,
                &json!({"email": "ada@example.com", "password": 987654321}),
            )
            .await;
        let body = assert_error(response, 400, path).await;
        assert!(!body.to_string().contains("987654321"), "{body}");
    }
    // Straight onto NATS too.
    let (client, _) = app
        .nats
        .connect_as_gateway_to(shared::auth::SERVICE)
        .await
        .unwrap();
    let reply = client
        .request(
            "auth.login",
            r#"{"email":"ada@example.com","password":987654321}"#.into(),
        )
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&reply.payload).into_owned();
    assert!(
        text.contains("400") && !text.contains("987654321"),
        "{text}"
    );
}

#[tokio::test]
async fn a_database_outage_answers_503_without_naming_the_database() {
    let app = spawn_app_with(Options {
        // Nothing listens on port 1.
        auth: |s| {
            s.database.url = "postgres://postgres@127.0.0.1:1/natsauth".to_owned().into();
            s.database.acquire_timeout_ms = 300;
        },
        ..Options::default()
    })
    .await;
    let response = app.signup("ada@example.com", PASSWORD).await;
    let body = assert_error(response, 503, "/api/auth/signup").await;
    assert_eq!(body["message"], "service unavailable");
}
