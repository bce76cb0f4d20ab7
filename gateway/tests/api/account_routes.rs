//! The gateway's part of the recovery, verification and session routes:
//! who may call them, what malformed input gets, and that a cookie cannot
//! be used for them from another site. (What the workers do with a real
//! token is tested at the NATS level and in the flows.)

use async_nats::{Client, Subscriber};
use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use testkit::{assert_error, error_fields};

use crate::{
    helpers::{Options, TestApp, spawn_app, spawn_app_with},
    proxy::user_session,
};

/// Every new route that needs a caller, with a body it accepts.
fn caller_routes() -> Vec<(Method, &'static str, Option<Value>)> {
    vec![
        (Method::POST, "/api/auth/verify/resend", None),
        (
            Method::POST,
            "/api/users/me/email",
            Some(json!({"email": "new@example.com", "currentPassword": "whatever"})),
        ),
        (Method::GET, "/api/users/me/sessions", None),
        (
            Method::DELETE,
            "/api/users/me/sessions/0190c5d2-7b51-7cc2-9f4e-3c8a1d2e4f60",
            None,
        ),
        (Method::POST, "/api/users/me/sessions/end-others", None),
        (Method::POST, "/api/users/1/recover", None),
        (Method::DELETE, "/api/users/1/sessions", None),
    ]
}

#[tokio::test]
async fn every_route_of_a_caller_answers_401_without_a_token() {
    let app = spawn_app().await;
    for (method, path, body) in caller_routes() {
        let response = app
            .call(method.clone(), path, None, body.as_ref())
            .send()
            .await;
        assert_eq!(
            response
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap()),
            Some("Bearer"),
            "{method} {path}"
        );
        assert_error(response, 401, path).await;
        let forged = app
            .call(method.clone(), path, "not.a.token", body.as_ref())
            .send()
            .await;
        assert_error(forged, 401, path).await;
    }
}

#[tokio::test]
async fn the_admin_routes_refuse_a_user_with_403_and_change_nothing() {
    let app = spawn_app().await;
    let victim = app.account("victim@example.com").await;
    let user = app.account("mallory@example.com").await;
    let sessions_before = app.db.count("sessions").await;
    for (method, path) in [
        (Method::POST, format!("/api/users/{}/recover", victim.id)),
        (Method::DELETE, format!("/api/users/{}/sessions", victim.id)),
    ] {
        let body = app
            .call(method.clone(), &path, &user, None)
            .fails(403)
            .await;
        assert_eq!(body["message"], "admin role required", "{method} {path}");
    }
    // The victim's session still works, and nothing was queued for a mail.
    app.call(Method::GET, "/api/users/me", &victim, None)
        .ok()
        .await;
    assert_eq!(app.db.count("sessions").await, sessions_before);
    assert_eq!(
        app.db.count("email_tokens where purpose = 'reset'").await,
        0
    );
}

#[tokio::test]
async fn malformed_bodies_get_400_naming_the_field() {
    let app = spawn_app().await;
    let ada = app.account("ada@example.com").await;
    let tokens_before = app.db.count("email_tokens").await;
    let token = "a".repeat(43);
    let cases: Vec<(&str, Option<&testkit::Account>, Value, &str)> = vec![
        ("/api/auth/verify", None, json!({}), "token"),
        ("/api/auth/verify", None, json!({"token": ""}), "token"),
        (
            "/api/auth/recover",
            None,
            json!({"email": "not-an-email"}),
            "email",
        ),
        ("/api/auth/recover", None, json!({}), "email"),
        (
            "/api/auth/reset",
            None,
            json!({"token": token, "newPassword": "short"}),
            "newPassword",
        ),
        (
            "/api/auth/reset",
            None,
            json!({"newPassword": "long enough password"}),
            "token",
        ),
        (
            "/api/users/me/email",
            Some(&ada),
            json!({"email": "nope", "currentPassword": "whatever"}),
            "email",
        ),
        (
            "/api/users/me/email",
            Some(&ada),
            json!({"email": "new@example.com"}),
            "currentPassword",
        ),
    ];
    for (path, who, body, field) in cases {
        let reply = match who {
            Some(account) => app.call(Method::POST, path, account, Some(&body)),
            None => app.call(Method::POST, path, None, Some(&body)),
        }
        .fails(400)
        .await;
        assert!(
            error_fields(&reply).contains(&field.to_owned()),
            "{path} {body}: {reply}"
        );
        assert!(!reply.to_string().contains(&token), "{reply}");
    }
    // Not an object, an unknown field, not JSON at all.
    for body in [
        json!(["a@b.co"]),
        json!({"email": "a@b.co", "role": "ADMIN"}),
    ] {
        app.call(Method::POST, "/api/auth/recover", None, Some(&body))
            .fails(400)
            .await;
    }
    let not_json = reqwest::Client::new()
        .post(app.url("/api/auth/verify"))
        .header("content-type", "application/json")
        .body("{token")
        .send()
        .await
        .unwrap();
    assert_error(not_json, 400, "/api/auth/verify").await;
    assert_eq!(app.db.count("email_tokens").await, tokens_before);
}

#[tokio::test]
async fn a_session_id_that_is_no_uuid_gets_400_and_an_admin_path_id_must_be_positive() {
    let app = spawn_app().await;
    let ada = app.account("ada@example.com").await;
    for bad in ["42", "not-a-uuid", "0190c5d2-7b51-7cc2-9f4e-3c8a1d2e4f6"] {
        let path = format!("/api/users/me/sessions/{bad}");
        let body = app.call(Method::DELETE, &path, &ada, None).fails(400).await;
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .starts_with("invalid path parameter"),
            "{body}"
        );
    }
    let admin = app.admin_account("root@example.com").await;
    for path in [
        "/api/users/0/recover",
        "/api/users/-3/sessions",
        "/api/users/x/recover",
    ] {
        let method = if path.ends_with("sessions") {
            Method::DELETE
        } else {
            Method::POST
        };
        app.call(method, path, &admin, None).fails(400).await;
    }
    // The caller's session was not touched by any of it.
    app.call(Method::GET, "/api/users/me", &ada, None)
        .ok()
        .await;
}

#[tokio::test]
async fn a_cookie_from_another_site_cannot_change_anything() {
    let app = spawn_app().await;
    let cookie = user_session(&app, "ada@example.com").await;
    let sessions = app.db.count("sessions where revoked_at is null").await;
    let unsafe_routes = [
        (Method::POST, "/api/auth/verify/resend", None),
        (
            Method::POST,
            "/api/users/me/email",
            Some(json!({"email": "evil@example.com", "currentPassword": testkit::PASSWORD})),
        ),
        (
            Method::DELETE,
            "/api/users/me/sessions/0190c5d2-7b51-7cc2-9f4e-3c8a1d2e4f60",
            None,
        ),
        (Method::POST, "/api/users/me/sessions/end-others", None),
        (Method::POST, "/api/users/1/recover", None),
        (Method::DELETE, "/api/users/1/sessions", None),
    ];
    for (method, path, body) in unsafe_routes {
        for (name, value) in [
            ("sec-fetch-site", "cross-site"),
            ("sec-fetch-site", "same-site"),
            ("origin", "https://evil.example"),
        ] {
            let mut request = reqwest::Client::new()
                .request(method.clone(), app.url(path))
                .header(reqwest::header::COOKIE, &cookie)
                .header(name, value);
            if let Some(body) = &body {
                request = request.json(body);
            }
            let response = request.send().await.unwrap();
            assert_error(response, 403, path).await;
        }
    }
    assert_eq!(
        app.db.count("sessions where revoked_at is null").await,
        sessions
    );
    // The same cookie from the app's own pages is let through.
    let list = app
        .same_origin(Method::GET, "/api/users/me/sessions", &cookie)
        .send()
        .await
        .unwrap();
    assert_ne!(list.status(), 401);
    assert_ne!(list.status(), 403);
}

#[tokio::test]
async fn recover_answers_202_with_the_same_body_for_a_known_and_an_unknown_address() {
    // Needs the auth-worker's `auth.recover` handler.
    let app = spawn_app().await;
    app.signup_ok("ada@example.com").await;
    let mut replies = Vec::new();
    for email in ["ada@example.com", "nobody@example.com"] {
        let response = app
            .post("/api/auth/recover", &json!({ "email": email }))
            .await;
        assert_eq!(response.status(), 202, "{email}");
        let content_type = response.headers().get("content-type").cloned();
        let body = response.bytes().await.unwrap();
        replies.push((content_type, body));
    }
    assert_eq!(replies[0], replies[1]);
    assert!(replies[0].1.is_empty(), "202 has no body");
}

/// A member of the auth-worker's queue group for `subject` that records
/// each request's headers and answers nothing useful.
async fn sniffing_auth_worker(app: &TestApp, subject: &'static str) -> (Client, Subscriber) {
    let (sniffer, _) = app.nats.connect_as("auth-worker").await.unwrap();
    let mut sub = sniffer
        .queue_subscribe(subject, "auth-worker".into())
        .await
        .unwrap();
    app.wait_until_routed(subject, &mut sub).await;
    (sniffer, sub)
}

/// The `X-Client-User-Agent` of the next request `sub` receives (probes
/// of `wait_until_routed` are no requests: they have no reply subject).
async fn next_user_agent(sub: &mut Subscriber) -> Option<String> {
    let message = loop {
        let message = tokio::time::timeout(std::time::Duration::from_secs(10), sub.next())
            .await
            .expect("a request")
            .unwrap();
        if message.reply.is_some() {
            break message;
        }
    };
    message.headers.and_then(|h| {
        h.get(shared::headers::CLIENT_USER_AGENT)
            .map(|v| v.as_str().to_owned())
    })
}

#[tokio::test]
async fn only_the_logins_tell_the_worker_the_client_user_agent_cut_to_its_limit() {
    let app = spawn_app_with(Options {
        rpc_timeout_ms: 300,
        ..Options::without_workers()
    })
    .await;
    let (_login, mut logins) = sniffing_auth_worker(&app, "auth.login").await;
    let (_signup, mut signups) = sniffing_auth_worker(&app, "auth.create_user").await;
    let (_recover, mut recovers) = sniffing_auth_worker(&app, "auth.recover").await;
    let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0";
    let credentials = json!({"email": "ada@example.com", "password": "whatever"});
    let http = reqwest::Client::new();

    for path in ["/api/auth/login", "/api/session"] {
        http.post(app.url(path))
            .header("user-agent", firefox)
            .header("sec-fetch-site", "same-origin")
            .json(&credentials)
            .send()
            .await
            .unwrap();
        assert_eq!(
            next_user_agent(&mut logins).await.as_deref(),
            Some(firefox),
            "{path}"
        );
    }
    let long = format!("{firefox} {}", "x".repeat(600));
    http.post(app.url("/api/auth/login"))
        .header("user-agent", &long)
        .json(&credentials)
        .send()
        .await
        .unwrap();
    let cut = next_user_agent(&mut logins).await.unwrap();
    assert_eq!(cut, long[..shared::headers::USER_AGENT_MAX]);
    // No User-Agent: none sent.
    http.post(app.url("/api/auth/login"))
        .json(&credentials)
        .send()
        .await
        .unwrap();
    assert_eq!(next_user_agent(&mut logins).await, None);
    // Other routes never carry it.
    http.post(app.url("/api/auth/signup"))
        .header("user-agent", firefox)
        .json(&json!({"email": "ada@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(next_user_agent(&mut signups).await, None);
    http.post(app.url("/api/auth/recover"))
        .header("user-agent", firefox)
        .json(&json!({"email": "ada@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(next_user_agent(&mut recovers).await, None);
}
