//! Bodies and time: bodies stream both ways, an upstream that is down or slow
//! gets the contract's error, and a shutdown ends open streams.

use std::{sync::Arc, time::Duration};

use axum::http::header;
use reqwest::Method;
use serde_json::Value;
use testkit::{Api, assert_error};
use tokio::sync::Notify;

use super::{
    echo::start_upstream, fetch, proxied_app, proxied_settings, session_as_is, user_session,
    verify_email,
};
use crate::helpers::{no_redirects, spawn_app};

#[tokio::test]
async fn upstream_down_is_502_and_a_slow_one_504_in_the_contracts_shape() {
    let (app, _) = proxied_app("USER,ADMIN").await;
    let cookie = user_session(&app, "ada@example.com").await;

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
    let (app, seen) = proxied_app("USER").await;
    let cookie = user_session(&app, "ada@example.com").await;

    // Three times the API's body limit, sent in chunks as it is produced.
    let size = 3 * 1024 * 1024;
    let chunks =
        futures::stream::iter((0..48).map(move |_| Ok::<_, std::io::Error>(vec![b'a'; size / 48])));
    let response = app
        .same_origin(Method::PUT, "/proxy/echo/upload", &cookie)
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
    let user = app.signup_ok("ada@example.com").await;
    verify_email(&app, user["id"].as_i64().unwrap()).await;
    let cookie = session_as_is(&api, "ada@example.com").await;
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
