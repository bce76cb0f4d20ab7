//! Verifying an address: the link from the sign-up's mail, a new mail on
//! request, and what `auth.mail_token` gives for rows no link can use.

use serde_json::json;
use shared::Role;

use super::{event, events, link_token, mail_token};
use crate::helpers::spawn_app;

#[tokio::test]
async fn the_sign_up_link_verifies_the_address_once() {
    let app = spawn_app().await;
    let ada = app.account("ada@example.com").await;
    let me = app.get_with_token("/api/users/me", &ada.token).await;
    assert_eq!(
        me.json::<serde_json::Value>().await.unwrap()["emailVerified"],
        false
    );
    let token = link_token(&app, "email.verification_requested", ada.id).await;

    let (status, user) = app
        .nats_request("auth.verify_email", None, &json!({"token": token}))
        .await;
    assert_eq!(status, None, "{user}");
    assert_eq!(user["emailVerified"], true);
    assert_eq!(
        event(&app, "email.verified", ada.id).await["email"],
        "ada@example.com"
    );
    let me = app.get_with_token("/api/users/me", &ada.token).await;
    assert_eq!(
        me.json::<serde_json::Value>().await.unwrap()["emailVerified"],
        true
    );

    let (status, body) = app
        .nats_request("auth.verify_email", None, &json!({"token": token}))
        .await;
    assert_eq!(status, Some(400));
    assert_eq!(body["message"], "invalid or expired link");
    assert_eq!(events(&app, "email.verified", ada.id).await.len(), 1);
}

#[tokio::test]
async fn a_new_verification_mail_is_throttled_and_refused_once_verified() {
    let app = spawn_app().await;
    let bob = app.account("bob@example.com").await;
    let caller = Some((bob.id, Role::User));
    for _ in 0..3 {
        let (status, body) = app
            .nats_request("auth.resend_verification", caller, &json!({}))
            .await;
        assert_eq!(status, None, "{body}");
    }
    assert_eq!(
        events(&app, "email.verification_requested", bob.id)
            .await
            .len(),
        4
    );
    let (status, body) = app
        .nats_request("auth.resend_verification", caller, &json!({}))
        .await;
    assert_eq!(status, Some(429), "{body}");
    assert!(body["retryAfter"].as_u64().unwrap() > 0);

    // Every link mailed works until one is used.
    let token = link_token(&app, "email.verification_requested", bob.id).await;
    let (status, _) = app
        .nats_request("auth.verify_email", None, &json!({"token": token}))
        .await;
    assert_eq!(status, None);
    let (status, body) = app
        .nats_request("auth.resend_verification", caller, &json!({}))
        .await;
    assert_eq!(status, Some(409));
    assert_eq!(body["message"], "email already verified");
}

#[tokio::test]
async fn a_mail_token_is_gone_for_a_spent_expired_or_unknown_row_and_a_new_one_replaces_the_old() {
    let app = spawn_app().await;
    let cy = app.account("cy@example.com").await;
    let requested = event(&app, "email.verification_requested", cy.id).await;
    let token_id = &requested["tokenId"];
    let (_, first) = mail_token(&app, token_id).await;
    let (status, second) = mail_token(&app, token_id).await;
    assert_eq!(status, None);
    assert!(second["expiresAt"].is_string());
    // A redelivered mail's link supersedes the earlier one.
    let (status, _) = app
        .nats_request("auth.verify_email", None, &json!({"token": first["token"]}))
        .await;
    assert_eq!(status, Some(400));
    let (status, _) = app
        .nats_request(
            "auth.verify_email",
            None,
            &json!({"token": second["token"]}),
        )
        .await;
    assert_eq!(status, None);

    let (status, body) = mail_token(&app, token_id).await;
    assert_eq!(status, Some(410), "spent: {body}");
    assert_eq!(body["message"], "link no longer valid");
    let (status, _) = mail_token(&app, &json!(uuid::Uuid::now_v7())).await;
    assert_eq!(status, Some(410), "unknown");
    let (status, _) = app
        .nats_request(
            "auth.resend_verification",
            Some((cy.id, Role::User)),
            &json!({}),
        )
        .await;
    assert_eq!(status, Some(409));
    let dee = app.account("dee@example.com").await;
    sqlx::query(
        "update email_tokens set expires_at = now() - interval '1 second' where user_id = $1",
    )
    .bind(dee.id)
    .execute(&app.db.pool().await)
    .await
    .unwrap();
    let requested = event(&app, "email.verification_requested", dee.id).await;
    let (status, _) = mail_token(&app, &requested["tokenId"]).await;
    assert_eq!(status, Some(410), "expired");
}
