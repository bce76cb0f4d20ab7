//! Step-up at the proxy: a route with `mfa = "required"` sends a session
//! that has not proved a factor to the factor page (a person) or answers
//! 401 with RFC 9470's `insufficient_user_authentication` (anything else),
//! and lets it through once it steps up; its assertion says how and when.
//! `max_auth_age` asks again once that long has passed.

use std::time::Duration;

use axum::http::header;
use reqwest::Method;
use serde_json::{Value, json};
use testkit::{Account, PASSWORD};

use super::{code, enrol_account};
use crate::{
    helpers::{TestApp, claims, no_redirects, proxy_settings, spawn_app},
    proxy::{cookie_of, echo::start_upstream, echo_of, verify_email},
};

/// An app whose gateway has `vault` (factor required), `fresh` (factor
/// within the last 2 seconds) and `open` (no demand) to an echo upstream.
async fn app_with_routes() -> TestApp {
    let mut app = spawn_app().await;
    let (upstream, _) = start_upstream().await;
    let route = |name: &str, extra: &str| {
        format!(
            "[[proxy.routes]]\nname = \"{name}\"\nupstream = \"http://{upstream}\"\n\
             roles = \"USER,ADMIN\"\n{extra}\n"
        )
    };
    let doc = [
        route("vault", "mfa = \"required\""),
        route("fresh", "mfa = \"required\"\nmax_auth_age = 2"),
        route("open", ""),
    ]
    .concat();
    let mut settings = app.gateway_settings();
    settings.proxy = proxy_settings(&doc);
    let api = app.start_gateway(settings).await;
    app.set_api(api);
    app
}

/// A person opening `path` with `cookie`.
async fn navigate(app: &TestApp, cookie: &str, path: &str) -> reqwest::Response {
    no_redirects()
        .get(app.url(path))
        .header(header::COOKIE, cookie)
        .header("sec-fetch-mode", "navigate")
        .header("sec-fetch-site", "none")
        .header("sec-fetch-dest", "document")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_password_only_session_steps_up_before_an_mfa_route_and_its_assertion_says_so() {
    let app = app_with_routes().await;
    let email = "ada@example.com";
    let first = app.account(email).await;
    verify_email(&app, first.id).await;
    // A browser session and a bearer session from before the app was on:
    // both proved a password only.
    let login = app.session_login(email, PASSWORD).await;
    assert_eq!(login.status(), 200);
    let cookie = cookie_of(&login);
    let old = Account {
        id: first.id,
        token: app.access_token(email).await,
    };
    let enrolled = enrol_account(&app, first).await;

    // Routes without a demand are open to them.
    assert_eq!(
        app.get_with_token("/proxy/open/x", &old.token)
            .await
            .status(),
        200
    );
    // An API call: 401, the RFC 9470 challenge, the contract's body.
    let refused = app.get_with_token("/proxy/vault/x", &old.token).await;
    let challenge = refused.headers()[header::WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains("insufficient_user_authentication"),
        "{challenge}"
    );
    testkit::assert_error(refused, 401, "/proxy/vault/x").await;
    // A person: the factor page, then back to where they were going.
    let page = navigate(&app, &cookie, "/proxy/vault/page?q=1").await;
    assert_eq!(page.status(), 302);
    let location = page.headers()[header::LOCATION].to_str().unwrap();
    assert!(location.starts_with("/mfa?next="), "{location}");
    assert!(location.contains("vault"), "{location}");

    // The bearer session steps up with the next code.
    let grant = app
        .call(
            Method::POST,
            "/api/auth/step-up",
            &old,
            Some(&json!({ "code": code(&enrolled.secret, enrolled.last_step + 1) })),
        )
        .ok()
        .await;
    assert_eq!(grant["amr"], json!(["pwd", "otp"]));
    let stepped = grant["accessToken"].as_str().unwrap();
    let echoed = echo_of(app.get_with_token("/proxy/vault/x", stepped).await).await;
    let assertion = echoed["headers"]["x-auth-assertion"][0].as_str().unwrap();
    let said = claims(assertion);
    assert_eq!(said["amr"], json!(["pwd", "otp"]), "{said}");
    assert!(said["auth_time"].as_i64().unwrap() >= grant_time(&grant) - 1);

    // The browser session steps up with a recovery code: the cookie gets
    // the new token, the body none.
    let stepped_up = app
        .same_origin(Method::POST, "/api/auth/step-up", &cookie)
        .json(&json!({ "code": enrolled.recovery_codes[0] }))
        .send()
        .await
        .unwrap();
    assert_eq!(stepped_up.status(), 200);
    let new_cookie = cookie_of(&stepped_up);
    let body: Value = stepped_up.json().await.unwrap();
    assert!(body.get("accessToken").is_none(), "{body}");
    let through = navigate(&app, &new_cookie, "/proxy/vault/page?q=1").await;
    assert_eq!(through.status(), 200);
}

fn grant_time(grant: &Value) -> i64 {
    let text = grant["authTime"].as_str().unwrap();
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp()
}

#[tokio::test]
async fn max_auth_age_asks_again_once_it_has_passed() {
    let app = app_with_routes().await;
    let email = "bo@example.com";
    let account = app.account(email).await;
    verify_email(&app, account.id).await;
    let enrolled = enrol_account(&app, account).await;
    // Enrolling proved the factor just now: the route lets it in…
    let token = enrolled.account.token.clone();
    assert_eq!(
        app.get_with_token("/proxy/fresh/x", &token).await.status(),
        200
    );
    // …until two seconds have passed since.
    let asked_again =
        testkit::eventually(Duration::from_secs(10), Duration::from_millis(200), || {
            let (app, token) = (&app, &token);
            async move { app.get_with_token("/proxy/fresh/x", token).await.status() == 401 }
        })
        .await;
    assert!(asked_again, "max_auth_age never asked again");
    // The route without an age still lets the same session in.
    assert_eq!(
        app.get_with_token("/proxy/vault/x", &token).await.status(),
        200
    );
}

#[tokio::test]
async fn a_step_up_without_a_factor_or_with_a_wrong_code_changes_nothing() {
    let app = app_with_routes().await;
    let plain = app.account("cy@example.com").await;
    app.call(
        Method::POST,
        "/api/auth/step-up",
        &plain,
        Some(&json!({ "code": "123456" })),
    )
    .fails(409)
    .await;
    let enrolled = super::enrol(&app, "dee@example.com").await;
    app.call(
        Method::POST,
        "/api/auth/step-up",
        &enrolled.account,
        Some(&json!({ "code": "000000" })),
    )
    .fails(403)
    .await;
    app.call(
        Method::POST,
        "/api/auth/step-up",
        &enrolled.account,
        Some(&json!({})),
    )
    .fails(400)
    .await;
}
