//! The ADMIN policy (`mfa.require_for_admin`): an ADMIN without a second
//! factor is refused the ADMIN API (403, saying why) and sent from the
//! back-office to enrol; with one, it is asked for at every login. An ADMIN
//! resets another user's factors (never reads them), which ends that
//! user's sessions. Passkey answers to no challenge change nothing.

use axum::http::header;
use reqwest::Method;
use serde_json::json;
use testkit::PASSWORD;

use super::{enrol, enrol_account, pending_login};
use crate::{
    helpers::{Options, no_redirects, spawn_app_with},
    proxy::cookie_of,
};

fn with_policy() -> Options {
    Options {
        gateway: |s| s.mfa.require_for_admin = true,
        ..Options::default()
    }
}

#[tokio::test]
async fn an_admin_without_a_factor_is_sent_to_enrol_and_then_asked_at_every_login() {
    let app = spawn_app_with(with_policy()).await;
    let admin = app.admin_account("root@example.com").await;
    let refused = app
        .call(Method::GET, "/api/users", &admin, None)
        .fails(403)
        .await;
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("second factor"),
        "{refused}"
    );
    // The back-office: to the account page, which says why.
    let login = app.session_login("root@example.com", PASSWORD).await;
    assert_eq!(login.status(), 200);
    let cookie = cookie_of(&login);
    let page = no_redirects()
        .get(app.url("/dashboard/"))
        .header(header::COOKIE, &cookie)
        .header("sec-fetch-mode", "navigate")
        .header("sec-fetch-site", "none")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 302);
    assert_eq!(page.headers()[header::LOCATION], "/account?mfa=required");

    let enrolled = enrol_account(&app, admin).await;
    let users = app
        .call(Method::GET, "/api/users", &enrolled.account, None)
        .ok()
        .await;
    assert_eq!(users["items"].as_array().unwrap().len(), 1);
    pending_login(&app, "root@example.com").await;
    // Nor may the last factor go while the policy holds.
    let remove = json!({ "currentPassword": PASSWORD, "code": enrolled.recovery_codes[0] });
    app.call(
        Method::DELETE,
        "/api/users/me/mfa/totp",
        &enrolled.account,
        Some(&remove),
    )
    .fails(409)
    .await;
}

#[tokio::test]
async fn an_admin_resets_a_users_factors_which_ends_their_sessions() {
    let app = spawn_app_with(with_policy()).await;
    let admin = app.admin_account("root@example.com").await;
    let admin = enrol_account(&app, admin).await.account;
    let user = enrol(&app, "ada@example.com").await;
    let path = format!("/api/users/{}/mfa", user.account.id);
    // Not for a USER, not even of themselves.
    app.call(Method::DELETE, &path, &user.account, None)
        .fails(403)
        .await;
    let reset = app.call(Method::DELETE, &path, &admin, None).send().await;
    assert_eq!(reset.status(), 204);
    // The user's session is over, and a password is enough again.
    app.call(Method::GET, "/api/users/me", &user.account, None)
        .fails(401)
        .await;
    assert_eq!(app.login("ada@example.com", PASSWORD).await.status(), 200);
    let event = crate::recovery::event(&app, "mfa.reset", user.account.id).await;
    assert_eq!(event["adminId"], admin.id);
    let unknown = app
        .call(Method::DELETE, "/api/users/999999/mfa", &admin, None)
        .send()
        .await;
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn a_passkey_answer_to_no_challenge_or_a_forged_one_changes_nothing() {
    let app = spawn_app_with(Options {
        localhost_origin: true,
        ..Options::default()
    })
    .await;
    let enrolled = enrol(&app, "eve@example.com").await;
    let forged = json!({
        "id": "AAAA", "rawId": "AAAA", "type": "public-key",
        "response": { "clientDataJSON": "e30", "authenticatorData": "AAAA", "signature": "AAAA" },
        "extensions": {}
    });
    // No challenge was asked for: nothing to answer.
    app.call(
        Method::POST,
        "/api/auth/step-up",
        &enrolled.account,
        Some(&json!({ "passkey": forged })),
    )
    .fails(403)
    .await;
    // A registration answering no challenge, and a malformed credential.
    for credential in [forged.clone(), json!({ "id": 5 })] {
        app.call(
            Method::POST,
            "/api/users/me/mfa/passkeys",
            &enrolled.account,
            Some(&json!({ "name": "Laptop", "credential": credential })),
        )
        .fails(400)
        .await;
    }
    let status = app
        .call(Method::GET, "/api/users/me/mfa", &enrolled.account, None)
        .ok()
        .await;
    assert_eq!(status["passkeys"], json!([]));
    assert_eq!(status["amr"], json!(["pwd", "otp"]));
}
