//! The authenticating reverse proxy, against an upstream this test starts on
//! a real socket (it echoes what it received, streams, stalls, redirects
//! and speaks WebSocket), behind a gateway of a real stack.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{Request, State, WebSocketUpgrade, ws::Message},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{any, get},
};
use futures::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{Value, json};
use testkit::{Api, PASSWORD, assert_error};
use tokio::sync::Notify;

use crate::helpers::{TestApp, spawn_app};

pub(crate) const COOKIE: &str = "__Host-natsauth";

/// What the upstream saw and can be told.
#[derive(Debug, Default)]
pub(crate) struct Upstream {
    /// Requests that reached it.
    pub(crate) hits: AtomicUsize,
    /// Released by the test: the event stream's second event.
    release: Notify,
    /// The headers of the last WebSocket handshake.
    pub(crate) ws_headers: std::sync::Mutex<Option<HeaderMap>>,
}

/// The echo upstream on a free port; its address.
pub(crate) async fn start_upstream() -> (SocketAddr, Arc<Upstream>) {
    let seen = Arc::new(Upstream::default());
    let app = Router::new()
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                "too late"
            }),
        )
        .route("/events", get(events))
        .route(
            "/moved",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/after?x=1")]) }),
        )
        .route(
            "/teapot",
            get(|| async { (StatusCode::IM_A_TEAPOT, "short and stout") }),
        )
        .route("/big", get(|| async { "x".repeat(64 * 1024) }))
        .route("/ws", get(websocket))
        .route("/switch", any(switch))
        .route("/set-cookie", get(set_cookie))
        .fallback(any(echo))
        .with_state(Arc::clone(&seen));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, seen)
}

/// `{method, uri, headers, bodyBytes}` of the request, the body counted as
/// it streams in.
async fn echo(State(seen): State<Arc<Upstream>>, request: Request) -> Response {
    seen.hits.fetch_add(1, Ordering::SeqCst);
    let (parts, body) = request.into_parts();
    let mut bytes = 0usize;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        bytes += chunk.unwrap().len();
    }
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in &parts.headers {
        headers
            .entry(name.as_str().to_owned())
            .or_default()
            .push(value.to_str().unwrap_or("<binary>").to_owned());
    }
    axum::Json(json!({
        "method": parts.method.as_str(),
        "uri": parts.uri.to_string(),
        "headers": headers,
        "bodyBytes": bytes,
    }))
    .into_response()
}

/// Server-sent events: one now, one when the test says, then the end.
async fn events(State(seen): State<Arc<Upstream>>) -> Response {
    let stream = async_stream(seen);
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap()
}

fn async_stream(seen: Arc<Upstream>) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    futures::stream::unfold(0, move |step| {
        let seen = Arc::clone(&seen);
        async move {
            match step {
                0 => Some((Ok(Bytes::from_static(b"data: first\n\n")), 1)),
                1 => {
                    seen.release.notified().await;
                    Some((Ok(Bytes::from_static(b"data: last\n\n")), 2))
                }
                _ => None,
            }
        }
    })
}

/// A WebSocket that echoes each text message back, upper-cased.
async fn websocket(
    State(seen): State<Arc<Upstream>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    *seen.ws_headers.lock().unwrap() = Some(headers);
    upgrade.on_upgrade(|mut socket| async move {
        while let Some(Ok(message)) = socket.recv().await {
            if let Message::Text(text) = message {
                let reply = text.to_uppercase();
                if socket.send(Message::Text(reply.into())).await.is_err() {
                    break;
                }
            }
        }
    })
}

/// Switches to whatever protocol the request's `Upgrade` names, as a
/// server that speaks h2c (or anything else) would, then echoes bytes.
async fn switch(mut request: Request) -> Response {
    let Some(protocol) = request.headers().get(header::UPGRADE).cloned() else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    if let Some(upgrade) = request
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>()
    {
        tokio::spawn(async move {
            if let Ok(upgraded) = upgrade.await {
                let (mut read, mut write) =
                    tokio::io::split(hyper_util::rt::TokioIo::new(upgraded));
                let _ = tokio::io::copy(&mut read, &mut write).await;
            }
        });
    }
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, protocol)
        .body(Body::empty())
        .unwrap()
}

/// A `Set-Cookie` for each `x-set-cookie` the request carries, as written.
async fn set_cookie(headers: HeaderMap) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    for value in headers.get_all("x-set-cookie") {
        response
            .headers_mut()
            .append(header::SET_COOKIE, value.clone());
    }
    response
}

/// A gateway of `app`'s stack with a route `echo` to `upstream` for
/// `roles`, and another, `down`, to a port nobody listens on; it becomes
/// `app`'s API.
async fn proxy_gateway(app: &mut TestApp, upstream: SocketAddr, roles: &str) {
    let settings = proxied_settings(app, upstream, roles);
    let api = app.start_gateway(settings).await;
    app.set_api(api);
}

fn proxied_settings(app: &TestApp, upstream: SocketAddr, roles: &str) -> gateway::Settings {
    let closed = testkit::free_port();
    let mut settings = app.gateway_settings();
    let doc = format!(
        "[[proxy.routes]]\nname = \"echo\"\nupstream = \"http://{upstream}\"\nroles = \"{roles}\"\n\
         timeout_ms = 500\n\
         [[proxy.routes]]\nname = \"down\"\nupstream = \"http://127.0.0.1:{closed}\"\nroles = \"USER,ADMIN\"\n"
    );
    #[derive(serde::Deserialize)]
    struct Doc {
        proxy: gateway::proxy::ProxySettings,
    }
    let doc: Doc = runtime::settings::load(&[&doc], None, "PROXY_TEST_UNUSED").unwrap();
    settings.proxy = doc.proxy;
    settings
}

/// Logs the browser session of `cookie` out (204).
pub(crate) async fn log_out(api: &Api, cookie: &str) {
    let logout = api
        .http
        .post(api.url("/api/session/logout"))
        .header(header::COOKIE, cookie)
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
}

/// A browser session of `email` (signed up, or an ADMIN made here): the
/// `Cookie` header value.
pub(crate) async fn session(api: &Api, email: &str) -> String {
    let response = api
        .http
        .post(api.url("/api/session"))
        .header("sec-fetch-site", "same-origin")
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "session login of {email}");
    let set = response.headers()[header::SET_COOKIE].to_str().unwrap();
    let pair = set.split(';').next().unwrap();
    assert!(pair.starts_with(&format!("{COOKIE}=")), "{set}");
    pair.to_owned()
}

pub(crate) async fn admin_session(app: &TestApp, email: &str) -> (i64, String) {
    let account = app.admin_account(email).await;
    (account.id, session(app, email).await)
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// GET `path` with `cookie` as a page's script would (same-origin fetch).
pub(crate) async fn fetch(app: &TestApp, cookie: &str, path: &str) -> reqwest::Response {
    app.http
        .get(app.url(path))
        .header(header::COOKIE, cookie)
        .header("sec-fetch-site", "same-origin")
        .header("sec-fetch-mode", "cors")
        .send()
        .await
        .unwrap()
}

pub(crate) fn header_values(echoed: &Value, name: &str) -> Vec<String> {
    echoed["headers"][name]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

/// The assertion's claims, verified with the gateway's JWK Set for
/// `audience`.
async fn verify_assertion(app: &TestApp, assertion: &str, audience: &str) -> anyhow::Result<Value> {
    let jwks = app.get_json("/api/auth/jwks").await;
    let kid = jsonwebtoken::decode_header(assertion)?
        .kid
        .unwrap_or_default();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .ok_or_else(|| anyhow::anyhow!("no key {kid}"))?;
    let key = jsonwebtoken::DecodingKey::from_ed_components(jwk["x"].as_str().unwrap())?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&[audience]);
    validation.set_issuer(&["natsauth"]);
    Ok(jsonwebtoken::decode::<Value>(assertion, &key, &validation)?.claims)
}

#[tokio::test]
async fn the_upstream_sees_only_the_gateways_identity_headers_and_a_valid_assertion() {
    let mut app = spawn_app().await;
    let (upstream, _) = start_upstream().await;
    proxy_gateway(&mut app, upstream, "ADMIN").await;
    let (id, cookie) = admin_session(&app, "ada@example.com").await;

    let response = app
        .http
        .get(app.url("/proxy/echo/inspect/it?q=1&r=%2F"))
        .header(
            header::COOKIE,
            format!("echo.theme=dark; {cookie}; lang=en; echo.lang=en"),
        )
        .header("sec-fetch-site", "same-origin")
        .header("x-request-id", "proxy-test-1")
        .header(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )
        // Everything a client might claim, all forged.
        .header("x-forwarded-user", "1")
        .header("x-forwarded-email", "root@example.com")
        .header("x-forwarded-groups", "ADMIN")
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-forwarded-host", "evil.example")
        .header("forwarded", "for=6.6.6.6;host=evil.example")
        .header("x-auth-assertion", "forged")
        .header("x-real-ip", "6.6.6.6")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "proxy-test-1");
    let echoed: Value = response.json().await.unwrap();
    assert_eq!(echoed["method"], "GET");
    // The prefix is stripped; path and query are kept as sent.
    assert_eq!(echoed["uri"], "/inspect/it?q=1&r=%2F");
    let one = |name: &str| {
        let values = header_values(&echoed, name);
        assert_eq!(values.len(), 1, "{name}: {values:?}");
        values[0].clone()
    };
    assert_eq!(one("x-forwarded-user"), id.to_string());
    assert_eq!(one("x-forwarded-email"), "ada@example.com");
    assert_eq!(one("x-forwarded-groups"), "ADMIN");
    assert_eq!(one("x-forwarded-for"), "127.0.0.1");
    assert_eq!(one("x-forwarded-proto"), "http");
    assert_eq!(
        one("x-forwarded-host"),
        app.base.trim_start_matches("http://")
    );
    assert_eq!(one("x-request-id"), "proxy-test-1");
    // The same trace, a new hop.
    let traceparent = one("traceparent");
    assert!(
        traceparent.starts_with("00-0af7651916cd43dd8448eb211c80319c-"),
        "{traceparent}"
    );
    assert!(!traceparent.contains("b7ad6b7169203331"), "{traceparent}");
    // The route's own cookies pass, under their own names; the session
    // cookie and the others never do.
    assert_eq!(one("cookie"), "theme=dark; lang=en");
    for absent in ["authorization", "forwarded", "x-real-ip"] {
        assert!(
            header_values(&echoed, absent).is_empty(),
            "{absent} reached the upstream"
        );
    }
    assert!(
        !echoed.to_string().contains(COOKIE),
        "the session cookie reached the upstream"
    );

    let assertion = one("x-auth-assertion");
    let claims = verify_assertion(&app, &assertion, "proxy:echo")
        .await
        .unwrap();
    assert_eq!(claims["sub"], id.to_string());
    assert_eq!(claims["email"], "ada@example.com");
    assert_eq!(claims["role"], "ADMIN");
    let life = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert!((1..=60).contains(&life), "lives {life} s");
    // Another upstream's audience, or the API's, is refused.
    assert!(
        verify_assertion(&app, &assertion, "proxy:other")
            .await
            .is_err()
    );
    assert!(
        verify_assertion(&app, &assertion, "natsauth-api")
            .await
            .is_err()
    );

    // With a bearer token instead: the token does not travel on either.
    let token = app.access_token("ada@example.com").await;
    let echoed: Value = app
        .http
        .post(app.url("/proxy/echo/by-token"))
        .bearer_auth(&token)
        .body("{}")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(echoed["method"], "POST");
    assert!(header_values(&echoed, "authorization").is_empty());
    assert!(!echoed.to_string().contains(&token));
    assert_eq!(header_values(&echoed, "x-forwarded-user"), [id.to_string()]);
}

#[tokio::test]
async fn anonymous_navigation_goes_to_login_and_anything_else_gets_401() {
    let mut app = spawn_app().await;
    let (upstream, seen) = start_upstream().await;
    proxy_gateway(&mut app, upstream, "ADMIN").await;
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
    let mut app = spawn_app().await;
    let (upstream, seen) = start_upstream().await;
    proxy_gateway(&mut app, upstream, "ADMIN").await;
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
    let on = |api: &Api, cookie: &str| {
        api.http
            .get(api.url("/proxy/echo/x"))
            .header(header::COOKIE, cookie.to_owned())
            .header("sec-fetch-site", "same-origin")
            .send()
    };
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
    let boss = app.admin_account("boss@example.com").await;
    app.call(
        Method::PATCH,
        &format!("/api/users/{carol}"),
        &boss,
        Some(&json!({"role": "USER"})),
    )
    .ok()
    .await;
    for api in [&first, &second] {
        let response = on(api, &carol_cookie).await.unwrap();
        assert_error(response, 401, "/proxy/echo/x").await;
    }
}

#[tokio::test]
async fn upstream_down_is_502_and_a_slow_one_504_in_the_contracts_shape() {
    let mut app = spawn_app().await;
    let (upstream, _) = start_upstream().await;
    proxy_gateway(&mut app, upstream, "USER,ADMIN").await;
    app.signup_ok("ada@example.com").await;
    let cookie = session(&app, "ada@example.com").await;

    let down = fetch(&app, &cookie, "/proxy/down/anything").await;
    let body = assert_error(down, 502, "/proxy/down/anything").await;
    assert_eq!(body["message"], "upstream unavailable");
    let slow = fetch(&app, &cookie, "/proxy/echo/slow").await;
    let body = assert_error(slow, 504, "/proxy/echo/slow").await;
    assert_eq!(body["message"], "upstream timed out");

    // The upstream's own errors and redirects are its own: no envelope, and
    // a redirect into the upstream stays under the prefix.
    let teapot = fetch(&app, &cookie, "/proxy/echo/teapot").await;
    assert_eq!(teapot.status(), 418);
    assert_eq!(teapot.text().await.unwrap(), "short and stout");
    let moved = no_redirects()
        .get(app.url("/proxy/echo/moved"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), 302);
    assert_eq!(moved.headers()[header::LOCATION], "/proxy/echo/after?x=1");

    // Counted by route and status.
    let metrics = app.get_text("/metrics").await;
    for line in [
        r#"proxy_requests_total{route="down",status="502"} 1"#,
        r#"proxy_requests_total{route="echo",status="504"} 1"#,
        r#"proxy_requests_total{route="echo",status="418"} 1"#,
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
}

#[tokio::test]
async fn bodies_stream_both_ways_without_the_apis_limits() {
    let mut app = spawn_app().await;
    let (upstream, seen) = start_upstream().await;
    proxy_gateway(&mut app, upstream, "USER").await;
    app.signup_ok("ada@example.com").await;
    let cookie = session(&app, "ada@example.com").await;

    // Three times the API's body limit, sent in chunks as it is produced.
    let size = 3 * 1024 * 1024;
    let chunks =
        futures::stream::iter((0..48).map(move |_| Ok::<_, std::io::Error>(vec![b'a'; size / 48])));
    let response = app
        .http
        .put(app.url("/proxy/echo/upload"))
        .header(header::COOKIE, &cookie)
        .header("sec-fetch-site", "same-origin")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let echoed: Value = response.json().await.unwrap();
    assert_eq!(echoed["bodyBytes"], size);

    // Not compressed by the gateway, however large.
    let big = app
        .http
        .get(app.url("/proxy/echo/big"))
        .header(header::COOKIE, &cookie)
        .header(header::ACCEPT_ENCODING, "gzip, br")
        .send()
        .await
        .unwrap();
    assert!(big.headers().get(header::CONTENT_ENCODING).is_none());
    assert_eq!(big.bytes().await.unwrap().len(), 64 * 1024);

    // The first event arrives while the upstream is still producing: the
    // second exists only after the test has read the first.
    let mut events = app
        .http
        .get(app.url("/proxy/echo/events"))
        .header(header::COOKIE, &cookie)
        .header(header::ACCEPT, "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    let first = tokio::time::timeout(Duration::from_secs(10), events.chunk())
        .await
        .expect("the first event arrives before the stream ends")
        .unwrap()
        .unwrap();
    assert_eq!(&first[..], b"data: first\n\n");
    seen.release.notify_one();
    let mut rest = Vec::new();
    while let Some(chunk) = events.chunk().await.unwrap() {
        rest.extend_from_slice(&chunk);
    }
    assert_eq!(rest, b"data: last\n\n");
}

#[tokio::test]
async fn cookie_requests_to_the_proxy_keep_the_sessions_csrf_rules() {
    let mut app = spawn_app().await;
    let (upstream, seen) = start_upstream().await;
    proxy_gateway(&mut app, upstream, "USER").await;
    app.signup_ok("ada@example.com").await;
    let cookie = session(&app, "ada@example.com").await;
    let cross = app
        .http
        .post(app.url("/proxy/echo/change"))
        .header(header::COOKIE, &cookie)
        .header("sec-fetch-site", "cross-site")
        .header(header::ORIGIN, "https://evil.example")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_error(cross, 403, "/proxy/echo/change").await;
    assert_eq!(seen.hits.load(Ordering::SeqCst), 0);
    let same = app
        .http
        .post(app.url("/proxy/echo/change"))
        .header(header::COOKIE, &cookie)
        .header("sec-fetch-site", "same-origin")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), 200);
}

/// A WebSocket handshake request through the gateway.
fn ws_request(
    app: &TestApp,
    cookie: &str,
    origin: &str,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!("{}/proxy/echo/ws", app.base.replacen("http://", "ws://", 1));
    let mut request = url.into_client_request().unwrap();
    let headers = request.headers_mut();
    headers.insert(header::COOKIE, cookie.parse().unwrap());
    headers.insert(header::ORIGIN, origin.parse().unwrap());
    request
}

#[tokio::test]
async fn a_websocket_is_tunnelled_for_this_origin_only() {
    let mut app = spawn_app().await;
    let (upstream, seen) = start_upstream().await;
    proxy_gateway(&mut app, upstream, "USER").await;
    let user = app.signup_ok("ada@example.com").await;
    let cookie = session(&app, "ada@example.com").await;

    let (mut socket, response) =
        tokio_tungstenite::connect_async(ws_request(&app, &cookie, &app.base))
            .await
            .expect("the WebSocket opens through the proxy");
    assert_eq!(response.status(), 101);
    for word in ["hello", "again"] {
        socket
            .send(tokio_tungstenite::tungstenite::Message::Text(word.into()))
            .await
            .unwrap();
        let reply = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a reply")
            .unwrap()
            .unwrap();
        assert_eq!(reply.into_text().unwrap().as_str(), word.to_uppercase());
    }
    socket.close(None).await.unwrap();
    let handshake = seen.ws_headers.lock().unwrap().clone().unwrap();
    assert_eq!(handshake["x-forwarded-user"], user["id"].to_string());
    assert!(handshake.get(header::COOKIE).is_none());

    // The same cookie from another site's page: refused, never a 101.
    let refused =
        tokio_tungstenite::connect_async(ws_request(&app, &cookie, "https://evil.example"))
            .await
            .expect_err("a cross-origin upgrade is refused");
    match refused {
        tokio_tungstenite::tungstenite::Error::Http(response) => {
            assert_eq!(response.status(), 403);
        }
        other => panic!("expected an HTTP refusal, got {other}"),
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
    #[derive(serde::Deserialize)]
    struct Doc {
        proxy: gateway::proxy::ProxySettings,
    }
    settings.proxy = runtime::settings::load::<Doc>(&[&doc], None, "PROXY_TEST_UNUSED")
        .unwrap()
        .proxy;
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
    app.signup_ok("bob@example.com").await;
    let bob = session(&app, "bob@example.com").await;
    assert_error(
        fetch(&app, &bob, "/proxy/nats/connz").await,
        403,
        "/proxy/nats/connz",
    )
    .await;
}

#[tokio::test]
async fn the_session_lists_the_tools_the_user_may_open() {
    let mut app = spawn_app().await;
    let (upstream, _) = start_upstream().await;
    proxy_gateway(&mut app, upstream, "ADMIN").await;
    let (_, admin) = admin_session(&app, "ada@example.com").await;
    app.signup_ok("bob@example.com").await;
    let user = session(&app, "bob@example.com").await;
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

#[tokio::test]
async fn the_auth_worker_mints_an_assertion_only_for_a_live_session_and_an_admitted_role() {
    use shared::Role;
    let app = spawn_app().await;
    let user = app.signup_ok("bob@example.com").await;
    let id = user["id"].as_i64().unwrap();
    app.login_ok("bob@example.com", PASSWORD).await;
    let subject = "auth.proxy_assertion";
    // Straight onto NATS as the gateway's user: the worker still decides.
    let (status, body) = app
        .nats_request(
            subject,
            Some((id, Role::User)),
            &json!({"audience": "proxy:echo", "roles": ["ADMIN"]}),
        )
        .await;
    assert_eq!(status, Some(403), "{body}");
    // A token's word is not enough: the USER claiming ADMIN is read as USER.
    let (status, _) = app
        .nats_request(
            subject,
            Some((id, Role::Admin)),
            &json!({"audience": "proxy:echo", "roles": ["ADMIN"]}),
        )
        .await;
    assert_eq!(status, Some(403));
    let (status, _) = app
        .nats_request(
            subject,
            None,
            &json!({"audience": "proxy:echo", "roles": ["USER"]}),
        )
        .await;
    assert_eq!(status, Some(401), "no caller, no assertion");
    for bad in [
        json!({"audience": "natsauth-api", "roles": ["USER"]}),
        json!({"audience": "proxy:Echo Tool", "roles": ["USER"]}),
        json!({"audience": "proxy:echo", "roles": []}),
    ] {
        let (status, _) = app
            .nats_request(subject, Some((id, Role::User)), &bad)
            .await;
        assert_eq!(status, Some(400), "{bad}");
    }
    let (status, body) = app
        .nats_request(
            subject,
            Some((id, Role::User)),
            &json!({"audience": "proxy:echo", "roles": ["USER", "ADMIN"]}),
        )
        .await;
    assert_eq!(status, None, "{body}");
    assert_eq!(body["user"]["email"], "bob@example.com");
    assert_eq!(body["expiresIn"], 60);
    let claims = verify_assertion(&app, body["assertion"].as_str().unwrap(), "proxy:echo")
        .await
        .unwrap();
    assert_eq!(claims["role"], "USER");
}

#[tokio::test]
async fn a_shutdown_ends_proxied_streams_instead_of_waiting_for_them() {
    let app = spawn_app().await;
    let (upstream, _) = start_upstream().await;
    let settings = proxied_settings(&app, upstream, "USER");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = Api::new(format!("http://{}", listener.local_addr().unwrap()));
    let stop = Arc::new(Notify::new());
    let signal = Arc::clone(&stop);
    let gateway = tokio::spawn(gateway::run(settings, listener, async move {
        signal.notified().await;
    }));
    app.signup_ok("ada@example.com").await;
    let cookie = session(&api, "ada@example.com").await;
    let mut events = api
        .http
        .get(api.url("/proxy/echo/events"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    let first = events.chunk().await.unwrap().unwrap();
    assert_eq!(&first[..], b"data: first\n\n");
    // The upstream would never send the second event (nobody releases it);
    // the gateway is told to stop.
    stop.notify_one();
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(_)) = events.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the proxied stream ends at shutdown");
    let stopped = tokio::time::timeout(Duration::from_secs(10), gateway).await;
    assert!(
        matches!(stopped, Ok(Ok(Ok(())))),
        "the gateway stops: {stopped:?}"
    );
}
