//! Resetting a password: the link ends every session and works once; a
//! link that cannot be used gets one answer and changes nothing; asking
//! for one answers alike whether or not the account exists.

use serde_json::{Value, json};
use shared::Role;
use testkit::PASSWORD;

use super::{caller_of, event, events, link_token};
use crate::helpers::{TestApp, spawn_app};

const NEW_PASSWORD: &str = "a brand new passphrase";

async fn recover(app: &TestApp, email: &str) -> (Option<u16>, Value) {
    app.nats_request("auth.recover", None, &json!({ "email": email }))
        .await
}

async fn reset(app: &TestApp, token: &str) -> (Option<u16>, Value) {
    app.nats_request(
        "auth.reset_password",
        None,
        &json!({"token": token, "newPassword": NEW_PASSWORD}),
    )
    .await
}

#[tokio::test]
async fn a_reset_link_sets_the_password_and_ends_every_session() {
    let app = spawn_app().await;
    let ada = app.account("ada@example.com").await;
    let other = app.login_ok("ada@example.com", PASSWORD).await;
    assert_eq!(recover(&app, "ada@example.com").await, (None, json!({})));
    let token = link_token(&app, "password.reset_requested", ada.id).await;

    assert_eq!(reset(&app, &token).await, (None, json!({})));
    assert_eq!(app.login("ada@example.com", PASSWORD).await.status(), 401);
    assert_eq!(
        app.login("ada@example.com", NEW_PASSWORD).await.status(),
        200
    );
    for access in [ada.token.as_str(), other["accessToken"].as_str().unwrap()] {
        assert_eq!(
            app.get_with_token("/api/users/me", access).await.status(),
            401
        );
    }
    assert_eq!(
        app.refresh(other["refreshToken"].as_str().unwrap())
            .await
            .status(),
        401
    );
    assert_eq!(
        event(&app, "password.reset", ada.id).await["email"],
        "ada@example.com"
    );
    let revoked = event(&app, "session.revoked", ada.id).await;
    assert_eq!(
        (revoked["count"].clone(), revoked["reason"].clone()),
        (json!(2), json!("password"))
    );
    // Used once.
    assert_eq!(reset(&app, &token).await.0, Some(400));
}

#[tokio::test]
async fn a_spent_expired_misdirected_or_superseded_link_is_refused_alike_and_changes_nothing() {
    let app = spawn_app().await;
    let bob = app.account("bob@example.com").await;
    let pool = app.db.pool().await;
    let (pool, bob_id) = (&pool, bob.id);
    let hash_now = || async move {
        sqlx::query_scalar::<_, String>("select password_hash from users where id = $1")
            .bind(bob_id)
            .fetch_one(pool)
            .await
            .unwrap()
    };
    let before = hash_now().await;
    let refused = |(status, body): (Option<u16>, Value)| {
        assert_eq!(status, Some(400), "{body}");
        assert_eq!(body["message"], "invalid or expired link");
    };

    // A verification token is not a reset token.
    let verify = link_token(&app, "email.verification_requested", bob.id).await;
    refused(reset(&app, &verify).await);
    // Expired.
    recover(&app, "bob@example.com").await;
    let expired = link_token(&app, "password.reset_requested", bob.id).await;
    sqlx::query(
        "update email_tokens set expires_at = now() - interval '1 second' where purpose = 'reset'",
    )
    .execute(pool)
    .await
    .unwrap();
    refused(reset(&app, &expired).await);
    // Not a token at all.
    refused(reset(&app, "x".repeat(43).as_str()).await);
    assert_eq!(hash_now().await, before);
    assert!(events(&app, "password.reset", bob.id).await.is_empty());

    // Issued before a password change.
    recover(&app, "bob@example.com").await;
    let superseded = link_token(&app, "password.reset_requested", bob.id).await;
    let caller = caller_of(&app, bob.id, Role::User).await;
    let (status, body) = app
        .nats_request_as(
            "auth.change_password",
            Some(caller),
            &json!({"currentPassword": PASSWORD, "newPassword": "changed by its owner"}),
        )
        .await;
    assert_eq!(status, None, "{body}");
    assert_eq!(
        event(&app, "password.changed", bob.id).await["email"],
        "bob@example.com"
    );
    let changed = hash_now().await;
    refused(reset(&app, &superseded).await);
    assert_eq!(hash_now().await, changed);
    // The verification link died with the change too.
    refused(
        app.nats_request("auth.verify_email", None, &json!({"token": verify}))
            .await,
    );

    // Spent.
    recover(&app, "bob@example.com").await;
    let token = link_token(&app, "password.reset_requested", bob.id).await;
    assert_eq!(reset(&app, &token).await.0, None);
    let after = hash_now().await;
    refused(reset(&app, &token).await);
    assert_eq!(hash_now().await, after);
    assert_eq!(events(&app, "password.reset", bob.id).await.len(), 1);
}

#[tokio::test]
async fn recover_answers_the_same_for_an_unknown_email_and_writes_nothing() {
    let app = spawn_app().await;
    app.signup_ok("cy@example.com").await;
    let before = app.db.count("outbox").await;
    assert_eq!(recover(&app, "nobody@example.com").await, (None, json!({})));
    assert_eq!(app.db.count("outbox").await, before);
    assert_eq!(app.db.count("email_tokens").await, 1);
}

#[tokio::test]
async fn recover_is_throttled_per_email() {
    let app = spawn_app().await;
    let dee = app.signup_ok("dee@example.com").await["id"]
        .as_i64()
        .unwrap();
    for _ in 0..3 {
        assert_eq!(recover(&app, "dee@example.com").await.0, None);
    }
    let (status, body) = recover(&app, "DEE@example.com").await;
    assert_eq!(status, Some(429), "{body}");
    assert!(body["retryAfter"].as_u64().unwrap() > 0);
    // An unknown email is counted the same way.
    for _ in 0..3 {
        recover(&app, "ghost@example.com").await;
    }
    assert_eq!(recover(&app, "ghost@example.com").await.0, Some(429));
    assert_eq!(events(&app, "password.reset_requested", dee).await.len(), 3);
}

#[tokio::test]
async fn an_admin_sends_a_reset_mail_and_nobody_else_may() {
    let app = spawn_app().await;
    let boss = app.admin_account("boss@example.com").await;
    let eve = app.account("eve@example.com").await;
    let (status, _) = app
        .nats_request(
            "auth.admin_recover",
            Some((eve.id, Role::User)),
            &json!({"id": boss.id}),
        )
        .await;
    assert_eq!(status, Some(403));
    let (status, _) = app
        .nats_request(
            "auth.admin_recover",
            Some((boss.id, Role::Admin)),
            &json!({"id": 999_999}),
        )
        .await;
    assert_eq!(status, Some(404));
    let (status, _) = app
        .nats_request(
            "auth.admin_recover",
            Some((boss.id, Role::Admin)),
            &json!({"id": eve.id}),
        )
        .await;
    assert_eq!(status, None);
    let requested = event(&app, "password.reset_requested", eve.id).await;
    assert_eq!(requested["requestedBy"], "admin");
    assert!(
        events(&app, "password.reset_requested", boss.id)
            .await
            .is_empty()
    );
}
