//! Cookies and CSRF: a route's cookies stay with the route, the session
//! cookie with the gateway, and a cross-site request never reaches a tool
//! with the cookie.

use std::sync::atomic::Ordering;

use axum::http::header;
use reqwest::Method;
use testkit::assert_error;

use super::{
    echo::start_upstream, echo_of, gateway, header_values, proxied_app, route, user_session,
};
use crate::helpers::spawn_app;

#[tokio::test]
async fn cookie_requests_to_the_proxy_keep_the_sessions_csrf_rules() {
    let (app, seen) = proxied_app("USER").await;
    let cookie = user_session(&app, "ada@example.com").await;
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
        .same_origin(Method::POST, "/proxy/echo/change", &cookie)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), 200);
}

#[tokio::test]
async fn cookies_stay_with_their_route_and_the_session_cookie_with_the_gateway() {
    let mut app = spawn_app().await;
    let (upstream, _) = start_upstream().await;
    let routes = route("echo", &format!("http://{upstream}"), "")
        + &route("down", &format!("http://{upstream}"), "");
    gateway(&mut app, &routes, "").await;
    let cookie = user_session(&app, "ada@example.com").await;

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
    let mut request = app.same_origin(Method::GET, "/proxy/echo/set-cookie", &cookie);
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
        app.same_origin(
            Method::GET,
            "/proxy/echo/x",
            &format!("{cookie}; echo.sid=abc; down.sid=zzz; theme=dark; echo.deep=1; echo.=x"),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(header_values(&echoed, "cookie"), ["sid=abc; deep=1"]);
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
    let cookie = user_session(&app, "ada@example.com").await;
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
