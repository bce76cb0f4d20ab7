//! What the browser session must never do: let a demoted or deleted ADMIN
//! keep the back-office, leave a refreshed cookie in a cache, or forget a
//! spent refresh token while its session lives.

use reqwest::{Method, header};
use serde_json::{Value, json};
use testkit::PASSWORD;

use crate::{
    browser::{Browser, fake_build, set_cookie},
    helpers::{TestApp, no_redirects, spawn_app},
};

/// A stack serving a fake web build, whose gateway refreshes the cookie's
/// access token on every request (as it does near its expiry).
async fn refreshing_app(build: &std::path::Path) -> TestApp {
    let mut app = spawn_app().await;
    let mut settings = app.gateway_settings();
    settings.web.dir = build.to_owned();
    settings.session.refresh_before_secs = 1_000_000;
    let api = app.start_gateway(settings).await;
    app.set_api(api);
    app
}

async fn page(app: &TestApp, path: &str, cookie: &Option<String>) -> reqwest::Response {
    let mut request = no_redirects().get(app.url(path));
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    request.send().await.unwrap()
}

fn sent_to_login(response: &reqwest::Response) -> bool {
    response.status() == 302
        && response.headers()[header::LOCATION]
            .to_str()
            .unwrap()
            .starts_with("/login?next=%2Fdashboard")
}

#[tokio::test]
async fn a_demoted_or_deleted_admin_gets_the_back_office_answer_of_anyone_else_at_once() {
    let build = fake_build();
    let mut app = spawn_app().await;
    let mut settings = app.gateway_settings();
    settings.web.dir = build.path.clone();
    let api = app.start_gateway(settings).await;
    app.set_api(api);
    let boss = app.admin_account("boss@example.com").await;
    let eve = app.admin_account("eve@example.com").await;
    let fay = app.admin_account("fay@example.com").await;
    let (mut eve_browser, mut fay_browser) = (Browser::new(&app), Browser::new(&app));
    eve_browser.login_ok("eve@example.com").await;
    fay_browser.login_ok("fay@example.com").await;
    for cookie in [&eve_browser.cookie, &fay_browser.cookie] {
        assert_eq!(page(&app, "/dashboard/users", cookie).await.status(), 200);
    }
    // Both cookies' access tokens still say ADMIN for minutes. A demotion
    // ends the user's sessions, a deletion the user: the login page, at once.
    let eve_path = format!("/api/users/{}", eve.id);
    let body = json!({"role": "USER"});
    app.call(Method::PATCH, &eve_path, &boss, Some(&body))
        .ok()
        .await;
    let demoted = page(&app, "/dashboard/users", &eve_browser.cookie).await;
    assert!(
        sent_to_login(&demoted),
        "a demoted ADMIN: {}",
        demoted.status()
    );
    let fay_path = format!("/api/users/{}", fay.id);
    let deleted = app
        .call(Method::DELETE, &fay_path, &boss, None)
        .send()
        .await;
    assert_eq!(deleted.status(), 204);
    let deleted = page(&app, "/dashboard/", &fay_browser.cookie).await;
    assert!(
        sent_to_login(&deleted),
        "a deleted ADMIN: {}",
        deleted.status()
    );
    // A USER's live session still gets the 403 page.
    app.signup_ok("ada@example.com").await;
    let mut ada = Browser::new(&app);
    ada.login_ok("ada@example.com").await;
    assert_eq!(
        page(&app, "/dashboard/users", &ada.cookie).await.status(),
        403
    );
}

#[tokio::test]
async fn a_reply_that_refreshes_the_cookie_is_never_stored_by_a_cache() {
    let build = fake_build();
    let app = refreshing_app(&build.path).await;
    app.signup_ok("ada@example.com").await;
    let mut ada = Browser::new(&app);
    ada.login_ok("ada@example.com").await;
    // An immutable asset, a page and an API reply, each refreshing the cookie.
    for path in ["/assets/index-AbC123.js", "/account", "/api/users/me"] {
        let response = ada.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert!(
            set_cookie(&response).is_some(),
            "{path} refreshed the cookie"
        );
        assert_eq!(
            response.headers()[header::CACHE_CONTROL],
            "private, no-store",
            "{path}"
        );
    }
}

#[tokio::test]
async fn authenticated_api_replies_are_never_stored_by_a_cache() {
    let app = spawn_app().await;
    let ada = app.account("ada@example.com").await;
    for path in ["/api/users/me", "/api/posts"] {
        let response = app.call(Method::GET, path, &ada, None).send().await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(
            response.headers()[header::CACHE_CONTROL],
            "no-store",
            "{path}"
        );
    }
    // A public reply to nobody may be cached as its route says.
    let public = app.get("/api/posts").await;
    assert!(public.headers().get(header::CACHE_CONTROL).is_none());
}

/// Runs a purge (a new auth-worker purges as it starts) and returns once it
/// has: a throttle row whose window closed long ago is gone.
async fn purge(app: &mut TestApp) {
    let pool = app.db.pool().await;
    sqlx::query(
        "insert into login_failures (scope, key, window_start, failures) \
         values ('email', 'sentinel@example.com', now() - interval '2 days', 1)",
    )
    .execute(&pool)
    .await
    .unwrap();
    app.start_auth_worker();
    let purged = testkit::eventually(
        std::time::Duration::from_secs(20),
        std::time::Duration::from_millis(50),
        || {
            let pool = pool.clone();
            async move {
                let left: i64 = sqlx::query_scalar(
                    "select count(*) from login_failures where key = 'sentinel@example.com'",
                )
                .fetch_one(&pool)
                .await
                .unwrap();
                left == 0
            }
        },
    );
    assert!(purged.await, "the purge ran");
}

#[tokio::test]
async fn a_spent_refresh_token_replayed_weeks_later_still_revokes_its_session() {
    let mut app = spawn_app().await;
    app.signup_ok("ada@example.com").await;
    let first = app.login_ok("ada@example.com", PASSWORD).await;
    let stolen = first["refreshToken"].as_str().unwrap().to_owned();
    let rotated: Value = app.refresh(&stolen).await.json().await.unwrap();
    let current = rotated["refreshToken"].as_str().unwrap().to_owned();
    // Three weeks pass: the stolen token was spent long ago, the session
    // (30 days) still lives.
    let pool = app.db.pool().await;
    sqlx::query("update refresh_tokens set spent_at = now() - interval '21 days' where spent_at is not null")
        .execute(&pool)
        .await
        .unwrap();
    purge(&mut app).await;
    // Its sealed successor is gone; the spent token's hash is not.
    let (spent, sealed): (i64, i64) = sqlx::query_as(
        "select count(*), count(successor) from refresh_tokens where spent_at is not null",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((spent, sealed), (1, 0));
    // The replay is refused and ends the session: the holder's token too.
    assert_eq!(app.refresh(&stolen).await.status(), 401);
    assert_eq!(
        app.refresh(&current).await.status(),
        401,
        "the session was revoked"
    );
}
