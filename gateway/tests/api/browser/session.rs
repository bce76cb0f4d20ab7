//! The sealed session cookie: set once by a login, good on every bearer
//! route, refused when tampered with or too old, and ended by a logout or a
//! new login.

use reqwest::{Method, header};
use serde_json::{Value, json};
use testkit::{PASSWORD, TempDir, assert_error};

use super::{Browser, cleared, set_cookie};
use crate::helpers::{COOKIE, spawn_app};

#[tokio::test]
async fn a_session_login_sets_one_sealed_host_only_cookie_and_no_token_in_the_body() {
    let app = spawn_app().await;
    app.signup_ok("ada@example.com").await;
    let mut browser = Browser::new(&app);
    let response = browser.login("ada@example.com", PASSWORD, None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()[header::CACHE_CONTROL],
        "private, no-store"
    );
    let set = set_cookie(&response).expect("a session cookie");
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(
            set.attributes.iter().any(|a| a == attribute),
            "{attribute}: {set:?}"
        );
    }
    assert!(
        !set.attributes.iter().any(|a| a.starts_with("Domain")),
        "{set:?}"
    );
    let max_age: i64 = set
        .attributes
        .iter()
        .find_map(|a| a.strip_prefix("Max-Age="))
        .unwrap()
        .parse()
        .unwrap();
    // The session's 30 days, not the access token's 15 minutes.
    assert!(max_age > 29 * 86_400 && max_age <= 30 * 86_400, "{max_age}");
    // The value is opaque: one sealed token, no JWT inside. A JWT's header
    // is base64url JSON opening with `{"alg"`, `{"typ"` or `{"kid"`; a
    // bare `eyJ` may occur in random ciphertext.
    let sealed = set
        .value
        .strip_prefix("v1.")
        .unwrap_or_else(|| panic!("{}", set.value));
    assert!(!sealed.contains('.'), "{}", set.value);
    for header in ["eyJhbGci", "eyJ0eXAi", "eyJraWQi"] {
        assert!(!sealed.contains(header), "{}", set.value);
    }
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"]["email"], "ada@example.com");
    assert_eq!(body["redirectTo"], "/account");
    let text = body.to_string();
    assert!(!text.contains("eyJ") && !text.contains("oken"), "{text}");

    let me = browser.get("/api/session").await;
    assert_eq!(me.status(), 200);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["user"]["email"], "ada@example.com");
    let expires = time::OffsetDateTime::parse(
        me["expiresAt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let left = expires - time::OffsetDateTime::now_utc();
    assert!(left > time::Duration::days(29), "{left}");
}

#[tokio::test]
async fn the_cookie_works_on_every_bearer_route_with_the_same_checks() {
    let app = spawn_app().await;
    app.signup_ok("ada@example.com").await;
    let mut ada = Browser::new(&app);
    ada.login_ok("ada@example.com").await;
    let me: Value = ada.get("/api/users/me").await.json().await.unwrap();
    assert_eq!(me["email"], "ada@example.com");
    let patch = ada
        .request(Method::PATCH, "/api/users/me")
        .json(&json!({"firstname": "Ada"}));
    let patched = ada.send(patch).await;
    assert_eq!(patched.status(), 200);
    let post = ada
        .request(Method::POST, "/api/posts")
        .json(&json!({"title": "Draft", "published": false}));
    let post: Value = ada.send(post).await.json().await.unwrap();
    // Her draft is in her list (the cookie is the caller, as a token is).
    let mine: Value = ada.get("/api/posts").await.json().await.unwrap();
    assert_eq!(mine["items"][0]["id"], post["id"]);
    // The role check is the same: a USER's cookie is refused the ADMIN list.
    assert_error(ada.get("/api/users").await, 403, "/api/users").await;
    // No cookie, no caller.
    assert_error(
        Browser::new(&app).get("/api/users/me").await,
        401,
        "/api/users/me",
    )
    .await;
    assert_error(
        Browser::new(&app).get("/api/session").await,
        401,
        "/api/session",
    )
    .await;
}

#[tokio::test]
async fn a_tampered_cookie_is_no_session_and_is_cleared() {
    let app = spawn_app().await;
    app.signup_ok("ada@example.com").await;
    let mut ada = Browser::new(&app);
    ada.login_ok("ada@example.com").await;
    let good = ada.cookie.clone().unwrap();
    // Flip one character of the sealed value, at a few places.
    for at in [good.len() - 1, good.len() / 2, COOKIE.len() + 5] {
        let mut bytes = good.clone().into_bytes();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let mut mallory = Browser::new(&app);
        mallory.cookie = Some(String::from_utf8(bytes).unwrap());
        let response = mallory.get("/api/session").await;
        assert!(
            cleared(&response),
            "tampered at {at}: the cookie is cleared"
        );
        assert_error(response, 401, "/api/session").await;
    }
    // A cookie made up from scratch is refused the same way.
    let mut forged = Browser::new(&app);
    forged.cookie = Some(format!("{COOKIE}=v1.{}", "A".repeat(200)));
    assert_error(forged.get("/api/users/me").await, 401, "/api/users/me").await;
    // The real one still works.
    assert_eq!(ada.get("/api/session").await.status(), 200);
}

#[tokio::test]
async fn a_cookie_of_the_previous_key_is_read_and_resealed_and_an_older_one_is_refused() {
    let mut app = spawn_app().await;
    app.signup_ok("ada@example.com").await;
    let mut ada = Browser::new(&app);
    ada.login_ok("ada@example.com").await;
    let old_cookie = ada.cookie.clone().unwrap();

    // A second gateway after a rotation: a new key, the old one previous.
    let keys = TempDir::new();
    let new_key = keys.path.join("new-key");
    let key = gateway::session::seal::generate().unwrap();
    std::fs::write(&new_key, gateway::session::seal::encode_key(&key)).unwrap();
    let mut settings = app.gateway_settings();
    settings.session.previous_key_file = settings.session.key_file.clone();
    settings.session.key_file = new_key.display().to_string();
    let rotated = app.start_gateway(settings.clone()).await;
    let mut on_rotated = Browser::new(&rotated);
    on_rotated.cookie = Some(old_cookie.clone());
    let response = on_rotated.get("/api/session").await;
    assert_eq!(response.status(), 200, "the previous key still opens");
    let resealed = on_rotated.cookie.clone().unwrap();
    assert_ne!(resealed, old_cookie, "sealed again with the new key");
    // The resealed cookie opens with the new key only: the old gateway
    // (old key alone) refuses it, the rotated one takes it.
    let mut on_old = Browser::new(&app);
    on_old.cookie = Some(resealed.clone());
    assert_eq!(on_old.get("/api/session").await.status(), 401);
    on_rotated.cookie = Some(resealed);
    assert_eq!(on_rotated.get("/api/session").await.status(), 200);

    // The next rotation retires the first key: its cookies stop working.
    let newest = keys.path.join("newest-key");
    let key = gateway::session::seal::generate().unwrap();
    std::fs::write(&newest, gateway::session::seal::encode_key(&key)).unwrap();
    settings.session.previous_key_file = new_key.display().to_string();
    settings.session.key_file = newest.display().to_string();
    let third = app.start_gateway(settings).await;
    let mut on_third = Browser::new(&third);
    on_third.cookie = Some(old_cookie);
    let response = on_third.get("/api/session").await;
    assert!(cleared(&response));
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn logout_revokes_the_session_and_clears_the_cookie() {
    let app = spawn_app().await;
    app.signup_ok("ada@example.com").await;
    let mut ada = Browser::new(&app);
    ada.login_ok("ada@example.com").await;
    let cookie = ada.cookie.clone().unwrap();
    let logout = ada.request(Method::POST, "/api/session/logout");
    let response = ada.send(logout).await;
    assert_eq!(response.status(), 204);
    assert!(cleared(&response));
    assert!(ada.cookie.is_none());
    // The old cookie (a copy an attacker kept) is dead at once: its access
    // token still verifies, but its session is over.
    let mut copy = Browser::new(&app);
    copy.cookie = Some(cookie);
    assert_error(copy.get("/api/session").await, 401, "/api/session").await;
    assert_error(copy.get("/api/users/me").await, 401, "/api/users/me").await;
    let revoked: i64 =
        sqlx::query_scalar("select count(*) from sessions where revoked_at is not null")
            .fetch_one(&app.db.pool().await)
            .await
            .unwrap();
    assert_eq!(revoked, 1);
    // Logging out without a session is 401, not a crash.
    assert_error(
        Browser::new(&app)
            .send(Browser::new(&app).request(Method::POST, "/api/session/logout"))
            .await,
        401,
        "/api/session/logout",
    )
    .await;
}

#[tokio::test]
async fn logging_in_again_ends_the_session_the_cookie_replaced() {
    let app = spawn_app().await;
    app.signup_ok("ada@example.com").await;
    app.signup_ok("bob@example.com").await;
    let mut browser = Browser::new(&app);
    browser.login_ok("ada@example.com").await;
    let first = browser.cookie.clone().unwrap();
    // Bob logs in on the same browser: Ada's session ends.
    browser.login_ok("bob@example.com").await;
    let me: Value = browser.get("/api/session").await.json().await.unwrap();
    assert_eq!(me["user"]["email"], "bob@example.com");
    let mut copy = Browser::new(&app);
    copy.cookie = Some(first);
    assert_error(copy.get("/api/session").await, 401, "/api/session").await;
    let live: i64 = sqlx::query_scalar("select count(*) from sessions where revoked_at is null")
        .fetch_one(&app.db.pool().await)
        .await
        .unwrap();
    assert_eq!(live, 1, "only Bob's session is live");
}

#[tokio::test]
async fn the_session_login_is_validated_and_throttled_like_the_api_login() {
    let app = spawn_app().await;
    app.signup_ok("ada@example.com").await;
    let mut browser = Browser::new(&app);
    let bad = browser.login("not an email", "", None).await;
    let body = assert_error(bad, 400, "/api/session").await;
    assert_eq!(testkit::error_fields(&body), ["email", "password"]);
    for _ in 0..5 {
        let wrong = browser
            .login("ada@example.com", "wrong password", None)
            .await;
        assert!(set_cookie(&wrong).is_none());
        assert_error(wrong, 401, "/api/session").await;
    }
    let locked = browser.login("ada@example.com", PASSWORD, None).await;
    assert!(locked.headers().contains_key(header::RETRY_AFTER));
    assert!(set_cookie(&locked).is_none());
    assert_error(locked, 429, "/api/session").await;
    // The same lock holds on the API's login: one throttle.
    assert_error(
        app.login("ada@example.com", PASSWORD).await,
        429,
        "/api/auth/login",
    )
    .await;
}
