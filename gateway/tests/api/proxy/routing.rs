//! What a route forwards and what its replies say: paths that would leave
//! the route, JSONP callbacks, `nosniff`, same-origin and sandbox headers.

use std::sync::atomic::Ordering;

use reqwest::Method;

use super::{admin_session, echo::start_upstream, echo_of, gateway, raw::raw, route, user_session};
use crate::helpers::spawn_app;

#[tokio::test]
async fn paths_that_would_leave_the_route_are_refused_and_never_forwarded() {
    let mut app = spawn_app().await;
    let (upstream, seen) = start_upstream().await;
    let routes = route("echo", &format!("http://{upstream}"), "")
        + &route("based", &format!("http://{upstream}/base/"), "");
    gateway(&mut app, &routes, "").await;
    let cookie = user_session(&app, "ada@example.com").await;
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
    let get = |path: &'static str| app.same_origin(Method::GET, path, &cookie).send();

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

#[tokio::test]
async fn proxied_replies_say_nosniff_and_same_origin_and_an_isolated_route_is_sandboxed() {
    let mut app = spawn_app().await;
    let (upstream, _) = start_upstream().await;
    let to = format!("http://{upstream}");
    // Not `echo`: the metrics are one registry per test process, and
    // `streaming` counts the 418s of route `echo`.
    let routes = route("plain", &to, "")
        + &route("iso", &to, "isolate = true")
        + &route(
            "open",
            &to,
            "nosniff = false\ncross_origin_resource_policy = \"cross-origin\"",
        );
    gateway(&mut app, &routes, "").await;
    let cookie = user_session(&app, "ada@example.com").await;
    let get = |path: &'static str| app.same_origin(Method::GET, path, &cookie).send();
    let value = |response: &reqwest::Response, name: &str| {
        response
            .headers()
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };

    for path in [
        "/proxy/plain/x",
        "/proxy/plain/teapot",
        "/proxy/plain/moved",
    ] {
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
