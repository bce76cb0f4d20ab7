//! `require_verified_email`: a route that requires a verified address (the
//! default) refuses everyone else before the upstream hears of them; one
//! that does not lets them in, but tells the upstream no address.

use std::sync::atomic::Ordering;

use axum::http::header;
use reqwest::Method;

use super::{
    echo::start_upstream, echo_of, fetch, gateway, header_values, proxied_app, route,
    session_as_is, verify_email,
};
use crate::helpers::{claims, no_redirects, spawn_app};

#[tokio::test]
async fn an_unverified_user_is_refused_by_a_default_route_and_the_upstream_never_hears_of_it() {
    let (app, seen) = proxied_app("USER,ADMIN").await;
    let user = app.signup_ok("ada@example.com").await;
    let cookie = session_as_is(&app, "ada@example.com").await;
    let token = app.access_token("ada@example.com").await;

    // A page's fetch, a bearer call, a form post: 403 in the error shape.
    let fetched = fetch(&app, &cookie, "/proxy/echo/data").await;
    let body = testkit::assert_error(fetched, 403, "/proxy/echo/data").await;
    assert_eq!(
        body["message"],
        "verify your email address to use this tool"
    );
    let bearer = app.get_with_token("/proxy/echo/data", &token).await;
    testkit::assert_error(bearer, 403, "/proxy/echo/data").await;
    let posted = app
        .same_origin(Method::POST, "/proxy/echo/form", &cookie)
        .body("a=1")
        .send()
        .await
        .unwrap();
    testkit::assert_error(posted, 403, "/proxy/echo/form").await;
    // A WebSocket handshake: refused, never upgraded.
    let upgrade = app
        .same_origin(Method::GET, "/proxy/echo/ws", &cookie)
        .header(header::ORIGIN, app.url(""))
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(upgrade.status(), 403);
    // A person navigating is sent where a new link can be asked for.
    let page = no_redirects()
        .get(app.url("/proxy/echo/page"))
        .header(header::COOKIE, &cookie)
        .header("sec-fetch-mode", "navigate")
        .header("sec-fetch-site", "none")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 302);
    assert_eq!(page.headers()[header::LOCATION], "/account?verify=required");

    assert_eq!(
        seen.hits.load(Ordering::SeqCst),
        0,
        "the upstream heard of it"
    );
    // A forged identity header does not help either.
    let forged = fetch_with(&app, &cookie, "x-forwarded-email", "ada@example.com").await;
    assert_eq!(forged.status(), 403);
    assert_eq!(seen.hits.load(Ordering::SeqCst), 0);

    // Once the address is verified, the very next request passes (the
    // refusal did not stay cached), with the address.
    verify_email(&app, user["id"].as_i64().unwrap()).await;
    let echoed = echo_of(fetch(&app, &cookie, "/proxy/echo/data").await).await;
    assert_eq!(
        header_values(&echoed, "x-forwarded-email"),
        ["ada@example.com"]
    );
    let assertion = &header_values(&echoed, "x-auth-assertion")[0];
    let claims = claims(assertion);
    assert_eq!(claims["email"], "ada@example.com");
    assert_eq!(claims["email_verified"], true);
    assert_eq!(seen.hits.load(Ordering::SeqCst), 1);
}

/// A same-origin fetch with one extra header.
async fn fetch_with(
    app: &crate::helpers::TestApp,
    cookie: &str,
    name: &str,
    value: &str,
) -> reqwest::Response {
    app.same_origin(Method::GET, "/proxy/echo/data", cookie)
        .header("sec-fetch-mode", "cors")
        .header(name, value)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_route_that_does_not_require_it_tells_the_upstream_no_unverified_address() {
    let mut app = spawn_app().await;
    let (upstream, seen) = start_upstream().await;
    let routes = route(
        "echo",
        &format!("http://{upstream}"),
        "require_verified_email = false",
    );
    gateway(&mut app, &routes, "").await;
    let user = app.signup_ok("ada@example.com").await;
    let token = app.access_token("ada@example.com").await;

    let through = |token: String| {
        let app = &app;
        async move {
            let response = no_redirects()
                .get(app.url("/proxy/echo/data"))
                .bearer_auth(token)
                // Whatever the client claims.
                .header("x-forwarded-email", "ada@example.com")
                .header("x-auth-request-email", "ada@example.com")
                .send()
                .await
                .unwrap();
            echo_of(response).await
        }
    };
    let echoed = through(token).await;
    assert_eq!(
        header_values(&echoed, "x-forwarded-user"),
        [user["id"].to_string()]
    );
    assert!(
        header_values(&echoed, "x-forwarded-email").is_empty(),
        "{echoed}"
    );
    assert!(header_values(&echoed, "x-auth-request-email").is_empty());
    let assertion = claims(&header_values(&echoed, "x-auth-assertion")[0]);
    assert_eq!(assertion["email"], "", "{assertion}");
    assert_eq!(assertion["email_verified"], false, "{assertion}");

    // Verified (and logged in again, so no cached assertion applies): the
    // upstream gets the address.
    verify_email(&app, user["id"].as_i64().unwrap()).await;
    let echoed = through(app.access_token("ada@example.com").await).await;
    assert_eq!(
        header_values(&echoed, "x-forwarded-email"),
        ["ada@example.com"]
    );
    let assertion = claims(&header_values(&echoed, "x-auth-assertion")[0]);
    assert_eq!(assertion["email"], "ada@example.com");
    assert_eq!(assertion["email_verified"], true);
    assert_eq!(seen.hits.load(Ordering::SeqCst), 2);
}
