//! Sign-up, login and the token keys.

use serde_json::{Value, json};
use testkit::{assert_error, error_fields};

use crate::helpers::{Options, spawn_app, spawn_app_with};

#[tokio::test]
async fn signing_up_returns_201_and_the_user_without_any_password() {
    let app = spawn_app().await;
    let response = app
        .post(
            "/api/auth/signup",
            &json!({"email": "ada@example.com", "password": "correct horse battery", "firstname": "Ada"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let text = response.text().await.unwrap();
    assert!(!text.contains("correct horse"), "password echoed: {text}");
    assert!(
        !text.to_lowercase().contains("argon2"),
        "hash leaked: {text}"
    );
    let user: Value = serde_json::from_str(&text).unwrap();
    assert!(user["id"].as_i64().is_some_and(|id| id > 0));
    assert_eq!(user["email"], "ada@example.com");
    assert_eq!(user["firstname"], "Ada");
    assert_eq!(user["lastname"], Value::Null);
    assert_eq!(user["role"], "USER");
    assert_eq!(user["emailVerified"], false);
    let keys: Vec<_> = user.as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        [
            "createdAt",
            "email",
            "emailVerified",
            "firstname",
            "id",
            "lastname",
            "role",
            "updatedAt"
        ]
    );
    assert!(user["createdAt"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn the_password_is_stored_only_as_an_argon2id_phc_string() {
    let app = spawn_app().await;
    app.signup_ok("ada@example.com").await;
    let hash: String = sqlx::query_scalar("select password_hash from users")
        .fetch_one(&app.db.pool().await)
        .await
        .unwrap();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
}

#[tokio::test]
async fn a_second_account_with_the_same_email_in_any_case_or_spacing_gets_409() {
    let app = spawn_app().await;
    app.signup_ok("Ada@Example.com").await;
    for email in ["Ada@Example.com", "ada@example.com", "  ADA@EXAMPLE.COM "] {
        let body = assert_error(
            app.signup(email, "another password").await,
            409,
            "/api/auth/signup",
        )
        .await;
        assert_eq!(body["message"], "email already registered");
    }
    assert_eq!(app.db.count("users").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_sign_ups_of_one_email_make_exactly_one_account() {
    // All from one address: lift that address's sign-up limit and its
    // share of the gateway's hashing lane for the race.
    let app = spawn_app_with(Options {
        auth: |s| s.throttle.signup_max_per_address = 100,
        gateway: |s| s.admission.hashing.max_per_client = 0,
        ..Options::default()
    })
    .await;
    let attempts = (0..20).map(|i| {
        let app = &app;
        async move {
            app.signup("race@example.com", &format!("password number {i}"))
                .await
                .status()
                .as_u16()
        }
    });
    let mut statuses = futures::future::join_all(attempts).await;
    statuses.sort_unstable();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        19,
        "{statuses:?}"
    );
    assert_eq!(app.db.count("users").await, 1);
}

#[tokio::test]
async fn sign_up_validation_lists_every_failing_field_and_creates_nothing() {
    let app = spawn_app().await;
    let response = app
        .post(
            "/api/auth/signup",
            &json!({"email": "not-an-email", "password": "short", "lastname": "x".repeat(101)}),
        )
        .await;
    let body = assert_error(response, 400, "/api/auth/signup").await;
    let mut fields = error_fields(&body);
    fields.sort();
    assert_eq!(fields, ["email", "lastname", "password"]);

    // Missing fields are listed too, all at once.
    let body = assert_error(
        app.post("/api/auth/signup", &json!({})).await,
        400,
        "/api/auth/signup",
    )
    .await;
    assert_eq!(body["details"].as_array().unwrap().len(), 2, "{body}");

    assert_eq!(app.db.count("users").await, 0);
}

#[tokio::test]
async fn login_returns_a_bearer_token_a_refresh_token_and_the_user() {
    let app = spawn_app().await;
    app.signup_ok("ada@example.com").await;
    let response = app
        .login(" ADA@example.com ", "correct horse battery")
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["tokenType"], "Bearer");
    assert_eq!(body["expiresIn"], 900);
    assert_eq!(body["user"]["email"], "ada@example.com");

    // The access token is an EdDSA JWT whose kid is published in the JWKS.
    let token = body["accessToken"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    let jwks = app.get_json("/api/auth/jwks").await;
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["alg"], "EdDSA");
    assert_eq!(Some(key["kid"].as_str().unwrap()), header.kid.as_deref());
    assert!(key.get("d").is_none(), "private key material in the JWKS");

    // The refresh token is 256 random bits, and only its hash is stored.
    let refresh = body["refreshToken"].as_str().unwrap();
    assert_eq!(refresh.len(), 43);
    let pool = app.db.pool().await;
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("select token_hash from refresh_tokens")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], refresh.as_bytes());
    assert_eq!(stored[0].len(), 32);
}

#[tokio::test]
async fn login_gives_the_same_401_for_an_unknown_email_and_a_wrong_password() {
    let app = spawn_app().await;
    app.signup_ok("ada@example.com").await;
    let wrong_password = assert_error(
        app.login("ada@example.com", "wrong horse battery").await,
        401,
        "/api/auth/login",
    )
    .await;
    let unknown_email = assert_error(
        app.login("nobody@example.com", "correct horse battery")
            .await,
        401,
        "/api/auth/login",
    )
    .await;
    assert_eq!(wrong_password["message"], unknown_email["message"]);
    assert_eq!(wrong_password["message"], "invalid email or password");
    assert!(wrong_password.get("details").is_none());
}

#[tokio::test]
async fn login_with_a_malformed_email_or_no_password_is_a_400() {
    let app = spawn_app().await;
    let body = assert_error(
        app.post("/api/auth/login", &json!({"email": "nope", "password": ""}))
            .await,
        400,
        "/api/auth/login",
    )
    .await;
    assert_eq!(body["details"].as_array().unwrap().len(), 2, "{body}");
}
