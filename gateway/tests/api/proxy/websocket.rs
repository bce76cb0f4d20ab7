//! WebSocket tunnels: only for this origin and real upgrades, and never
//! longer than the session or the role that opened them.

use std::time::Duration;

use axum::http::header;
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::{self, Message};

use super::{
    admin_session, demote, echo::start_upstream, gateway, log_out, proxied_app, raw::raw, route,
    session, user_session,
};
use crate::helpers::{TestApp, spawn_app};

/// A WebSocket handshake to `path` through the gateway, with `cookie`, as a
/// page of `origin` sends it.
fn ws_request(
    app: &TestApp,
    path: &str,
    cookie: &str,
    origin: &str,
) -> tungstenite::handshake::client::Request {
    use tungstenite::client::IntoClientRequest;
    let url = format!("{}{path}", app.base.replacen("http://", "ws://", 1));
    let mut request = url.into_client_request().unwrap();
    let headers = request.headers_mut();
    headers.insert(header::COOKIE, cookie.parse().unwrap());
    headers.insert(header::ORIGIN, origin.parse().unwrap());
    request
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(app: &TestApp, path: &str, cookie: &str) -> Socket {
    let (mut socket, response) =
        tokio_tungstenite::connect_async(ws_request(app, path, cookie, &app.base))
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
async fn a_websocket_is_tunnelled_for_this_origin_only() {
    let (app, seen) = proxied_app("USER").await;
    let user = app.signup_ok("ada@example.com").await;
    let cookie = session(&app, "ada@example.com").await;

    let (mut socket, response) =
        tokio_tungstenite::connect_async(ws_request(&app, "/proxy/echo/ws", &cookie, &app.base))
            .await
            .expect("the WebSocket opens through the proxy");
    assert_eq!(response.status(), 101);
    for word in ["hello", "again"] {
        socket.send(Message::Text(word.into())).await.unwrap();
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
    let refused = tokio_tungstenite::connect_async(ws_request(
        &app,
        "/proxy/echo/ws",
        &cookie,
        "https://evil.example",
    ))
    .await
    .expect_err("a cross-origin upgrade is refused");
    match refused {
        tungstenite::Error::Http(response) => {
            assert_eq!(response.status(), 403);
        }
        other => panic!("expected an HTTP refusal, got {other}"),
    }
}

#[tokio::test]
async fn only_websocket_upgrades_pass_and_a_tunnel_ends_with_its_session() {
    let mut app = spawn_app().await;
    let (upstream, _) = start_upstream().await;
    let routes = route("echo", &format!("http://{upstream}"), "")
        + "[[proxy.routes]]\nname = \"admins\"\n"
        + &format!("upstream = \"http://{upstream}\"\nroles = \"ADMIN\"\n");
    gateway(&mut app, &routes, "").await;
    let cookie = user_session(&app, "ada@example.com").await;

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
    let bob = user_session(&app, "bob@example.com").await;
    let mut bobs = open(&app, "/proxy/echo/ws", &bob).await;
    log_out(&app, &cookie).await;
    assert!(ends(&mut socket).await, "the tunnel outlived its session");
    assert_echoes(&mut bobs).await;
    let again =
        tokio_tungstenite::connect_async(ws_request(&app, "/proxy/echo/ws", &cookie, &app.base))
            .await;
    assert!(again.is_err(), "a logged-out cookie opened a tunnel");

    // A demotion below the route's roles closes the tunnel too.
    let (carol, carols) = admin_session(&app, "carol@example.com").await;
    let mut socket = open(&app, "/proxy/admins/ws", &carols).await;
    demote(&app, carol).await;
    assert!(ends(&mut socket).await, "the tunnel outlived the role");
    assert_echoes(&mut bobs).await;
}
