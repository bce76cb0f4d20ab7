//! `/api/users/me` with good and bad access tokens.

use std::time::Duration;

use jsonwebtoken::{Algorithm, Header};
use serde_json::{Value, json};
use testkit::{Api, TempDir, assert_error, eventually};

use crate::helpers::{TestApp, sign, spawn_app};

const ME: &str = "/api/users/me";

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Claims like the auth worker's, for user `sub`.
/// Good claims for the user and session of a real token (`real`): only the
/// signature, the header or what a test changes can make them fail.
fn claims(real: &Value) -> Value {
    json!({
        "sub": real["sub"], "sid": real["sid"], "role": "USER", "iat": now(),
        "exp": now() + 600, "iss": "natsauth", "aud": "natsauth-api", "jti": "t",
    })
}

fn header(kid: &str) -> Header {
    let mut h = Header::new(Algorithm::EdDSA);
    h.kid = Some(kid.to_owned());
    h
}

/// The claims of a real login's token (after checking it works) and the
/// signing key's kid.
async fn login_facts(app: &TestApp, token: &str) -> (Value, String) {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let kid = jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    assert_eq!(app.get_with_token(ME, token).await.status(), 200);
    let payload = URL_SAFE_NO_PAD
        .decode(token.split('.').nth(1).unwrap())
        .unwrap();
    (serde_json::from_slice(&payload).unwrap(), kid)
}

#[tokio::test]
async fn a_valid_token_reads_the_callers_own_user() {
    let app = spawn_app().await;
    let token = app.user_token("ada@example.com").await;
    let response = app.get_with_token(ME, &token).await;
    assert_eq!(response.status(), 200);
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["email"], "ada@example.com");
    assert_eq!(me["role"], "USER");
}

#[tokio::test]
async fn no_token_or_a_malformed_header_is_a_401() {
    let app = spawn_app().await;
    let response = app.get(ME).await;
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    let body = assert_error(response, 401, ME).await;
    assert_eq!(body["message"], "missing bearer token");

    let basic = app
        .http
        .get(app.url(ME))
        .header("authorization", "Basic YTpi")
        .send()
        .await
        .unwrap();
    assert_error(basic, 401, ME).await;
    assert_error(app.get_with_token(ME, "not.a.jwt").await, 401, ME).await;
}

#[tokio::test]
async fn a_token_signed_by_another_key_under_the_real_kid_is_a_401() {
    let app = spawn_app().await;
    let token = app.user_token("ada@example.com").await;
    let (real, kid) = login_facts(&app, &token).await;
    let other = TempDir::new();
    let other_key = other.path.join("other.pem");
    auth_worker::tokens::generate_key_file(&other_key).unwrap();
    let forged = sign(&other_key, header(&kid), &claims(&real));
    assert_error(app.get_with_token(ME, &forged).await, 401, ME).await;
    // A token under an unknown kid fails too (after one JWKS refetch).
    let unknown = sign(&other_key, header("no-such-kid"), &claims(&real));
    assert_error(app.get_with_token(ME, &unknown).await, 401, ME).await;
}

#[tokio::test]
async fn an_expired_token_is_a_401_that_says_so() {
    let app = spawn_app().await;
    let token = app.user_token("ada@example.com").await;
    let (real, kid) = login_facts(&app, &token).await;
    let mut expired = claims(&real);
    expired["iat"] = json!(now() - 3600);
    expired["exp"] = json!(now() - 600);
    let body = assert_error(
        app.get_with_token(ME, &sign(&app.key_file, header(&kid), &expired))
            .await,
        401,
        ME,
    )
    .await;
    assert_eq!(body["message"], "token expired");
}

#[tokio::test]
async fn an_alg_none_token_is_a_401() {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let app = spawn_app().await;
    let token = app.user_token("ada@example.com").await;
    let (real, kid) = login_facts(&app, &token).await;
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    for alg in ["none", "None", "NONE"] {
        let unsigned = format!(
            "{}.{}.",
            b64(&json!({"alg": alg, "typ": "JWT", "kid": kid})),
            b64(&claims(&real))
        );
        assert_error(app.get_with_token(ME, &unsigned).await, 401, ME).await;
    }
}

#[tokio::test]
async fn a_token_for_another_audience_or_issuer_or_without_them_is_a_401() {
    let app = spawn_app().await;
    let token = app.user_token("ada@example.com").await;
    let (real, kid) = login_facts(&app, &token).await;
    let variants: Vec<(&str, Value)> = vec![
        ("aud", json!("someone-else")),
        ("iss", json!("someone-else")),
    ];
    for (claim, value) in variants {
        let mut c = claims(&real);
        c[claim] = value;
        let t = sign(&app.key_file, header(&kid), &c);
        assert_error(app.get_with_token(ME, &t).await, 401, ME).await;
    }
    for missing in ["aud", "iss", "sub", "exp"] {
        let mut c = claims(&real);
        c.as_object_mut().unwrap().remove(missing);
        let t = sign(&app.key_file, header(&kid), &c);
        assert_error(app.get_with_token(ME, &t).await, 401, ME).await;
    }
    // The control: the same construction with nothing changed is accepted,
    // so the failures above are about the claims.
    let ok = sign(&app.key_file, header(&kid), &claims(&real));
    assert_eq!(app.get_with_token(ME, &ok).await.status(), 200);
}

/// A key removed from the auth-worker's key set stops verifying at once,
/// although the gateway had fetched it and remembers tokens it verified:
/// the auth-worker announces its keys when it starts serving, and the
/// gateway fetches the set again (the periodic refetch is minutes away).
#[tokio::test]
async fn a_token_of_a_key_removed_from_the_set_is_refused_without_restarting_the_gateway() {
    let mut app = spawn_app().await;
    let old = app.user_token("ada@example.com").await;
    assert_eq!(app.get_with_token(ME, &old).await.status(), 200);

    // The auth-worker restarts with only a new key.
    app.stop_auth_workers().await;
    app.new_signing_key();
    app.start_auth_worker();
    app.wait_for_service("auth-worker").await;

    let (api, old_token): (&Api, &str) = (&app, &old);
    let refused = eventually(
        Duration::from_secs(10),
        Duration::from_millis(20),
        || async move { api.get_with_token(ME, old_token).await.status() == 401 },
    );
    assert!(
        refused.await,
        "a token of the removed key still passes after 10 s"
    );
    assert_error(app.get_with_token(ME, &old).await, 401, ME).await;

    // The new key's tokens pass.
    let new = app.access_token("ada@example.com").await;
    assert_eq!(app.get_with_token(ME, &new).await.status(), 200);
}
