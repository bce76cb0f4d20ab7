//! The authenticating reverse proxy, behind a gateway of a real stack,
//! against an upstream these tests start on a real socket ([`echo`]: it
//! echoes what it received, streams, stalls, redirects and speaks
//! WebSocket). What the proxy guarantees is tested the way an attacker would
//! try it, with raw requests ([`raw`]) written byte for byte where a client
//! library would normalize the path or a header name.
//!
//! * `identity`: what the upstream learns of the user, and from whom.
//! * `access`: who may open a route, and how soon a logout or a new role
//!   counts.
//! * `cookies`: the session cookie stays with the gateway, a route's cookies
//!   with the route, and cross-site requests never carry it.
//! * `routing`: paths that would leave a route, JSONP callbacks, and the
//!   headers every proxied reply carries.
//! * `streaming`: bodies both ways, upstreams that are down or slow, and
//!   shutdown.
//! * `verified_email`: routes that require a verified address refuse
//!   others before the upstream hears of them; others pass without one.
//! * `websocket`: tunnels, for this origin and a live session only.

mod access;
mod cookies;
pub(crate) mod echo;
mod identity;
mod raw;
mod routing;
mod streaming;
mod verified_email;
mod websocket;

use std::{net::SocketAddr, sync::Arc};

use axum::http::header;
use reqwest::Method;
use serde_json::{Value, json};
use testkit::{Api, PASSWORD};

use crate::helpers::{COOKIE, TestApp, proxy_settings, spawn_app};
use echo::{Upstream, start_upstream};

/// A fresh app whose gateway has a route `echo` to a fresh echo upstream
/// for `roles`, and another, `down`, to a port nobody listens on; the
/// upstream's record of what reached it.
pub(crate) async fn proxied_app(roles: &str) -> (TestApp, Arc<Upstream>) {
    let mut app = spawn_app().await;
    let (upstream, seen) = start_upstream().await;
    let settings = proxied_settings(&app, upstream, roles);
    let api = app.start_gateway(settings).await;
    app.set_api(api);
    (app, seen)
}

/// The settings of [`proxied_app`]'s gateway, for a test that starts it
/// (or several) itself.
pub(crate) fn proxied_settings(
    app: &TestApp,
    upstream: SocketAddr,
    roles: &str,
) -> gateway::Settings {
    let closed = testkit::free_port();
    let mut settings = app.gateway_settings();
    let doc = format!(
        "[[proxy.routes]]\nname = \"echo\"\nupstream = \"http://{upstream}\"\nroles = \"{roles}\"\n\
         timeout_ms = 500\n\
         [[proxy.routes]]\nname = \"down\"\nupstream = \"http://127.0.0.1:{closed}\"\nroles = \"USER,ADMIN\"\n"
    );
    settings.proxy = proxy_settings(&doc);
    settings
}

/// Logs the browser session of `cookie` out (204).
pub(crate) async fn log_out(api: &Api, cookie: &str) {
    let logout = api
        .same_origin(Method::POST, "/api/session/logout", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
}

/// A browser session of `email` (signed up, or an ADMIN made here), whose
/// address is verified first (as routes require by default): the `Cookie`
/// header value.
pub(crate) async fn session(app: &TestApp, email: &str) -> String {
    let response = app.session_login(email, PASSWORD).await;
    assert_eq!(response.status(), 200, "session login of {email}");
    let cookie = cookie_of(&response);
    let body: Value = response.json().await.unwrap();
    verify_email(app, body["user"]["id"].as_i64().unwrap()).await;
    cookie
}

/// Marks `user_id`'s address verified in the database, as following the
/// mailed link does.
pub(crate) async fn verify_email(app: &TestApp, user_id: i64) {
    let done = sqlx::query("update users set email_verified = true where id = $1")
        .bind(user_id)
        .execute(&app.db.pool().await)
        .await
        .unwrap();
    assert_eq!(done.rows_affected(), 1, "user {user_id}");
}

/// A browser session of `email` as it is, verified or not.
pub(crate) async fn session_as_is(api: &Api, email: &str) -> String {
    let response = api.session_login(email, PASSWORD).await;
    assert_eq!(response.status(), 200, "session login of {email}");
    cookie_of(&response)
}

/// The session cookie a login set: the `Cookie` header value.
pub(crate) fn cookie_of(response: &reqwest::Response) -> String {
    let set = response.headers()[header::SET_COOKIE].to_str().unwrap();
    let pair = set.split(';').next().unwrap();
    assert!(pair.starts_with(&format!("{COOKIE}=")), "{set}");
    pair.to_owned()
}

/// Signs `email` up, verifies the address and opens a browser session: the
/// `Cookie` header value.
pub(crate) async fn user_session(app: &TestApp, email: &str) -> String {
    app.signup_ok(email).await;
    session(app, email).await
}

/// An ADMIN made here, and a browser session of theirs: id and `Cookie`.
pub(crate) async fn admin_session(app: &TestApp, email: &str) -> (i64, String) {
    let account = app.admin_account(email).await;
    (account.id, session(app, email).await)
}

/// GET `path` with `cookie` as a page's script would (same-origin fetch).
pub(crate) async fn fetch(app: &TestApp, cookie: &str, path: &str) -> reqwest::Response {
    app.same_origin(Method::GET, path, cookie)
        .header("sec-fetch-mode", "cors")
        .send()
        .await
        .unwrap()
}

/// Every value of header `name` in the echo's record of a request.
pub(crate) fn header_values(echoed: &Value, name: &str) -> Vec<String> {
    echoed["headers"][name]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

/// The public origin the gateways of these tests are reached at.
pub(crate) const PUBLIC_HOST: &str = "tools.example";

/// A route `name` to `upstream` for both roles, plus `extra` settings.
pub(crate) fn route(name: &str, upstream: &str, extra: &str) -> String {
    format!(
        "[[proxy.routes]]\nname = \"{name}\"\nupstream = \"{upstream}\"\n\
         roles = \"USER,ADMIN\"\n{extra}\n"
    )
}

/// A gateway of `app`'s stack serving `routes` (`[[proxy.routes]]` tables),
/// reached at `public_origin` (empty: its own address); it becomes `app`'s
/// API.
pub(crate) async fn gateway(app: &mut TestApp, routes: &str, public_origin: &str) {
    let mut settings = app.gateway_settings();
    settings.session.public_origin = public_origin.to_owned();
    settings.proxy = proxy_settings(routes);
    let api = app.start_gateway(settings).await;
    app.set_api(api);
}

/// The upstream's record of a request (the echo's JSON).
pub(crate) async fn echo_of(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200, "{:?}", response.headers());
    response.json().await.unwrap()
}

/// `id` made a USER by another ADMIN (`boss@example.com`), which ends
/// their sessions.
pub(crate) async fn demote(app: &TestApp, id: i64) {
    let boss = app.admin_account("boss@example.com").await;
    app.call(
        Method::PATCH,
        &format!("/api/users/{id}"),
        &boss,
        Some(&json!({"role": "USER"})),
    )
    .ok()
    .await;
}
