//! What the proxy guarantees, tested the way an attacker would try it: on a
//! real stack, against the echo upstream of [`crate::proxy`], with raw
//! requests written byte for byte where a client library would normalize
//! the path or a header name.

use std::{sync::atomic::Ordering, time::Duration};

use axum::http::header;
use futures::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::{self, Message};

use crate::{
    helpers::{TestApp, spawn_app},
    proxy::{COOKIE, admin_session, header_values, log_out, session, start_upstream},
};

/// The public origin the gateways of these tests are reached at.
const PUBLIC_HOST: &str = "tools.example";

/// A route `name` to `upstream` for both roles, plus `extra` settings.
fn route(name: &str, upstream: &str, extra: &str) -> String {
    format!(
        "[[proxy.routes]]\nname = \"{name}\"\nupstream = \"{upstream}\"\n\
         roles = \"USER,ADMIN\"\n{extra}\n"
    )
}

/// A gateway of `app`'s stack serving `routes` (`[[proxy.routes]]` tables),
/// reached at `public_origin` (empty: its own address); it becomes `app`'s
/// API.
async fn gateway(app: &mut TestApp, routes: &str, public_origin: &str) {
    #[derive(serde::Deserialize)]
    struct Doc {
        proxy: gateway::proxy::ProxySettings,
    }
    let mut settings = app.gateway_settings();
    settings.session.public_origin = public_origin.to_owned();
    settings.proxy = runtime::settings::load::<Doc>(&[routes], None, "PROXY_HYGIENE_TEST_UNUSED")
        .unwrap()
        .proxy;
    let api = app.start_gateway(settings).await;
    app.set_api(api);
}

/// A reply as the gateway wrote it on the socket.
#[derive(Debug)]
struct RawReply {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl RawReply {
    fn headers(&self, name: &str) -> Vec<String> {
        self.head
            .lines()
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("{e}: {} {}", self.head, String::from_utf8_lossy(&self.body))
        })
    }

    /// Asserts the contract's error shape with `status` for `path`.
    fn assert_error(&self, status: u16, path: &str) {
        assert_eq!(self.status, status, "{}", self.head);
        let body = self.json();
        assert_eq!(body["statusCode"], status, "{body}");
        assert_eq!(body["path"], path, "{body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(
            body["requestId"].as_str().unwrap(),
            self.headers("x-request-id")[0],
            "{body}"
        );
    }
}

/// `request_line` (`METHOD target`) and `headers`, written exactly as given
/// on a new connection to `app` (with its `Host` unless one is given, and
/// `Connection: close` unless a `Connection` is given); the reply, read to
/// its end (only its head for a 101).
async fn raw(app: &TestApp, request_line: &str, headers: &[(&str, &str)]) -> RawReply {
    let authority = app.base.trim_start_matches("http://").to_owned();
    let mut text = format!("{request_line} HTTP/1.1\r\n");
    let has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    if !has("host") {
        text.push_str(&format!("Host: {authority}\r\n"));
    }
    if !has("connection") {
        text.push_str("Connection: close\r\n");
    }
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(&authority).await.unwrap();
        stream.write_all(text.as_bytes()).await.unwrap();
        let mut received = Vec::new();
        let mut buffer = [0u8; 8192];
        let end_of_head = loop {
            let n = stream.read(&mut buffer).await.unwrap();
            assert!(n > 0, "connection closed before a reply head");
            received.extend_from_slice(&buffer[..n]);
            if let Some(at) = received.windows(4).position(|w| w == b"\r\n\r\n") {
                break at;
            }
        };
        let head = String::from_utf8_lossy(&received[..end_of_head]).into_owned();
        let mut reply = RawReply {
            status: head.split(' ').nth(1).unwrap().parse().unwrap(),
            head,
            body: received[end_of_head + 4..].to_vec(),
        };
        let length = reply
            .headers("content-length")
            .first()
            .map(|l| l.parse().unwrap());
        let chunked = !reply.headers("transfer-encoding").is_empty();
        // Read to the body's end (the connection may stay open).
        while reply.status != 101
            && match length {
                Some(length) => reply.body.len() < length,
                None if chunked => !reply.body.ends_with(b"0\r\n\r\n"),
                None => true,
            }
        {
            let n = stream.read(&mut buffer).await.unwrap();
            if n == 0 {
                break;
            }
            reply.body.extend_from_slice(&buffer[..n]);
        }
        if chunked {
            reply.body = dechunk(&reply.body);
        }
        reply
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("a reply within 10 s")
}

/// A chunked body's content.
fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = body.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&body[..line_end]).unwrap();
        let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        let start = line_end + 2;
        out.extend_from_slice(&body[start..start + size]);
        body = &body[start + size + 2..];
    }
    out
}

/// The upstream's record of a request (the echo's JSON).
async fn echo_of(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200, "{:?}", response.headers());
    response.json().await.unwrap()
}

#[tokio::test]
async fn identity_headers_reach_the_upstream_only_from_the_gateway_however_spelled() {
    let mut app = spawn_app().await;
    let (upstream, seen) = start_upstream().await;
    let routes = route("echo", &format!("http://{upstream}"), "");
    gateway(&mut app, &routes, &format!("http://{PUBLIC_HOST}")).await;
    let (id, cookie) = admin_session(&app, "ada@example.com").await;

    let forged = [
        ("X_Forwarded_User", "1"),
        ("x-forwarded_email", "root@example.com"),
        ("X-Forwarded-Groups", "ADMIN"),
        ("X-FORWARDED-PREFERRED-USERNAME", "root"),
        ("x_forwarded_preferred_username", "root"),
        ("X_Auth_Assertion", "forged"),
        ("X-Auth-Request-User", "root"),
        ("X_Auth_Request_Email", "root@example.com"),
        ("X-Remote-User", "root"),
        ("X_Remote_Email", "root@example.com"),
        ("x-remote-groups", "ADMIN"),
        ("Remote-User", "root"),
        ("Remote_Email", "root@example.com"),
        ("REMOTE-GROUPS", "ADMIN"),
        ("X-WEBAUTH-USER", "admin"),
        ("X_WEBAUTH_ROLE", "Admin"),
        ("X-Original-URL", "/admin"),
        ("X_Rewrite_URL", "/admin"),
        ("Forwarded", "for=6.6.6.6;host=evil.example"),
        ("X-Real-IP", "6.6.6.6"),
        ("X_Real_IP", "6.6.6.6"),
        ("True-Client-IP", "6.6.6.6"),
        ("X-Client-IP", "6.6.6.6"),
        ("CF-Connecting-IP", "6.6.6.6"),
        ("Cf_Connecting_Ip", "6.6.6.6"),
        ("X_Forwarded_For", "6.6.6.6"),
        ("X-Forwarded-Host", "evil.example"),
        ("X_Forwarded_Host", "evil.example"),
        ("X-Forwarded-Proto", "https"),
        ("X_Request_Id", "forged"),
        ("X_Custom", "1"),
    ];
    let mut headers = vec![
        ("Host", PUBLIC_HOST),
        ("Cookie", cookie.as_str()),
        ("Sec-Fetch-Site", "same-origin"),
    ];
    headers.extend(forged);
    let reply = raw(&app, "GET /proxy/echo/who", &headers).await;
    assert_eq!(reply.status, 200, "{}", reply.head);
    let echoed = reply.json();

    // Every header the upstream got that reads (case and `_` aside) as an
    // identity or a client address is one the gateway set, once.
    let gateway_sets = [
        ("x-forwarded-user", id.to_string()),
        ("x-forwarded-email", "ada@example.com".to_owned()),
        ("x-forwarded-groups", "ADMIN".to_owned()),
        ("x-forwarded-for", "127.0.0.1".to_owned()),
        ("x-forwarded-proto", "http".to_owned()),
        ("x-forwarded-host", PUBLIC_HOST.to_owned()),
    ];
    for (name, values) in echoed["headers"].as_object().unwrap() {
        // As nginx does by default: a CGI-style server would read it as
        // the same name with `-`.
        assert!(!name.contains('_'), "{name}: {values} reached the upstream");
        let read_as = name.to_ascii_lowercase().replace('_', "-");
        if !reads_as_identity(&read_as) {
            continue;
        }
        assert!(
            name == "x-auth-assertion" || gateway_sets.iter().any(|(n, _)| n == name),
            "the client's {name}: {values} reached the upstream"
        );
        assert_eq!(values.as_array().unwrap().len(), 1, "{name}: {values}");
    }
    for (name, value) in gateway_sets {
        assert_eq!(header_values(&echoed, name), [value], "{name}");
    }
    assert_eq!(header_values(&echoed, "x-auth-assertion").len(), 1);
    let sealed = cookie.split_once('=').unwrap().1;
    assert!(
        !echoed.to_string().contains(sealed) && !echoed.to_string().contains(COOKIE),
        "the session cookie reached the upstream"
    );

    // With a public origin, a request for another host is refused there.
    let before = seen.hits.load(Ordering::SeqCst);
    for host in ["127.0.0.1", "tools.example.evil", "evil.example"] {
        let reply = raw(
            &app,
            "GET /proxy/echo/who",
            &[
                ("Host", host),
                ("Cookie", cookie.as_str()),
                ("Sec-Fetch-Site", "same-origin"),
            ],
        )
        .await;
        reply.assert_error(400, "/proxy/echo/who");
    }
    assert_eq!(seen.hits.load(Ordering::SeqCst), before);
}

/// Whether a header name (lower case, `-` for `_`) is one an upstream may
/// read as who the user is or where the request came from.
fn reads_as_identity(name: &str) -> bool {
    const NAMES: &[&str] = &[
        "authorization",
        "forwarded",
        "x-auth-assertion",
        "x-remote-user",
        "x-remote-email",
        "x-remote-groups",
        "remote-user",
        "remote-email",
        "remote-groups",
        "x-original-url",
        "x-rewrite-url",
        "x-real-ip",
        "true-client-ip",
        "x-client-ip",
        "cf-connecting-ip",
    ];
    const FAMILIES: &[&str] = &["x-forwarded-", "x-auth-request-", "x-webauth-"];
    NAMES.contains(&name) || FAMILIES.iter().any(|f| name.starts_with(f))
}

#[tokio::test]
async fn cookies_stay_with_their_route_and_the_session_cookie_with_the_gateway() {
    let mut app = spawn_app().await;
    let (upstream, _) = start_upstream().await;
    let routes = route("echo", &format!("http://{upstream}"), "")
        + &route("down", &format!("http://{upstream}"), "");
    gateway(&mut app, &routes, "").await;
    app.signup_ok("ada@example.com").await;
    let cookie = session(&app, "ada@example.com").await;

    let upstream_sets = [
        "__Host-natsauth=evil1; Path=/; Secure; HttpOnly",
        "__HOST-NATSAUTH=evil2; Path=/; Secure",
        "natsauth=evil3; Path=/",
        "__Secure-natsauth=evil4; Secure",
        "NatsAuth=evil5",
        "=__Host-natsauth=evil6",
        "sid=abc; Path=/; Domain=127.0.0.1; HttpOnly; SameSite=Lax",
        "deep=1; Path=/app; domain=.example.com",
        "wide=2; Path=/proxy/",
        "other=3; Path=/proxy/down/",
        "up=4; Path=/proxy/echo/../../",
        "plain=5",
    ];
    let mut request = app
        .http
        .get(app.url("/proxy/echo/set-cookie"))
        .header(header::COOKIE, &cookie)
        .header("sec-fetch-site", "same-origin");
    for value in upstream_sets {
        request = request.header("x-set-cookie", value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 204);
    let set: Vec<String> = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    for value in &set {
        assert!(!value.contains("evil"), "the browser was told {value}");
        let mut parts = value.split(';').map(str::trim);
        let name = parts.next().unwrap().split('=').next().unwrap();
        assert!(name.starts_with("echo."), "{value}");
        for attribute in parts {
            let (key, path) = attribute.split_once('=').unwrap_or((attribute, ""));
            assert!(!key.eq_ignore_ascii_case("domain"), "{value}");
            if key.eq_ignore_ascii_case("path") {
                assert!(path.starts_with("/proxy/echo/"), "{value}");
                assert!(!path.contains(".."), "{value}");
            }
        }
    }
    let named = |name: &str| {
        set.iter()
            .find(|v| v.starts_with(&format!("echo.{name}=")))
            .unwrap_or_else(|| panic!("no echo.{name} in {set:?}"))
            .clone()
    };
    assert!(named("sid").contains("Path=/proxy/echo/;"), "{set:?}");
    assert!(named("sid").contains("HttpOnly"), "{set:?}");
    assert!(named("deep").contains("Path=/proxy/echo/app"), "{set:?}");
    assert_eq!(named("plain"), "echo.plain=5");
    assert_eq!(set.len(), 6, "{set:?}");

    // The browser sends everything it holds for the path; the upstream gets
    // its own cookies, under its own names, and nothing else.
    let echoed = echo_of(
        app.http
            .get(app.url("/proxy/echo/x"))
            .header(
                header::COOKIE,
                format!("{cookie}; echo.sid=abc; down.sid=zzz; theme=dark; echo.deep=1; echo.=x"),
            )
            .header("sec-fetch-site", "same-origin")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(header_values(&echoed, "cookie"), ["sid=abc; deep=1"]);
}

#[tokio::test]
async fn paths_that_would_leave_the_route_are_refused_and_never_forwarded() {
    let mut app = spawn_app().await;
    let (upstream, seen) = start_upstream().await;
    let routes = route("echo", &format!("http://{upstream}"), "")
        + &route("based", &format!("http://{upstream}/base/"), "");
    gateway(&mut app, &routes, "").await;
    app.signup_ok("ada@example.com").await;
    let cookie = session(&app, "ada@example.com").await;
    let headers = [
        ("Cookie", cookie.as_str()),
        ("Sec-Fetch-Site", "same-origin"),
    ];

    for path in [
        "/proxy/echo/%2e%2e%2fx",
        "/proxy/echo/%2e%2e/x",
        "/proxy/echo/.%2E/x",
        "/proxy/echo/a/%2e",
        "/proxy/echo/..;/x",
        "/proxy/echo/a/..;jsessionid=1/x",
        "/proxy/echo/%2e%2e;/x",
        "/proxy/echo/a%2fb",
        "/proxy/echo/a%2Fb",
        "/proxy/echo/a%5cb",
        "/proxy/echo/a%5C..%5Cb",
        "/proxy/echo/%252e%252e/x",
        "/proxy/echo/%252e%252e%252fx",
        "/proxy/echo/a%252fb",
        "/proxy/echo/a%255cb",
        "/proxy/echo/%25%32%65%25%32%65/x",
        "/proxy/based/%2e%2e/secret",
        "/proxy/based/..%2f..%2fsecret",
        "/proxy/based/..",
    ] {
        let reply = raw(&app, &format!("GET {path}"), &headers).await;
        reply.assert_error(400, path);
    }
    // A backslash is refused too, by the gateway or by its HTTP parser.
    for path in ["/proxy/echo/a\\b", "/proxy/echo/..\\x"] {
        let reply = raw(&app, &format!("GET {path}"), &headers).await;
        assert_eq!(reply.status, 400, "{path}: {}", reply.head);
    }
    assert_eq!(
        seen.hits.load(Ordering::SeqCst),
        0,
        "the upstream was reached"
    );

    // What passes starts with the route's base path.
    for (path, sent) in [
        ("/proxy/based/a/b?c=%2F", "/base/a/b?c=%2F"),
        ("/proxy/based/", "/base/"),
        ("/proxy/based/a..b/.hidden/%41", "/base/a..b/.hidden/%41"),
        ("/proxy/echo/x", "/x"),
    ] {
        let reply = raw(&app, &format!("GET {path}"), &headers).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.head);
        assert_eq!(reply.json()["uri"], sent, "{path}");
    }
}

/// A WebSocket handshake to `path` with `cookie`, from this origin's pages.
fn websocket(app: &TestApp, path: &str, cookie: &str) -> tungstenite::handshake::client::Request {
    use tungstenite::client::IntoClientRequest;
    let url = format!("{}{path}", app.base.replacen("http://", "ws://", 1));
    let mut request = url.into_client_request().unwrap();
    let headers = request.headers_mut();
    headers.insert(header::COOKIE, cookie.parse().unwrap());
    headers.insert(header::ORIGIN, app.base.parse().unwrap());
    request
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(app: &TestApp, path: &str, cookie: &str) -> Socket {
    let (mut socket, response) = tokio_tungstenite::connect_async(websocket(app, path, cookie))
        .await
        .expect("the WebSocket opens through the proxy");
    assert_eq!(response.status(), 101);
    assert_echoes(&mut socket).await;
    socket
}

/// The tunnel carries a message there and back.
async fn assert_echoes(socket: &mut Socket) {
    socket.send(Message::Text("ping".into())).await.unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .expect("a reply")
        .unwrap()
        .unwrap();
    assert_eq!(reply.into_text().unwrap().as_str(), "PING");
}

/// Whether the tunnel ends (a close, an error or the end of the stream)
/// within 10 s.
async fn ends(socket: &mut Socket) -> bool {
    let ended = async {
        loop {
            match socket.next().await {
                None | Some(Err(_) | Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), ended)
        .await
        .is_ok()
}

#[tokio::test]
async fn only_websocket_upgrades_pass_and_a_tunnel_ends_with_its_session() {
    let mut app = spawn_app().await;
    let (upstream, _) = start_upstream().await;
    let routes = route("echo", &format!("http://{upstream}"), "")
        + "[[proxy.routes]]\nname = \"admins\"\n"
        + &format!("upstream = \"http://{upstream}\"\nroles = \"ADMIN\"\n");
    gateway(&mut app, &routes, "").await;
    app.signup_ok("ada@example.com").await;
    let cookie = session(&app, "ada@example.com").await;

    // An upstream that would switch to anything is never asked to.
    for (connection, protocol) in [
        ("Upgrade, HTTP2-Settings", "h2c"),
        ("Upgrade", "websocket, h2c"),
        ("upgrade", "TLS/1.2"),
    ] {
        let reply = raw(
            &app,
            "GET /proxy/echo/switch",
            &[
                ("Cookie", cookie.as_str()),
                ("Sec-Fetch-Site", "same-origin"),
                ("Connection", connection),
                ("Upgrade", protocol),
                ("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA"),
            ],
        )
        .await;
        assert_ne!(reply.status, 101, "{protocol}: {}", reply.head);
        assert_eq!(reply.status, 400, "{protocol}: {}", reply.head);
    }

    // Logging out closes the user's open tunnel, and only hers.
    let mut socket = open(&app, "/proxy/echo/ws", &cookie).await;
    app.signup_ok("bob@example.com").await;
    let bob = session(&app, "bob@example.com").await;
    let mut bobs = open(&app, "/proxy/echo/ws", &bob).await;
    log_out(&app, &cookie).await;
    assert!(ends(&mut socket).await, "the tunnel outlived its session");
    assert_echoes(&mut bobs).await;
    let again = tokio_tungstenite::connect_async(websocket(&app, "/proxy/echo/ws", &cookie)).await;
    assert!(again.is_err(), "a logged-out cookie opened a tunnel");

    // A demotion below the route's roles closes the tunnel too.
    let (carol, carols) = admin_session(&app, "carol@example.com").await;
    let mut socket = open(&app, "/proxy/admins/ws", &carols).await;
    let boss = app.admin_account("boss@example.com").await;
    app.call(
        Method::PATCH,
        &format!("/api/users/{carol}"),
        &boss,
        Some(&json!({"role": "USER"})),
    )
    .ok()
    .await;
    assert!(ends(&mut socket).await, "the tunnel outlived the role");
    assert_echoes(&mut bobs).await;
}

#[tokio::test]
async fn cross_site_requests_never_reach_a_tool_with_the_cookie_whatever_the_method() {
    let mut app = spawn_app().await;
    let (upstream, seen) = start_upstream().await;
    gateway(
        &mut app,
        &route("echo", &format!("http://{upstream}"), ""),
        "",
    )
    .await;
    app.signup_ok("ada@example.com").await;
    let cookie = session(&app, "ada@example.com").await;
    let token = app.access_token("ada@example.com").await;
    let send = |method: &str, headers: &[(&str, &str)]| {
        let mut request = app
            .http
            .request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                app.url("/proxy/echo/x"),
            )
            .header(header::COOKIE, &cookie);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send()
    };

    for site in ["same-site", "cross-site"] {
        for method in [
            "GET",
            "HEAD",
            "OPTIONS",
            "POST",
            "PUT",
            "DELETE",
            "PATCH",
            "PURGE",
            "PROPFIND",
            "MKCOL",
            "LOCK",
            "X-ANYTHING",
        ] {
            for mode in ["cors", "no-cors", "navigate"] {
                if mode == "navigate" && (method == "GET" || method == "HEAD") {
                    continue;
                }
                let response = send(
                    method,
                    &[("sec-fetch-site", site), ("sec-fetch-mode", mode)],
                )
                .await
                .unwrap();
                assert_eq!(response.status(), 403, "{site} {mode} {method}");
            }
        }
        // A framed page is no top-level navigation.
        let framed = send(
            "GET",
            &[
                ("sec-fetch-site", site),
                ("sec-fetch-mode", "navigate"),
                ("sec-fetch-dest", "iframe"),
            ],
        )
        .await
        .unwrap();
        assert_eq!(framed.status(), 403, "{site} iframe");
    }
    // Without fetch metadata, the Origin decides for every method but
    // GET, HEAD and OPTIONS.
    for method in ["PURGE", "PROPFIND", "MKCOL", "X-ANYTHING"] {
        for origin in [None, Some("https://evil.example"), Some("null")] {
            let headers: Vec<(&str, &str)> = origin.map(|o| ("origin", o)).into_iter().collect();
            let response = send(method, &headers).await.unwrap();
            assert_eq!(response.status(), 403, "{method} from {origin:?}");
        }
    }
    assert_eq!(
        seen.hits.load(Ordering::SeqCst),
        0,
        "the upstream was reached"
    );

    // What may pass does.
    for site in ["same-site", "cross-site"] {
        for method in ["GET", "HEAD"] {
            let response = send(
                method,
                &[
                    ("sec-fetch-site", site),
                    ("sec-fetch-mode", "navigate"),
                    ("sec-fetch-dest", "document"),
                ],
            )
            .await
            .unwrap();
            assert_eq!(response.status(), 200, "{site} navigation {method}");
        }
    }
    for method in ["PURGE", "PROPFIND", "MKCOL"] {
        for headers in [
            vec![
                ("sec-fetch-site", "same-origin"),
                ("sec-fetch-mode", "cors"),
            ],
            vec![("origin", app.base.as_str())],
        ] {
            let response = send(method, &headers).await.unwrap();
            assert_eq!(response.status(), 200, "{method} {headers:?}");
        }
    }
    for method in ["GET", "OPTIONS"] {
        assert_eq!(send(method, &[]).await.unwrap().status(), 200, "{method}");
    }
    // A bearer token is no ambient authority.
    let by_token = app
        .http
        .request(
            Method::from_bytes(b"PROPFIND").unwrap(),
            app.url("/proxy/echo/x"),
        )
        .bearer_auth(&token)
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(by_token.status(), 200);
}

#[tokio::test]
async fn proxied_replies_say_nosniff_and_same_origin_and_an_isolated_route_is_sandboxed() {
    let mut app = spawn_app().await;
    let (upstream, _) = start_upstream().await;
    let to = format!("http://{upstream}");
    let routes = route("echo", &to, "")
        + &route("iso", &to, "isolate = true")
        + &route(
            "open",
            &to,
            "nosniff = false\ncross_origin_resource_policy = \"cross-origin\"",
        );
    gateway(&mut app, &routes, "").await;
    app.signup_ok("ada@example.com").await;
    let cookie = session(&app, "ada@example.com").await;
    let get = |path: &'static str| {
        app.http
            .get(app.url(path))
            .header(header::COOKIE, &cookie)
            .header("sec-fetch-site", "same-origin")
            .send()
    };
    let value = |response: &reqwest::Response, name: &str| {
        response
            .headers()
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };

    for path in ["/proxy/echo/x", "/proxy/echo/teapot", "/proxy/echo/moved"] {
        let response = get(path).await.unwrap();
        assert_eq!(
            value(&response, "x-content-type-options"),
            ["nosniff"],
            "{path}"
        );
        assert_eq!(
            value(&response, "cross-origin-resource-policy"),
            ["same-origin"],
            "{path}"
        );
        assert!(
            value(&response, "content-security-policy").is_empty(),
            "{path}"
        );
    }

    let isolated = get("/proxy/iso/x").await.unwrap();
    let policy = value(&isolated, "content-security-policy");
    assert_eq!(policy.len(), 1, "{policy:?}");
    let directives: Vec<&str> = policy[0].split_whitespace().collect();
    assert_eq!(directives[0], "sandbox", "{policy:?}");
    assert!(!directives.contains(&"allow-same-origin"), "{policy:?}");
    assert!(!directives.contains(&"allow-popups-to-escape-sandbox"));
    assert_eq!(value(&isolated, "x-content-type-options"), ["nosniff"]);

    let open = get("/proxy/open/x").await.unwrap();
    assert!(value(&open, "x-content-type-options").is_empty());
    assert_eq!(
        value(&open, "cross-origin-resource-policy"),
        ["cross-origin"]
    );
}

#[tokio::test]
async fn a_jsonp_callback_never_reaches_an_upstream() {
    // The route `cargo xtask up` configures, to a real nats-server's
    // monitoring endpoint (which answers `?callback=f` with JavaScript),
    // beside the echo.
    let mut app = spawn_app().await;
    let monitor = app.nats.monitor_url().expect("the monitor's address");
    let (upstream, _) = start_upstream().await;
    let routes = format!("[proxy.routes.nats]\nupstream = \"{monitor}\"\nroles = \"ADMIN\"\n")
        + &format!(
            "[proxy.routes.echo]\nupstream = \"http://{upstream}\"\nroles = \"ADMIN\"\n\
             [proxy.routes.jsonp]\nupstream = \"http://{upstream}\"\nroles = \"ADMIN\"\n\
             drop_query = \"\"\n"
        );
    gateway(&mut app, &routes, "").await;
    let (_, cookie) = admin_session(&app, "ada@example.com").await;
    let get = |path: &'static str| {
        app.http
            .get(app.url(path))
            .header(header::COOKIE, &cookie)
            .header("sec-fetch-site", "same-origin")
            .send()
    };

    let varz = get("/proxy/nats/varz?callback=leak").await.unwrap();
    assert_eq!(varz.status(), 200);
    let body = varz.text().await.unwrap();
    assert!(
        body.trim_start().starts_with('{'),
        "{}",
        &body[..40.min(body.len())]
    );
    let varz = get("/proxy/nats/varz?%63allback=leak&x=1").await.unwrap();
    assert!(varz.text().await.unwrap().trim_start().starts_with('{'));

    let echoed = echo_of(
        get("/proxy/echo/q?a=1&callback=f&b=%2F&CALLBACK=g&c=1;callback=h&%63allback=i&d")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(echoed["uri"], "/q?a=1&b=%2F&d");
    // A route may keep it.
    let kept = echo_of(get("/proxy/jsonp/q?callback=f").await.unwrap()).await;
    assert_eq!(kept["uri"], "/q?callback=f");
}
