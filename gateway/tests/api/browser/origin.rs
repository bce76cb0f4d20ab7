//! What only this origin's pages may do: unsafe requests with the cookie,
//! and `next` after a login.

use reqwest::header;
use serde_json::{Value, json};
use testkit::{PASSWORD, assert_error};

use super::{Browser, set_cookie};
use crate::helpers::{Options, spawn_app, spawn_app_with};

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
