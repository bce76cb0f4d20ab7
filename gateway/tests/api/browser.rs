//! The browser session (`/api/session`, the sealed cookie), CSRF, `next`,
//! refresh in the gateway, and the pages the gateway serves.

use std::{path::Path, time::Duration};

use reqwest::{Method, Response, header};
use serde_json::{Value, json};
use testkit::{Api, PASSWORD, TempDir, assert_error};

use crate::helpers::{Options, TestApp, endpoint, spawn_app, spawn_app_with};

pub(crate) const COOKIE: &str = "__Host-natsauth";

/// A browser's cookie jar for our one cookie.
#[derive(Debug, Clone)]
pub(crate) struct Browser<'a> {
    api: &'a Api,
    /// `name=value`, as sent back in `Cookie`.
    pub(crate) cookie: Option<String>,
}

impl<'a> Browser<'a> {
    pub(crate) fn new(api: &'a Api) -> Self {
        Self { api, cookie: None }
    }

    /// A same-origin request (what a page of ours sends), with the cookie.
    pub(crate) fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut request = self
            .api
            .http
            .request(method, self.api.url(path))
            .header("sec-fetch-site", "same-origin");
        if let Some(cookie) = &self.cookie {
            request = request.header(header::COOKIE, cookie);
        }
        request
    }

    /// Sends and keeps what the reply sets.
    pub(crate) async fn send(&mut self, request: reqwest::RequestBuilder) -> Response {
        let response = request.send().await.expect("request");
        if let Some(set) = set_cookie(&response) {
            self.cookie = (!set.value.is_empty()).then(|| format!("{COOKIE}={}", set.value));
        }
        response
    }

    async fn login(&mut self, email: &str, password: &str, next: Option<&str>) -> Response {
        let mut body = json!({"email": email, "password": password});
        if let Some(next) = next {
            body["next"] = json!(next);
        }
        let request = self.request(Method::POST, "/api/session").json(&body);
        self.send(request).await
    }

    pub(crate) async fn login_ok(&mut self, email: &str) -> Value {
        let response = self.login(email, PASSWORD, None).await;
        assert_eq!(response.status(), 200, "session login of {email}");
        response.json().await.unwrap()
    }

    pub(crate) async fn get(&mut self, path: &str) -> Response {
        let request = self.request(Method::GET, path);
        self.send(request).await
    }
}

/// Our cookie as a `Set-Cookie` sets it: value and attributes.
#[derive(Debug)]
pub(crate) struct SetCookie {
    pub(crate) value: String,
    pub(crate) attributes: Vec<String>,
}

pub(crate) fn set_cookie(response: &Response) -> Option<SetCookie> {
    let ours: Vec<&str> = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .filter(|v| v.starts_with(&format!("{COOKIE}=")))
        .collect();
    assert!(ours.len() <= 1, "one Set-Cookie for the session: {ours:?}");
    let line = ours.first()?;
    let mut parts = line.split(';').map(str::trim);
    let value = parts.next()?.split_once('=')?.1.to_owned();
    Some(SetCookie {
        value,
        attributes: parts.map(str::to_owned).collect(),
    })
}

pub(crate) fn cleared(response: &Response) -> bool {
    set_cookie(response)
        .is_some_and(|c| c.value.is_empty() && c.attributes.iter().any(|a| a == "Max-Age=0"))
}

/// `auth.refresh` requests served so far (the auth-worker's own count).
async fn refreshes(app: &TestApp) -> u64 {
    let stats = app.service_api("$SRV.STATS.auth-worker").await;
    endpoint(&stats, "auth.refresh")["num_requests"]
        .as_u64()
        .unwrap()
}

/// A client without redirects, to see the gateway's 302s.
pub(crate) fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

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
    // The value is opaque: no JWT (`eyJ`) and no JSON inside.
    assert!(
        set.value.starts_with("v1.") && !set.value.contains("eyJ"),
        "{}",
        set.value
    );
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
async fn a_cookie_authenticated_unsafe_request_must_be_same_origin() {
    let app = spawn_app_with(Options {
        gateway: |s| s.session.public_origin = "https://app.example".into(),
        ..Options::default()
    })
    .await;
    let ada_account = app.account("ada@example.com").await;
    let mut ada = Browser::new(&app);
    ada.login_ok("ada@example.com").await;
    let cookie = ada.cookie.clone().unwrap();
    let patch = |headers: &[(&str, &str)], name: &str| {
        let mut request = app
            .http
            .patch(app.url("/api/users/me"))
            .header(header::COOKIE, &cookie)
            .json(&json!({"firstname": name}));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        request.send()
    };
    let refused: &[&[(&str, &str)]] = &[
        &[],
        &[("sec-fetch-site", "cross-site")],
        &[("sec-fetch-site", "same-site")],
        &[("sec-fetch-site", "none")],
        &[
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://app.example"),
        ],
        &[("origin", "https://evil.example")],
        &[("origin", "https://app.example.evil.example")],
        &[("origin", "null")],
    ];
    for headers in refused {
        let body = assert_error(
            patch(headers, "Mallory").await.unwrap(),
            403,
            "/api/users/me",
        )
        .await;
        assert_eq!(body["message"], "cross-site request refused", "{headers:?}");
    }
    // Nothing changed.
    let me: Value = ada.get("/api/users/me").await.json().await.unwrap();
    assert_eq!(me["firstname"], Value::Null);
    // Same-origin by either header passes.
    let ok = patch(&[("sec-fetch-site", "same-origin")], "Ada")
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let ok = patch(&[("origin", "https://app.example")], "Ada")
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    // A bearer request is exempt (no browser attaches it on its own), even
    // with the cookie beside it.
    let bearer = app
        .http
        .patch(app.url("/api/users/me"))
        .bearer_auth(&ada_account.token)
        .header(header::COOKIE, &cookie)
        .header("sec-fetch-site", "cross-site")
        .json(&json!({"lastname": "Lovelace"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 200);
    // A cookie-authenticated GET is not checked (it changes nothing).
    let get = app
        .http
        .get(app.url("/api/users/me"))
        .header(header::COOKIE, &cookie)
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 200);
    // The session login is checked even without a cookie (login CSRF), and
    // a refused one sets nothing.
    let cross = app
        .http
        .post(app.url("/api/session"))
        .header("sec-fetch-site", "cross-site")
        .json(&json!({"email": "ada@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert!(set_cookie(&cross).is_none());
    assert_error(cross, 403, "/api/session").await;
    let logout = app
        .http
        .post(app.url("/api/session/logout"))
        .header(header::COOKIE, &cookie)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_error(logout, 403, "/api/session/logout").await;
    assert_eq!(
        ada.get("/api/session").await.status(),
        200,
        "still logged in"
    );
}

#[tokio::test]
async fn next_is_followed_only_when_it_is_a_path_on_this_origin() {
    let app = spawn_app().await;
    app.signup_ok("ada@example.com").await;
    app.admin_account("root@example.com").await;
    for next in gateway::session::next::REFUSED {
        for (email, default) in [
            ("ada@example.com", "/account"),
            ("root@example.com", "/dashboard/"),
        ] {
            let response = Browser::new(&app).login(email, PASSWORD, Some(next)).await;
            assert_eq!(response.status(), 200, "{next:?}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["redirectTo"], default, "next = {next:?} for {email}");
        }
    }
    for next in [
        "/account",
        "/dashboard/posts?limit=5&cursor=abc",
        "/dashboard/#users",
    ] {
        let response = Browser::new(&app)
            .login("ada@example.com", PASSWORD, Some(next))
            .await;
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["redirectTo"], next);
    }
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

/// A stand-in build of the web app, so page tests do not need npm.
pub(crate) fn fake_build() -> TempDir {
    let dir = TempDir::new();
    std::fs::create_dir_all(dir.path.join("assets")).unwrap();
    std::fs::write(
        dir.path.join("index.html"),
        "<!doctype html><title>app</title><script type=module src=/assets/index-AbC123.js></script>",
    )
    .unwrap();
    std::fs::write(
        dir.path.join("assets/index-AbC123.js"),
        "console.log('app')",
    )
    .unwrap();
    std::fs::write(dir.path.join("favicon.svg"), "<svg/>").unwrap();
    dir
}

pub(crate) async fn app_with_web(dir: &Path) -> TestApp {
    let mut app = spawn_app().await;
    let mut settings = app.gateway_settings();
    settings.web.dir = dir.to_owned();
    let api = app.start_gateway(settings).await;
    app.set_api(api);
    app
}

#[tokio::test]
async fn pages_need_the_right_session_and_anonymous_visits_go_to_login() {
    let build = fake_build();
    let app = app_with_web(&build.path).await;
    app.signup_ok("ada@example.com").await;
    app.admin_account("root@example.com").await;
    let http = no_redirects();
    let get = |path: &str, cookie: Option<String>| {
        let mut request = http.get(app.url(path));
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        request.send()
    };
    // Anonymous: the login page with where they were going.
    let anonymous = get("/dashboard/posts?limit=2", None).await.unwrap();
    assert_eq!(anonymous.status(), 302);
    assert_eq!(
        anonymous.headers()[header::LOCATION],
        "/login?next=%2Fdashboard%2Fposts%3Flimit%3D2"
    );
    assert_eq!(
        get("/account", None).await.unwrap().headers()[header::LOCATION],
        "/login?next=%2Faccount"
    );
    assert_eq!(
        get("/", None).await.unwrap().headers()[header::LOCATION],
        "/login"
    );
    assert_eq!(
        get("/dashboard", None).await.unwrap().headers()[header::LOCATION],
        "/dashboard/"
    );
    for public in ["/login", "/signup", "/login?next=%2Faccount"] {
        let page = get(public, None).await.unwrap();
        assert_eq!(page.status(), 200, "{public}");
    }
    // A USER: her account, but a 403 page for the back-office.
    let mut ada = Browser::new(&app);
    ada.login_ok("ada@example.com").await;
    assert_eq!(
        get("/account", ada.cookie.clone()).await.unwrap().status(),
        200
    );
    assert_eq!(
        get("/", ada.cookie.clone()).await.unwrap().headers()[header::LOCATION],
        "/account"
    );
    let refused = get("/dashboard/", ada.cookie.clone()).await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.unwrap().contains("<title>app</title>"));
    // An ADMIN: the back-office.
    let mut root = Browser::new(&app);
    root.login_ok("root@example.com").await;
    assert_eq!(
        get("/", root.cookie.clone()).await.unwrap().headers()[header::LOCATION],
        "/dashboard/"
    );
    let page = get("/dashboard/users", root.cookie.clone()).await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()[header::CACHE_CONTROL], "no-cache");
    assert!(
        page.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let csp = page.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
}

#[tokio::test]
async fn assets_are_cached_for_good_the_app_never_and_api_paths_are_never_shadowed() {
    let build = fake_build();
    let app = app_with_web(&build.path).await;
    let asset = app.get("/assets/index-AbC123.js").await;
    assert_eq!(asset.status(), 200);
    assert_eq!(
        asset.headers()[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    // A missing asset is a plain 404 in the contract's shape, not the app.
    let missing = app.get("/assets/nope-123.js").await;
    assert!(!missing.headers().contains_key(header::CACHE_CONTROL));
    assert_error(missing, 404, "/assets/nope-123.js").await;
    // A root file of the build.
    assert_eq!(app.get_text("/favicon.svg").await, "<svg/>");
    // An unknown page: the app (which shows "not found") with 404.
    let unknown = app.get("/no/such/page").await;
    assert_eq!(unknown.status(), 404);
    assert!(unknown.text().await.unwrap().contains("<title>app</title>"));
    // Under /api/ the contract's JSON 404 always wins.
    for path in [
        "/api/nope",
        "/api/users/me/nope",
        "/api",
        "/api/session/nope",
    ] {
        assert_error(app.get(path).await, 404, path).await;
    }
    let post = app.post("/no/such/page", &json!({})).await;
    assert_error(post, 404, "/no/such/page").await;
    for ops in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(app.get(ops).await.status(), 200, "{ops}");
    }
}

#[tokio::test]
async fn without_a_build_the_pages_say_how_to_make_one_and_the_api_works() {
    let empty = TempDir::new();
    let app = app_with_web(&empty.path.join("dist")).await;
    let page = app.get("/login").await;
    assert_eq!(page.status(), 503);
    assert!(page.text().await.unwrap().contains("cargo xtask web"));
    app.signup_ok("ada@example.com").await;
    assert_eq!(app.login("ada@example.com", PASSWORD).await.status(), 200);
}
