//! Sessions over time: what expired is purged, and a refresh retried inside
//! the grace window keeps the session.

use std::time::Duration;

use serde_json::Value;
use testkit::{PASSWORD, assert_error};

use super::session_of;
use crate::helpers::spawn_app;

#[tokio::test]
async fn expired_sessions_spent_tokens_and_old_throttle_rows_are_purged() {
    let mut app = spawn_app().await;
    let ada = app.account("ada@example.com").await;
    let pool = app.db.pool().await;
    // A session that ended a day ago with its tokens, a token that expired in
    // a live session, and a throttle window long gone.
    sqlx::query(
        "insert into sessions (id, user_id, expires_at) values \
           ('00000000-0000-7000-8000-000000000001', $1, now() - interval '1 day')",
    )
    .bind(ada.id)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "insert into refresh_tokens (token_hash, session_id, expires_at) values \
           ('\\x01', '00000000-0000-7000-8000-000000000001', now() - interval '1 day'), \
           ('\\x02', $1, now() - interval '1 hour')",
    )
    .bind(session_of(&ada.token))
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "insert into login_failures (scope, key, window_start, failures) \
         values ('email', 'old@example.com', now() - interval '2 days', 3)",
    )
    .execute(&pool)
    .await
    .unwrap();
    // A new copy purges when it starts, then on its schedule.
    app.start_auth_worker();
    let purged = testkit::eventually(Duration::from_secs(20), Duration::from_millis(50), || {
        let pool = pool.clone();
        async move {
            let left: i64 = sqlx::query_scalar(
                "select (select count(*) from sessions where id = '00000000-0000-7000-8000-000000000001') \
                      + (select count(*) from refresh_tokens where token_hash in ('\\x01', '\\x02')) \
                      + (select count(*) from login_failures where key = 'old@example.com')",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            left == 0
        }
    });
    assert!(purged.await, "expired rows were never purged");
    // The live session is untouched.
    assert_eq!(
        app.get_with_token("/api/users/me", &ada.token)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_retried_refresh_inside_the_grace_window_gets_the_current_token_pair() {
    let app = spawn_app().await;
    app.signup_ok("ada@example.com").await;
    let first = app.login_ok("ada@example.com", PASSWORD).await;
    let old = first["refreshToken"].as_str().unwrap();
    let rotated: Value = app.refresh(old).await.json().await.unwrap();
    // The reply was lost; the client retries with the token it had.
    let retried = app.refresh(old).await;
    assert_eq!(retried.status(), 200);
    let retried: Value = retried.json().await.unwrap();
    assert_eq!(retried["refreshToken"], rotated["refreshToken"]);
    assert_eq!(retried["user"]["email"], "ada@example.com");
    assert_eq!(
        app.get_with_token("/api/users/me", retried["accessToken"].as_str().unwrap())
            .await
            .status(),
        200
    );
    // The current token goes on working.
    let next = app.refresh(rotated["refreshToken"].as_str().unwrap()).await;
    assert_eq!(next.status(), 200);

    // After the grace window, the same retry is a theft: the family dies.
    sqlx::query("update refresh_tokens set spent_at = spent_at - interval '1 hour' where spent_at is not null")
        .execute(&app.db.pool().await)
        .await
        .unwrap();
    assert_error(app.refresh(old).await, 401, "/api/auth/refresh").await;
    let next: Value = next.json().await.unwrap();
    assert_error(
        app.refresh(next["refreshToken"].as_str().unwrap()).await,
        401,
        "/api/auth/refresh",
    )
    .await;
}
