//! What the upstream learns of the user: the gateway's identity headers and
//! a signed assertion, never anything a client wrote or the session cookie.

use std::sync::atomic::Ordering;

use reqwest::Method;
use serde_json::{Value, json};
use testkit::PASSWORD;

use super::{
    PUBLIC_HOST, admin_session, echo::start_upstream, gateway, header_values, proxied_app,
    raw::raw, route,
};
use crate::helpers::{COOKIE, TestApp, spawn_app};

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
    let (app, _) = proxied_app("ADMIN").await;
    let (id, cookie) = admin_session(&app, "ada@example.com").await;

    let response = app
        .same_origin(
            Method::GET,
            "/proxy/echo/inspect/it?q=1&r=%2F",
            &format!("echo.theme=dark; {cookie}; lang=en; echo.lang=en"),
        )
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

/// `auth.proxy_assertion` for route `echo` and `roles`, asked straight over
/// NATS as `caller` (as the gateway's NATS user would): status and reply.
async fn echo_assertion(
    app: &TestApp,
    caller: Option<(i64, shared::Role)>,
    roles: &[&str],
) -> (Option<u16>, Value) {
    let ask = json!({"audience": "proxy:echo", "roles": roles});
    app.nats_request("auth.proxy_assertion", caller, &ask).await
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
    let (status, body) = echo_assertion(&app, Some((id, Role::User)), &["ADMIN"]).await;
    assert_eq!(status, Some(403), "{body}");
    // A token's word is not enough: the USER claiming ADMIN is read as USER.
    let (status, _) = echo_assertion(&app, Some((id, Role::Admin)), &["ADMIN"]).await;
    assert_eq!(status, Some(403));
    let (status, _) = echo_assertion(&app, None, &["USER"]).await;
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
    let (status, body) = echo_assertion(&app, Some((id, Role::User)), &["USER", "ADMIN"]).await;
    assert_eq!(status, None, "{body}");
    assert_eq!(body["user"]["email"], "bob@example.com");
    assert_eq!(body["expiresIn"], 60);
    let claims = verify_assertion(&app, body["assertion"].as_str().unwrap(), "proxy:echo")
        .await
        .unwrap();
    assert_eq!(claims["role"], "USER");
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
