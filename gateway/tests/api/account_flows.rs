//! The recovery, verification and session flows over HTTP, with real
//! tokens: a test takes a mail's token as the mail-worker does
//! (`auth.mail_token` for the `email_tokens` row of the mail).

use reqwest::Method;
use serde_json::{Value, json};
use testkit::PASSWORD;

use crate::{helpers::TestApp, helpers::spawn_app, proxy::session_as_is};

/// The newest `purpose` token row of `user_id`, made into a link's token
/// as the mail-worker asks for it.
async fn mail_token(app: &TestApp, user_id: i64, purpose: &str) -> String {
    let id: uuid::Uuid = sqlx::query_scalar(
        "select id from email_tokens where user_id = $1 and purpose = $2 \
         order by created_at desc limit 1",
    )
    .bind(user_id)
    .bind(purpose)
    .fetch_one(&app.db.pool().await)
    .await
    .unwrap_or_else(|e| panic!("no {purpose} token row for user {user_id}: {e}"));
    let (mail, _) = app.nats.connect_as("mail-worker").await.unwrap();
    let reply = mail
        .request(
            "auth.mail_token",
            serde_json::to_vec(&json!({ "tokenId": id }))
                .unwrap()
                .into(),
        )
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&reply.payload).unwrap();
    body["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {body}"))
        .to_owned()
}

#[tokio::test]
async fn a_verification_link_verifies_once_and_then_is_an_invalid_link() {
    let app = spawn_app().await;
    let user = app.signup_ok("ada@example.com").await;
    assert_eq!(user["emailVerified"], false);
    let id = user["id"].as_i64().unwrap();
    let token = mail_token(&app, id, "verify").await;

    let verified = app
        .call(
            Method::POST,
            "/api/auth/verify",
            None,
            Some(&json!({ "token": token })),
        )
        .ok()
        .await;
    assert_eq!(verified["id"], id);
    assert_eq!(verified["emailVerified"], true);
    let again = app
        .call(
            Method::POST,
            "/api/auth/verify",
            None,
            Some(&json!({ "token": token })),
        )
        .fails(400)
        .await;
    assert_eq!(again["message"], "invalid or expired link");
}

#[tokio::test]
async fn a_reset_sets_the_password_and_ends_every_session_cookie_and_bearer() {
    let app = spawn_app().await;
    let user = app.signup_ok("ada@example.com").await;
    let id = user["id"].as_i64().unwrap();
    let cookie = session_as_is(&app, "ada@example.com").await;
    let tokens = app.login_ok("ada@example.com", PASSWORD).await;

    let recover = app
        .post("/api/auth/recover", &json!({"email": "ada@example.com"}))
        .await;
    assert_eq!(recover.status(), 202);
    let token = mail_token(&app, id, "reset").await;
    let new_password = "a brand new passphrase";
    let reset = app
        .post(
            "/api/auth/reset",
            &json!({"token": token, "newPassword": new_password}),
        )
        .await;
    assert_eq!(reset.status(), 204);

    // The browser session and the bearer's refresh token are over.
    let current = app
        .same_origin(Method::GET, "/api/session", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(current.status(), 401);
    let refresh = app.refresh(tokens["refreshToken"].as_str().unwrap()).await;
    assert_eq!(refresh.status(), 401);
    // The new password logs in; the old one does not; the link is spent.
    assert_eq!(app.login("ada@example.com", PASSWORD).await.status(), 401);
    assert_eq!(
        app.login("ada@example.com", new_password).await.status(),
        200
    );
    let again = app
        .post(
            "/api/auth/reset",
            &json!({"token": token, "newPassword": "yet another passphrase"}),
        )
        .await;
    assert_eq!(again.status(), 400);
}

#[tokio::test]
async fn a_user_sees_their_sessions_and_ends_one_or_all_others() {
    let app = spawn_app().await;
    app.signup_ok("ada@example.com").await;
    let cookie = session_as_is(&app, "ada@example.com").await;
    let other = app.login_ok("ada@example.com", PASSWORD).await;
    let third = app.login_ok("ada@example.com", PASSWORD).await;

    let list: Value = app
        .same_origin(Method::GET, "/api/users/me/sessions", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{list}");
    assert_eq!(
        items.iter().filter(|s| s["current"] == true).count(),
        1,
        "{list}"
    );
    // The newest is the third login's; end it.
    let newest = items[0]["id"].as_str().unwrap();
    let revoked = app
        .same_origin(
            Method::DELETE,
            &format!("/api/users/me/sessions/{newest}"),
            &cookie,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 204);
    assert_eq!(
        app.refresh(third["refreshToken"].as_str().unwrap())
            .await
            .status(),
        401
    );
    assert_eq!(
        app.refresh(other["refreshToken"].as_str().unwrap())
            .await
            .status(),
        200
    );

    let ended = app
        .same_origin(Method::POST, "/api/users/me/sessions/end-others", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 204);
    let list: Value = app
        .same_origin(Method::GET, "/api/users/me/sessions", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["items"][0]["current"], true);
}

#[tokio::test]
async fn an_admin_ends_every_session_of_a_user() {
    let app = spawn_app().await;
    let admin = app.admin_account("root@example.com").await;
    let ada = app.account("ada@example.com").await;
    let cookie = session_as_is(&app, "ada@example.com").await;

    let ended = app
        .call(
            Method::DELETE,
            &format!("/api/users/{}/sessions", ada.id),
            &admin,
            None,
        )
        .send()
        .await;
    assert_eq!(ended.status(), 204);
    app.call(Method::GET, "/api/users/me", &ada, None)
        .fails(401)
        .await;
    let current = app
        .same_origin(Method::GET, "/api/session", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(current.status(), 401);
}
