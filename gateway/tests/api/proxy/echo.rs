//! The echo upstream: a real HTTP server on a free port that answers with
//! what it received, and streams, stalls, redirects, sets cookies and speaks
//! WebSocket on the paths the tests ask for.

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
use futures::StreamExt;
use serde_json::json;
use tokio::sync::Notify;

/// What the upstream saw and can be told.
#[derive(Debug, Default)]
pub(crate) struct Upstream {
    /// Requests that reached it.
    pub(crate) hits: AtomicUsize,
    /// Released by the test: the event stream's second event.
    pub(crate) release: Notify,
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
