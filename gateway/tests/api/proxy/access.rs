//! Who may open a route: anonymous visits, roles a route does not admit, and
//! a logout or a new role counting at once on every gateway.

use std::sync::atomic::Ordering;

use axum::http::header;
use reqwest::Method;
use serde_json::{Value, json};
use testkit::{Api, assert_error};

use super::{
    admin_session, demote, echo::start_upstream, fetch, header_values, log_out, proxied_app,
    proxied_settings, session, user_session,
};
use crate::helpers::{no_redirects, proxy_settings, spawn_app};

#[tokio::test]
async fn anonymous_navigation_goes_to_login_and_anything_else_gets_401() {
    let (app, seen) = proxied_app("ADMIN").await;
    let client = no_redirects();

    let page = client
        .get(app.url("/proxy/echo/page?a=1"))
        .header("sec-fetch-mode", "navigate")
        .header(header::ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 302);
    assert_eq!(
        page.headers()[header::LOCATION],
        "/login?next=%2Fproxy%2Fecho%2Fpage%3Fa%3D1"
    );
    // Without fetch metadata, an HTML Accept is a navigation too.
    let old_browser = client
        .get(app.url("/proxy/echo/"))
        .header(header::ACCEPT, "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(old_browser.status(), 302);

    let json = client
        .get(app.url("/proxy/echo/api/data"))
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert_error(json, 401, "/proxy/echo/api/data").await;
    let fetched = client
        .get(app.url("/proxy/echo/page"))
        .header("sec-fetch-mode", "cors")
        .header(header::ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    assert_error(fetched, 401, "/proxy/echo/page").await;
    let posted = client
        .post(app.url("/proxy/echo/form"))
        .body("a=1")
        .send()
        .await
        .unwrap();
    assert_error(posted, 401, "/proxy/echo/form").await;
    // An upgrade, even one that looks like navigation: 401, never a 101.
    let upgrade = client
        .get(app.url("/proxy/echo/ws"))
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header(header::ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    assert_error(upgrade, 401, "/proxy/echo/ws").await;
    // A forged identity header is no identity.
    let forged = client
        .get(app.url("/proxy/echo/x"))
        .header("x-forwarded-user", "1")
        .header("x-forwarded-groups", "ADMIN")
        .header("x-auth-assertion", "anything")
        .send()
        .await
        .unwrap();
    assert_error(forged, 401, "/proxy/echo/x").await;
    assert_eq!(
        seen.hits.load(Ordering::SeqCst),
        0,
        "the upstream was reached"
    );

    // The bare prefix sends browsers to the slash, so relative links work.
    let bare = client.get(app.url("/proxy/echo?x=1")).send().await.unwrap();
    assert_eq!(bare.status(), 308);
    assert_eq!(bare.headers()[header::LOCATION], "/proxy/echo/?x=1");
}

#[tokio::test]
async fn a_role_the_route_does_not_admit_gets_403_and_a_promotion_counts_at_once() {
    let (app, seen) = proxied_app("ADMIN").await;
    let user = app.signup_ok("bob@example.com").await;
    let cookie = session(&app, "bob@example.com").await;

    assert_error(
        fetch(&app, &cookie, "/proxy/echo/x").await,
        403,
        "/proxy/echo/x",
    )
    .await;
    let page = no_redirects()
        .get(app.url("/proxy/echo/x"))
        .header(header::COOKIE, &cookie)
        .header("sec-fetch-mode", "navigate")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 403, "a person gets the app's Forbidden page");
    assert!(
        page.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(seen.hits.load(Ordering::SeqCst), 0);

    // Made ADMIN from the command line: the same session passes at once
    // (the worker reads the current role), and the upstream is told so.
    sqlx::query("update users set role = 'ADMIN' where id = $1")
        .bind(user["id"].as_i64().unwrap())
        .execute(&app.db.pool().await)
        .await
        .unwrap();
    let response = fetch(&app, &cookie, "/proxy/echo/x").await;
    assert_eq!(response.status(), 200);
    let echoed: Value = response.json().await.unwrap();
    assert_eq!(header_values(&echoed, "x-forwarded-groups"), ["ADMIN"]);
}

#[tokio::test]
async fn logout_and_demotion_close_the_proxy_at_once_on_every_gateway() {
    let mut app = spawn_app().await;
    let (upstream, _) = start_upstream().await;
    let settings = proxied_settings(&app, upstream, "ADMIN");
    let first = app.start_gateway(settings.clone()).await;
    let second = app.start_gateway(settings).await;
    app.set_api(first.clone());
    let (_, cookie) = admin_session(&app, "ada@example.com").await;
    let (carol, carol_cookie) = admin_session(&app, "carol@example.com").await;
    let on = |api: &Api, cookie: &str| api.same_origin(Method::GET, "/proxy/echo/x", cookie).send();
    // Both gateways have minted (and keep) an assertion for each.
    for api in [&first, &second] {
        assert_eq!(on(api, &cookie).await.unwrap().status(), 200);
        assert_eq!(on(api, &carol_cookie).await.unwrap().status(), 200);
    }

    // Ada logs out on the first gateway; a copy of her cookie is dead on
    // both, at once.
    log_out(&first, &cookie).await;
    for api in [&first, &second] {
        let response = on(api, &cookie).await.unwrap();
        assert_error(response, 401, "/proxy/echo/x").await;
    }

    // Carol is made a USER by another ADMIN (which ends her sessions): shut
    // out on both, at once.
    demote(&app, carol).await;
    for api in [&first, &second] {
        let response = on(api, &carol_cookie).await.unwrap();
        assert_error(response, 401, "/proxy/echo/x").await;
    }
}

#[tokio::test]
async fn the_nats_servers_own_monitoring_page_is_an_admin_only_upstream() {
    // The route `cargo xtask up` configures, to a real nats-server's
    // monitoring endpoint.
    let mut app = spawn_app().await;
    let monitor = app.nats.monitor_url().expect("the monitor's address");
    let mut settings = app.gateway_settings();
    let doc = format!("[proxy.routes.nats]\nupstream = \"{monitor}\"\nroles = \"ADMIN\"\n");
    settings.proxy = proxy_settings(&doc);
    let api = app.start_gateway(settings).await;
    app.set_api(api);
    let (_, cookie) = admin_session(&app, "ada@example.com").await;
    let index = fetch(&app, &cookie, "/proxy/nats/").await;
    assert_eq!(index.status(), 200);
    assert!(index.text().await.unwrap().contains("href=./varz"));
    let varz: Value = fetch(&app, &cookie, "/proxy/nats/varz")
        .await
        .json()
        .await
        .unwrap();
    let direct: Value = reqwest::get(format!("{monitor}/varz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(varz["server_id"], direct["server_id"]);
    let bob = user_session(&app, "bob@example.com").await;
    assert_error(
        fetch(&app, &bob, "/proxy/nats/connz").await,
        403,
        "/proxy/nats/connz",
    )
    .await;
}

#[tokio::test]
async fn the_session_lists_the_tools_the_user_may_open() {
    let (app, _) = proxied_app("ADMIN").await;
    let (_, admin) = admin_session(&app, "ada@example.com").await;
    let user = user_session(&app, "bob@example.com").await;
    let tools = |cookie: String| {
        let app = &app;
        async move {
            let body: Value = fetch(app, &cookie, "/api/session")
                .await
                .json()
                .await
                .unwrap();
            body["tools"].clone()
        }
    };
    // `down` admits both roles; `echo` only ADMINs.
    assert_eq!(
        tools(admin).await,
        json!([{"name": "echo", "href": "/proxy/echo/"}, {"name": "down", "href": "/proxy/down/"}])
    );
    assert_eq!(
        tools(user).await,
        json!([{"name": "down", "href": "/proxy/down/"}])
    );
}
