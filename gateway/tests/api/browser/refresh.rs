//! The gateway refreshes an expired access token behind the cookie: once for
//! many requests at once, across gateways, and a refused refresh ends the
//! session.

use std::time::Duration;

use reqwest::{Method, header};
use serde_json::json;
use testkit::{PASSWORD, assert_error};

use super::{Browser, cleared, set_cookie};
use crate::helpers::{COOKIE, Options, TestApp, endpoint, no_redirects, spawn_app_with};

/// `auth.refresh` requests served so far (the auth-worker's own count).
async fn refreshes(app: &TestApp) -> u64 {
    let stats = app.service_api("$SRV.STATS.auth-worker").await;
    endpoint(&stats, "auth.refresh")["num_requests"]
        .as_u64()
        .unwrap()
}

/// A stack whose access tokens last one second, and a gateway that
/// refreshes only expired ones.
async fn short_tokens() -> TestApp {
    spawn_app_with(Options {
        auth: |s| s.jwt.access_ttl_secs = 1,
        gateway: |s| {
            s.session.refresh_before_secs = 0;
            s.jwt.leeway_secs = 0;
        },
        ..Options::default()
    })
    .await
}

/// Waits out the one-second access token of [`short_tokens`] (its `exp` is
/// whole seconds, so two seconds pass it for sure).
async fn let_the_access_token_expire() {
    tokio::time::sleep(Duration::from_millis(2100)).await;
}

#[tokio::test]
async fn ten_concurrent_requests_after_expiry_make_exactly_one_refresh() {
    let app = short_tokens().await;
    app.signup_ok("ada@example.com").await;
    let mut ada = Browser::new(&app);
    ada.login_ok("ada@example.com").await;
    let before = refreshes(&app).await;
    let_the_access_token_expire().await;
    let requests = (0..10).map(|_| {
        let request = ada.request(Method::GET, "/api/users/me");
        async move { request.send().await.unwrap() }
    });
    let responses = futures::future::join_all(requests).await;
    let mut new_cookies = std::collections::BTreeSet::new();
    for response in &responses {
        assert_eq!(response.status(), 200);
        new_cookies.insert(set_cookie(response).expect("the refreshed cookie").value);
    }
    assert_eq!(
        refreshes(&app).await - before,
        1,
        "one auth.refresh for ten requests"
    );
    // Every reply carries a cookie of the same refreshed pair; it works.
    let mut refreshed = Browser::new(&app);
    refreshed.cookie = Some(format!("{COOKIE}={}", new_cookies.first().unwrap()));
    assert_eq!(refreshed.get("/api/session").await.status(), 200);
    let revoked: i64 =
        sqlx::query_scalar("select count(*) from sessions where revoked_at is not null")
            .fetch_one(&app.db.pool().await)
            .await
            .unwrap();
    assert_eq!(revoked, 0, "no session was revoked");
}

#[tokio::test]
async fn two_gateways_refreshing_one_session_at_once_keep_it_alive() {
    let mut app = short_tokens().await;
    let mut settings = app.gateway_settings();
    settings.session.refresh_before_secs = 0;
    settings.jwt.leeway_secs = 0;
    let other = app.start_gateway(settings).await;
    app.signup_ok("ada@example.com").await;
    let mut ada = Browser::new(&app);
    ada.login_ok("ada@example.com").await;
    let cookie = ada.cookie.clone().unwrap();
    let before = refreshes(&app).await;
    let_the_access_token_expire().await;
    // A load balancer sends the page's requests to both copies.
    let mut on_other = Browser::new(&other);
    on_other.cookie = Some(cookie);
    let requests = (0..10).map(|i| {
        let via = if i % 2 == 0 { &ada } else { &on_other };
        let request = via.request(Method::GET, "/api/users/me");
        async move { request.send().await.unwrap() }
    });
    let responses = futures::future::join_all(requests).await;
    let mut cookies = Vec::new();
    for response in &responses {
        assert_eq!(response.status(), 200);
        cookies.push(set_cookie(response).expect("a refreshed cookie").value);
    }
    let made = refreshes(&app).await - before;
    assert!(
        (1..=2).contains(&made),
        "one refresh per gateway at most: {made}"
    );
    // Whichever reply the browser keeps, the session goes on, on either copy.
    for value in [cookies.first().unwrap(), cookies.last().unwrap()] {
        for api in [&*app, &other] {
            let mut browser = Browser::new(api);
            browser.cookie = Some(format!("{COOKIE}={value}"));
            assert_eq!(browser.get("/api/session").await.status(), 200);
        }
    }
    let revoked: i64 =
        sqlx::query_scalar("select count(*) from sessions where revoked_at is not null")
            .fetch_one(&app.db.pool().await)
            .await
            .unwrap();
    assert_eq!(revoked, 0, "the race did not look like token theft");
}

#[tokio::test]
async fn a_refused_refresh_clears_the_cookie_for_the_api_and_redirects_a_page() {
    let app = short_tokens().await;
    app.signup_ok("ada@example.com").await;
    let mut ada = Browser::new(&app);
    ada.login_ok("ada@example.com").await;
    let cookie = ada.cookie.clone().unwrap();
    // A password change elsewhere ends every other session, this one too.
    let token = app.access_token("ada@example.com").await;
    let changed = app
        .http
        .put(app.url("/api/users/me/password"))
        .bearer_auth(&token)
        .json(&json!({"currentPassword": PASSWORD, "newPassword": "another password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 204);
    let_the_access_token_expire().await;
    let response = ada.get("/api/users/me").await;
    assert!(cleared(&response));
    assert_error(response, 401, "/api/users/me").await;
    let page = no_redirects()
        .get(app.url("/account"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 302);
    assert_eq!(page.headers()[header::LOCATION], "/login?next=%2Faccount");
    assert!(cleared(&page));
}
