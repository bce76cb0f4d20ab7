//! `nats.conf`: least privilege per user, proven against a real server.

use std::time::Duration;

use async_nats::ConnectOptions;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::helpers::{Options, spawn_app, spawn_app_with};

/// Waits for the server to report a permissions violation naming `what`.
async fn expect_violation(errors: &mut UnboundedReceiver<String>, what: &str) {
    let found = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(e) = errors.recv().await {
            if e.to_lowercase().contains("permissions violation") && e.contains(what) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "no permissions violation for {what}");
}

#[tokio::test]
async fn anonymous_connections_and_wrong_passwords_are_refused() {
    let app = spawn_app_with(Options::without_workers()).await;
    let anonymous = ConnectOptions::new().connect(app.nats.url()).await;
    assert!(anonymous.is_err(), "anonymous connection accepted");
    let wrong = ConnectOptions::with_user_and_password("ops".into(), "wrong".into())
        .connect(app.nats.url())
        .await;
    assert!(wrong.is_err(), "wrong password accepted");
}

#[tokio::test]
async fn the_gateway_may_not_listen_to_service_subjects_or_other_inboxes() {
    let app = spawn_app_with(Options::without_workers()).await;
    let (gateway, mut errors) = app.nats.connect_as("gateway").await.unwrap();
    for subject in ["auth.>", ">", "auth.login", "_INBOX_ops.>"] {
        let _sub = gateway.subscribe(subject).await.unwrap();
        gateway.flush().await.unwrap();
        expect_violation(&mut errors, &format!("\"{subject}\"")).await;
    }
}

#[tokio::test]
async fn a_worker_may_not_publish_into_another_services_subjects() {
    let app = spawn_app_with(Options::without_workers()).await;
    let (auth, mut auth_errors) = app.nats.connect_as("auth-worker").await.unwrap();
    auth.publish("user.get", "{}".into()).await.unwrap();
    auth.flush().await.unwrap();
    expect_violation(&mut auth_errors, "user.get").await;

    let (user, mut user_errors) = app.nats.connect_as("user-worker").await.unwrap();
    user.publish("auth.create_user", "{}".into()).await.unwrap();
    user.flush().await.unwrap();
    expect_violation(&mut user_errors, "auth.create_user").await;
}

#[tokio::test]
async fn a_worker_may_subscribe_only_to_its_own_subjects_in_its_queue_group() {
    let app = spawn_app_with(Options::without_workers()).await;
    let (auth, mut errors) = app.nats.connect_as("auth-worker").await.unwrap();
    // Without the queue group, with a wildcard, or another service's subject.
    let _plain = auth.subscribe("auth.login").await.unwrap();
    auth.flush().await.unwrap();
    expect_violation(&mut errors, "\"auth.login\"").await;
    for subject in [">", "auth.>", "$SRV.>", "user.get"] {
        let _sub = auth
            .queue_subscribe(subject, "auth-worker".into())
            .await
            .unwrap();
        auth.flush().await.unwrap();
        expect_violation(&mut errors, &format!("\"{subject}\"")).await;
    }
    let _other_group = auth
        .queue_subscribe("auth.login", "thieves".into())
        .await
        .unwrap();
    auth.flush().await.unwrap();
    expect_violation(&mut errors, "\"auth.login\"").await;
}

#[tokio::test]
async fn ops_reads_a_user_with_get_user_and_pings_services_but_cannot_write() {
    let app = spawn_app().await;
    app.signup_ok("a@example.com").await;
    let (ops, mut errors) = app.nats.connect_as("ops").await.unwrap();

    // What `nats req auth.get_user '{"email":"a@example.com"}'` does.
    let reply = ops
        .request("auth.get_user", r#"{"email":"a@example.com"}"#.into())
        .await
        .unwrap();
    let user: Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(user["email"], "a@example.com");
    assert!(user.get("passwordHash").is_none() && user.get("password").is_none());

    // An unknown user: error headers and the JSON error body.
    let reply = ops
        .request("auth.get_user", r#"{"email":"nobody@example.com"}"#.into())
        .await
        .unwrap();
    let headers = reply.headers.unwrap();
    assert_eq!(
        headers.get("Nats-Service-Error-Code").unwrap().as_str(),
        "404"
    );
    assert_eq!(
        headers.get("Nats-Service-Error").unwrap().as_str(),
        "user not found"
    );
    let body: Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(body["statusCode"], 404);

    // The service API answers ops.
    let pong: Value = serde_json::from_slice(
        &ops.request("$SRV.PING.auth-worker", "".into())
            .await
            .unwrap()
            .payload,
    )
    .unwrap();
    assert_eq!(pong["name"], "auth-worker");

    // Writing subjects are not for ops.
    ops.publish("auth.create_user", json!({}).to_string().into())
        .await
        .unwrap();
    ops.flush().await.unwrap();
    expect_violation(&mut errors, "auth.create_user").await;
}

/// The gateway takes each service's replies under its own inbox prefix
/// (`_INBOX_gateway.<service>.`), and a worker may publish only under its
/// own: a compromised user-worker cannot answer `auth.*` requests (and hand
/// the gateway its own token key as the answer to `auth.jwks`).
#[tokio::test]
async fn a_worker_may_not_answer_requests_meant_for_another_service() {
    use futures::StreamExt;

    let app = spawn_app_with(Options::without_workers()).await;
    // A reply inbox as the gateway's connection to the auth-worker makes them.
    let (gateway, _) = app.nats.connect_as("gateway").await.unwrap();
    let inbox = "_INBOX_gateway.auth-worker.test.1";
    let mut replies = gateway.subscribe(inbox).await.unwrap();
    gateway.flush().await.unwrap();

    let (user, mut user_errors) = app.nats.connect_as("user-worker").await.unwrap();
    user.publish(inbox, r#"{"keys":[]}"#.into()).await.unwrap();
    user.flush().await.unwrap();
    expect_violation(&mut user_errors, inbox).await;

    // The auth-worker may answer there; the user-worker's message never
    // arrived (it would be first: one subscriber sees messages in order).
    let (auth, _) = app.nats.connect_as("auth-worker").await.unwrap();
    auth.publish(inbox, "from auth-worker".into())
        .await
        .unwrap();
    auth.flush().await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), replies.next())
        .await
        .expect("the auth-worker's reply arrives")
        .unwrap();
    assert_eq!(&first.payload[..], b"from auth-worker");

    // And the other way round: the auth-worker cannot answer the gateway's
    // `user.*` requests.
    let (auth, mut auth_errors) = app.nats.connect_as("auth-worker").await.unwrap();
    auth.publish("_INBOX_gateway.user-worker.test.1", "{}".into())
        .await
        .unwrap();
    auth.flush().await.unwrap();
    expect_violation(&mut auth_errors, "_INBOX_gateway.user-worker.test.1").await;
}

/// `auth.keys_changed` makes every gateway fetch the key set again: only
/// the auth-worker may publish it, and the gateway may listen.
#[tokio::test]
async fn only_the_auth_worker_may_announce_that_its_keys_changed() {
    use futures::StreamExt;

    let app = spawn_app_with(Options::without_workers()).await;
    let subject = shared::auth::KEYS_CHANGED;
    let (gateway, mut gateway_errors) = app.nats.connect_as("gateway").await.unwrap();
    let mut notices = gateway.subscribe(subject).await.unwrap();
    gateway.flush().await.unwrap();

    for user in ["user-worker", "ops"] {
        let (client, mut errors) = app.nats.connect_as(user).await.unwrap();
        client.publish(subject, "".into()).await.unwrap();
        client.flush().await.unwrap();
        expect_violation(&mut errors, subject).await;
    }
    gateway.publish(subject, "".into()).await.unwrap();
    gateway.flush().await.unwrap();
    expect_violation(&mut gateway_errors, subject).await;

    // The auth-worker's notice arrives, and it is the first.
    let (auth, _) = app.nats.connect_as("auth-worker").await.unwrap();
    auth.publish(subject, "from auth-worker".into())
        .await
        .unwrap();
    auth.flush().await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), notices.next())
        .await
        .expect("the auth-worker's notice arrives")
        .unwrap();
    assert_eq!(&first.payload[..], b"from auth-worker");
}
