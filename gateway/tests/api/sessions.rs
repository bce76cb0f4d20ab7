//! Sessions: refresh rotation, reuse detection, logout, password change,
//! login throttling, and the first ADMIN.

use reqwest::Method;
use serde_json::{Value, json};
use testkit::{PASSWORD, assert_error};

use crate::helpers::{Options, TestApp, spawn_app, spawn_app_with};

fn token(body: &Value, field: &str) -> String {
    body[field].as_str().unwrap().to_owned()
}

/// Live refresh tokens: not spent, in a session that is not revoked.
async fn live_tokens(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "select count(*) from refresh_tokens rt join sessions s on s.id = rt.session_id \
         where rt.spent_at is null and s.revoked_at is null",
    )
    .fetch_one(&app.db.pool().await)
    .await
    .unwrap()
}

#[tokio::test]
async fn refreshing_rotates_the_refresh_token_and_the_new_tokens_work() {
    let app = spawn_app().await;
    app.signup_ok("ada@example.com").await;
    let first = app.login_ok("ada@example.com", PASSWORD).await;
    let response = app.refresh(&token(&first, "refreshToken")).await;
    assert_eq!(response.status(), 200);
    let second: Value = response.json().await.unwrap();
    assert_ne!(second["refreshToken"], first["refreshToken"]);
    assert_eq!(second["tokenType"], "Bearer");
    assert_eq!(second["user"]["email"], "ada@example.com");
    let me = app
        .get_with_token("/api/users/me", &token(&second, "accessToken"))
        .await;
    assert_eq!(me.status(), 200);
    assert_eq!(
        app.refresh(&token(&second, "refreshToken")).await.status(),
        200
    );
}

#[tokio::test]
async fn a_spent_refresh_token_presented_after_the_grace_window_revokes_the_whole_session() {
    let app = spawn_app_with(Options {
        auth: |s| s.refresh.reuse_grace_secs = 0,
        ..Options::default()
    })
    .await;
    app.signup_ok("ada@example.com").await;
    let first = app.login_ok("ada@example.com", PASSWORD).await;
    let stolen = token(&first, "refreshToken");
    let rotated: Value = app.refresh(&stolen).await.json().await.unwrap();

    let body = assert_error(app.refresh(&stolen).await, 401, "/api/auth/refresh").await;
    assert_eq!(body["message"], "invalid refresh token");
    // The legitimate holder's newer token dies with the family.
    assert_error(
        app.refresh(&token(&rotated, "refreshToken")).await,
        401,
        "/api/auth/refresh",
    )
    .await;
    assert_eq!(live_tokens(&app).await, 0);
}

#[tokio::test]
async fn within_the_grace_window_a_second_use_gets_the_current_pair_and_the_session_survives() {
    let app = spawn_app().await;
    app.signup_ok("ada@example.com").await;
    let first = app.login_ok("ada@example.com", PASSWORD).await;
    let old = token(&first, "refreshToken");
    let rotated: Value = app.refresh(&old).await.json().await.unwrap();
    let again: Value = app.refresh(&old).await.json().await.unwrap();
    assert_eq!(again["refreshToken"], rotated["refreshToken"]);
    assert_eq!(
        app.refresh(&token(&rotated, "refreshToken")).await.status(),
        200
    );
    assert_eq!(live_tokens(&app).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_concurrent_refreshes_of_one_token_rotate_it_once_and_all_get_the_new_one() {
    let app = spawn_app().await;
    app.signup_ok("ada@example.com").await;
    let first = app.login_ok("ada@example.com", PASSWORD).await;
    let rt = token(&first, "refreshToken");
    let attempts = (0..10).map(|_| {
        let (app, rt) = (&app, rt.clone());
        async move {
            let response = app.refresh(&rt).await;
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            (status, body["refreshToken"].as_str().map(str::to_owned))
        }
    });
    let replies = futures::future::join_all(attempts).await;
    // One rotates; the nine that waited on its lock are retries inside the
    // grace window and get the very same new token.
    assert!(replies.iter().all(|(s, _)| *s == 200), "{replies:?}");
    let tokens: std::collections::BTreeSet<_> = replies.iter().map(|(_, t)| t.clone()).collect();
    assert_eq!(tokens.len(), 1, "{replies:?}");
    assert_eq!(live_tokens(&app).await, 1);
}

#[tokio::test]
async fn unknown_or_malformed_refresh_tokens_are_refused() {
    let app = spawn_app().await;
    assert_error(app.refresh("no-such-token").await, 401, "/api/auth/refresh").await;
    let body = assert_error(
        app.post("/api/auth/refresh", &json!({})).await,
        400,
        "/api/auth/refresh",
    )
    .await;
    assert_eq!(body["details"][0]["field"], "refreshToken");
}

#[tokio::test]
async fn logout_needs_a_bearer_token_and_revokes_only_the_callers_session() {
    let app = spawn_app().await;
    app.signup_ok("ada@example.com").await;
    app.signup_ok("bob@example.com").await;
    let ada = app.login_ok("ada@example.com", PASSWORD).await;
    let bob = app.login_ok("bob@example.com", PASSWORD).await;
    let logout = |bearer: Option<String>, rt: String| {
        let app = &app;
        async move {
            let body = json!({ "refreshToken": rt });
            let bearer = bearer.as_deref();
            app.call(Method::POST, "/api/auth/logout", bearer, Some(&body))
                .send()
                .await
        }
    };
    assert_error(
        logout(None, token(&ada, "refreshToken")).await,
        401,
        "/api/auth/logout",
    )
    .await;
    // Ada cannot log Bob out.
    assert_error(
        logout(
            Some(token(&ada, "accessToken")),
            token(&bob, "refreshToken"),
        )
        .await,
        401,
        "/api/auth/logout",
    )
    .await;
    assert_eq!(
        app.refresh(&token(&bob, "refreshToken")).await.status(),
        200
    );

    let done = logout(
        Some(token(&ada, "accessToken")),
        token(&ada, "refreshToken"),
    )
    .await;
    assert_eq!(done.status(), 204);
    assert_error(
        app.refresh(&token(&ada, "refreshToken")).await,
        401,
        "/api/auth/refresh",
    )
    .await;
}

#[tokio::test]
async fn changing_the_password_checks_the_current_one_and_revokes_every_other_session() {
    let app = spawn_app().await;
    app.signup_ok("ada@example.com").await;
    let here = app.login_ok("ada@example.com", PASSWORD).await;
    let elsewhere = app.login_ok("ada@example.com", PASSWORD).await;
    let change = |current: &str, new: &str| {
        let body = json!({ "currentPassword": current, "newPassword": new });
        let bearer = token(&here, "accessToken");
        let app = &app;
        async move {
            let path = "/api/users/me/password";
            app.call(Method::PUT, path, bearer.as_str(), Some(&body))
                .send()
                .await
        }
    };
    let body = assert_error(
        change("wrong password", "a brand new one").await,
        403,
        "/api/users/me/password",
    )
    .await;
    assert_eq!(body["message"], "current password is incorrect");
    let body = assert_error(
        change(PASSWORD, "short").await,
        400,
        "/api/users/me/password",
    )
    .await;
    assert_eq!(body["details"][0]["field"], "newPassword");

    assert_eq!(change(PASSWORD, "a brand new one").await.status(), 204);
    assert_error(
        app.login("ada@example.com", PASSWORD).await,
        401,
        "/api/auth/login",
    )
    .await;
    assert_eq!(
        app.login("ada@example.com", "a brand new one")
            .await
            .status(),
        200
    );
    // The other session is over; this one goes on.
    assert_error(
        app.refresh(&token(&elsewhere, "refreshToken")).await,
        401,
        "/api/auth/refresh",
    )
    .await;
    assert_eq!(
        app.refresh(&token(&here, "refreshToken")).await.status(),
        200
    );
}

#[tokio::test]
async fn repeated_failures_for_one_email_lock_it_even_for_the_right_password() {
    let mut app = spawn_app().await;
    // Two copies of the auth worker: the count lives in PostgreSQL.
    app.start_auth_worker();
    app.signup_ok("ada@example.com").await;
    for _ in 0..5 {
        assert_error(
            app.login("ada@example.com", "wrong password").await,
            401,
            "/api/auth/login",
        )
        .await;
    }
    let locked = app.login("ada@example.com", PASSWORD).await;
    let retry_after: u64 = locked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0 && retry_after <= 900, "{retry_after}");
    assert_error(locked, 429, "/api/auth/login").await;
    // Another account from the same address is not affected (5 < 20).
    app.signup_ok("bob@example.com").await;
    assert_eq!(app.login("bob@example.com", PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn failures_from_one_address_lock_it_and_a_spoofed_forwarded_for_does_not_reset_that() {
    let app = spawn_app().await;
    app.signup_ok("ada@example.com").await;
    // 20 failures over 20 emails, each claiming another X-Forwarded-For.
    for i in 0..20 {
        let (email, address) = (format!("user{i}@example.com"), format!("10.9.0.{i}"));
        let failed = app.login_from(&email, "wrong password", &address).await;
        assert_eq!(failed.status(), 401);
    }
    let locked = app
        .login_from("ada@example.com", PASSWORD, "10.9.9.9")
        .await;
    assert_error(locked, 429, "/api/auth/login").await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_address_is_counted_on_its_own() {
    let app = spawn_app_with(Options::trusting_forwarded_for()).await;
    app.signup_ok("ada@example.com").await;
    let fail_from = |email: String, address: &'static str| {
        let app = &app;
        async move {
            app.login_from(&email, "wrong password", address)
                .await
                .status()
        }
    };
    for i in 0..20 {
        assert_eq!(
            fail_from(format!("user{i}@example.com"), "203.0.113.7").await,
            401
        );
    }
    assert_eq!(
        fail_from("other@example.com".into(), "203.0.113.7").await,
        429
    );
    let other_client = app
        .login_from("ada@example.com", PASSWORD, "198.51.100.1")
        .await;
    assert_eq!(other_client.status(), 200);
}

#[tokio::test]
async fn the_first_admin_is_made_from_the_command_line() {
    let app = spawn_app().await;
    app.signup_ok("ada@example.com").await;
    // As the command line does: the migrator's connection, not a worker's.
    let settings = app.auth_worker_settings().migrator;
    let user = auth_worker::set_role(&settings, " ADA@example.com", shared::Role::Admin)
        .await
        .unwrap();
    assert_eq!(user.role, shared::Role::Admin);
    let body = app.login_ok("ada@example.com", PASSWORD).await;
    assert_eq!(body["user"]["role"], "ADMIN");
    let missing = auth_worker::set_role(&settings, "nobody@example.com", shared::Role::Admin).await;
    assert!(missing.unwrap_err().to_string().contains("sign up first"));
}

#[tokio::test]
async fn session_subjects_published_straight_onto_nats_without_a_caller_change_nothing() {
    let app = spawn_app().await;
    app.signup_ok("ada@example.com").await;
    let body = app.login_ok("ada@example.com", PASSWORD).await;
    for (subject, payload) in [
        (
            "auth.logout",
            json!({ "refreshToken": token(&body, "refreshToken") }),
        ),
        (
            "auth.change_password",
            json!({ "currentPassword": PASSWORD, "newPassword": "hijacked password" }),
        ),
    ] {
        let (status, _) = app.nats_request_as(subject, None, &payload).await;
        assert_eq!(status, Some(401), "{subject}");
    }
    assert_eq!(app.login("ada@example.com", PASSWORD).await.status(), 200);
    assert_eq!(
        app.refresh(&token(&body, "refreshToken")).await.status(),
        200
    );
}
