//! The signed-in user's account: a change of address, the sessions list
//! and ending sessions; and the event of throttled logins.

use serde_json::json;
use shared::Role;
use testkit::PASSWORD;

use super::{call, caller_of, event, events, link_token, login_from};
use crate::helpers::spawn_app;

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const ANDROID: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36";

#[tokio::test]
async fn a_change_of_address_takes_the_password_and_a_link_to_the_new_address() {
    let app = spawn_app().await;
    let ada = app.account("ada@example.com").await;
    app.signup_ok("taken@example.com").await;
    let caller = caller_of(&app, ada.id, Role::User).await;
    let app = &app;
    let change = |email: &str, password: &str| {
        let body = json!({"email": email, "currentPassword": password});
        async move {
            app.nats_request_as("auth.change_email", Some(caller), &body)
                .await
        }
    };
    let (status, body) = change("new@example.com", "not my password").await;
    assert_eq!(status, Some(403), "{body}");
    let (status, body) = change("Taken@example.com", PASSWORD).await;
    assert_eq!(
        (status, &body["message"]),
        (Some(409), &json!("email already registered"))
    );
    let (status, _) = change("ADA@example.com", PASSWORD).await;
    assert_eq!(status, Some(400));
    assert!(
        events(app, "email.change_requested", ada.id)
            .await
            .is_empty()
    );

    let (status, body) = change("new@example.com", PASSWORD).await;
    assert_eq!(status, None, "{body}");
    let requested = event(app, "email.change_requested", ada.id).await;
    assert_eq!(
        (requested["oldEmail"].clone(), requested["newEmail"].clone()),
        (json!("ada@example.com"), json!("new@example.com"))
    );
    let token = link_token(app, "email.change_requested", ada.id).await;
    let (status, user) = app
        .nats_request("auth.verify_email", None, &json!({"token": token}))
        .await;
    assert_eq!(status, None, "{user}");
    assert_eq!(
        (user["email"].clone(), user["emailVerified"].clone()),
        (json!("new@example.com"), json!(true))
    );
    let changed = event(app, "email.changed", ada.id).await;
    assert_eq!(changed["oldEmail"], "ada@example.com");
    assert_eq!(app.login("new@example.com", PASSWORD).await.status(), 200);
    assert_eq!(app.login("ada@example.com", PASSWORD).await.status(), 401);
}

#[tokio::test]
async fn a_confirmation_for_an_address_taken_meanwhile_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let bob = app.account("bob@example.com").await;
    let caller = caller_of(&app, bob.id, Role::User).await;
    let body = json!({"email": "late@example.com", "currentPassword": PASSWORD});
    let (status, _) = app
        .nats_request_as("auth.change_email", Some(caller), &body)
        .await;
    assert_eq!(status, None);
    let token = link_token(&app, "email.change_requested", bob.id).await;
    app.signup_ok("late@example.com").await;
    let (status, body) = app
        .nats_request("auth.verify_email", None, &json!({"token": token}))
        .await;
    assert_eq!(
        (status, &body["message"]),
        (Some(409), &json!("email already registered"))
    );
    assert!(events(&app, "email.changed", bob.id).await.is_empty());
    assert_eq!(app.login("bob@example.com", PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn the_sessions_list_shows_live_sessions_newest_first_with_device_and_network() {
    let app = spawn_app().await;
    let id = app.signup_ok("cy@example.com").await["id"]
        .as_i64()
        .unwrap();
    let (_, laptop) = login_from(&app, "cy@example.com", "203.0.113.77", FIREFOX).await;
    let (_, phone) = login_from(&app, "cy@example.com", "2001:db8:1:2::9", ANDROID).await;
    login_from(&app, "cy@example.com", "203.0.113.9", FIREFOX).await;
    let created = events(&app, "session.created", id).await;
    assert_eq!(
        created
            .iter()
            .map(|e| e["newDevice"].clone())
            .collect::<Vec<_>>(),
        [json!(true), json!(true), json!(false)]
    );
    let (status, list) = app
        .nats_request_as("auth.list_sessions", Some(phone), &json!({}))
        .await;
    assert_eq!(status, None, "{list}");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[1]["id"], json!(phone.session.unwrap()));
    assert_eq!(items[1]["userAgent"], "Chrome on Android");
    assert_eq!(items[1]["network"], "2001:db8:1::/48");
    assert_eq!(items[2]["userAgent"], "Firefox on Linux");
    assert_eq!(items[2]["network"], "203.0.113.0/24");
    assert_eq!(
        items
            .iter()
            .map(|s| s["current"].clone())
            .collect::<Vec<_>>(),
        [json!(false), json!(true), json!(false)]
    );
    let (status, _) = app
        .nats_request_as(
            "auth.revoke_session",
            Some(phone),
            &json!({"id": laptop.session}),
        )
        .await;
    assert_eq!(status, None);
    let (_, list) = app
        .nats_request_as("auth.list_sessions", Some(phone), &json!({}))
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    let revoked = event(&app, "session.revoked", id).await;
    assert_eq!(revoked["sessionId"], json!(laptop.session.unwrap()));
    assert_eq!(revoked["reason"], "revoked");
}

#[tokio::test]
async fn a_user_ends_only_their_own_sessions_and_an_admin_ends_anyones() {
    let app = spawn_app().await;
    let boss = app.admin_account("boss@example.com").await;
    let dee = app.account("dee@example.com").await;
    let (_, other) = login_from(&app, "dee@example.com", "198.51.100.1", FIREFOX).await;
    let eve = app.account("eve@example.com").await;
    let eve_caller = caller_of(&app, eve.id, Role::User).await;

    let (status, body) = app
        .nats_request_as(
            "auth.revoke_session",
            Some(eve_caller),
            &json!({"id": other.session}),
        )
        .await;
    assert_eq!(
        (status, &body["message"]),
        (Some(404), &json!("session not found"))
    );
    let (status, _) = app
        .nats_request_as("auth.end_other_sessions", Some(other), &json!({}))
        .await;
    assert_eq!(status, None);
    assert_eq!(
        app.get_with_token("/api/users/me", &dee.token)
            .await
            .status(),
        401
    );
    let (status, _) = app
        .nats_request_as("auth.list_sessions", Some(other), &json!({}))
        .await;
    assert_eq!(status, None, "the caller's own session lives on");
    assert_eq!(
        event(&app, "session.revoked", dee.id).await["reason"],
        "end_others"
    );

    let (status, _) = app
        .nats_request_as(
            "auth.end_user_sessions",
            Some(eve_caller),
            &json!({"id": dee.id}),
        )
        .await;
    assert_eq!(status, Some(403));
    let admin = Some((boss.id, Role::Admin));
    let (status, _) = app
        .nats_request("auth.end_user_sessions", admin, &json!({"id": 999_999}))
        .await;
    assert_eq!(status, Some(404));
    let (status, _) = app
        .nats_request("auth.end_user_sessions", admin, &json!({"id": dee.id}))
        .await;
    assert_eq!(status, None);
    let (status, _) = app
        .nats_request_as("auth.list_sessions", Some(other), &json!({}))
        .await;
    assert_eq!(status, Some(401));
    let reasons: Vec<_> = events(&app, "session.revoked", dee.id)
        .await
        .into_iter()
        .map(|e| e["reason"].clone())
        .collect();
    assert_eq!(reasons, [json!("end_others"), json!("admin")]);
    assert_eq!(
        app.get_with_token("/api/users/me", &eve.token)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_refresh_marks_the_session_used_and_a_logout_is_an_event() {
    let app = spawn_app().await;
    let id = app.signup_ok("fay@example.com").await["id"]
        .as_i64()
        .unwrap();
    let (tokens, caller) = login_from(&app, "fay@example.com", "192.0.2.1", FIREFOX).await;
    let pool = app.db.pool().await;
    sqlx::query("update sessions set last_used_at = now() - interval '1 hour'")
        .execute(&pool)
        .await
        .unwrap();
    let refreshed = app.refresh(tokens["refreshToken"].as_str().unwrap()).await;
    assert_eq!(refreshed.status(), 200);
    let refreshed: serde_json::Value = refreshed.json().await.unwrap();
    let stale: bool = sqlx::query_scalar(
        "select last_used_at < now() - interval '1 minute' from sessions where user_id = $1",
    )
    .bind(id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(!stale, "the refresh set last_used_at");
    let (status, _) = call(
        &app,
        "auth.logout",
        Some(caller),
        None,
        &json!({"refreshToken": refreshed["refreshToken"]}),
    )
    .await;
    assert_eq!(status, None);
    assert_eq!(event(&app, "session.revoked", id).await["reason"], "logout");
}

#[tokio::test]
async fn throttled_logins_of_an_account_are_one_event_per_window() {
    let app = spawn_app().await;
    let id = app.signup_ok("gil@example.com").await["id"]
        .as_i64()
        .unwrap();
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(
            app.login("gil@example.com", "wrong password")
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429, 429]);
    let throttled = event(&app, "login.throttled", id).await;
    assert_eq!(throttled["email"], "gil@example.com");
    for _ in 0..3 {
        app.login("nobody@example.com", "wrong password").await;
    }
    assert_eq!(
        app.db.count("outbox").await,
        3,
        "user.created, verification, throttled"
    );
}
