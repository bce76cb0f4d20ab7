//! Events: written with their change, relayed to `AUTH_EVENTS` once each,
//! with the outbox id as `Nats-Msg-Id`, by one auth-worker at a time.

use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull};
use futures::StreamExt;
use serde_json::{Value, json};
use shared::events::{Envelope, Event, RequestedBy};

use super::{all_published, event, events};
use crate::helpers::{TestApp, spawn_app};

/// Reads `count` events from `AUTH_EVENTS` as the mail-worker does: its
/// durable pull consumer (made here if missing), acknowledging each. Each
/// message as (its `Nats-Msg-Id`, its payload).
async fn read_stream(app: &TestApp, count: usize) -> Vec<(String, Value)> {
    let (mail, _) = app.nats.connect_as("mail-worker").await.unwrap();
    let js = jetstream::new(mail);
    let stream = js.get_stream_no_info(shared::events::STREAM).await.unwrap();
    let consumer = stream
        .get_or_create_consumer(
            "mail-worker",
            pull::Config {
                durable_name: Some("mail-worker".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut read = Vec::new();
    let mut messages = consumer
        .stream()
        .expires(Duration::from_secs(1))
        .messages()
        .await
        .unwrap();
    while read.len() < count {
        let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("an event in time")
            .unwrap()
            .unwrap();
        let id = message
            .headers
            .as_ref()
            .unwrap()
            .get("Nats-Msg-Id")
            .unwrap();
        read.push((
            id.as_str().to_owned(),
            serde_json::from_slice(&message.payload).unwrap(),
        ));
        message.ack().await.unwrap();
    }
    read
}

#[tokio::test]
async fn a_sign_up_writes_its_events_and_they_reach_the_stream_under_their_outbox_ids() {
    let app = spawn_app().await;
    let user = app.signup_ok("ada@example.com").await;
    let id = user["id"].as_i64().unwrap();
    let created = event(&app, "user.created", id).await;
    let requested = event(&app, "email.verification_requested", id).await;
    for e in [&created, &requested] {
        let envelope: Envelope = serde_json::from_value(e.clone()).unwrap();
        assert_eq!(envelope.event.user_id(), id);
    }
    assert_eq!(requested["email"], "ada@example.com");
    assert!(requested["tokenId"].is_string(), "{requested}");
    // Only the row's id: the token itself is made when the mail is sent.
    let hash: Option<Vec<u8>> = sqlx::query_scalar("select token_hash from email_tokens")
        .fetch_one(&app.db.pool().await)
        .await
        .unwrap();
    assert_eq!(hash, None);

    all_published(&app).await;
    let read = read_stream(&app, 2).await;
    assert_eq!(read[0].0, created["id"].as_str().unwrap());
    assert_eq!(read[1].0, requested["id"].as_str().unwrap());
    assert_eq!(read[0].1, created);
    assert_eq!(read[1].1, requested);
}

#[tokio::test]
async fn the_reset_request_built_in_sql_is_an_envelope_like_any_other() {
    let app = spawn_app().await;
    let id = app.signup_ok("bob@example.com").await["id"]
        .as_i64()
        .unwrap();
    let (status, reply) = app
        .nats_request("auth.recover", None, &json!({"email": "Bob@Example.com"}))
        .await;
    assert_eq!((status, reply), (None, json!({})));
    let e = event(&app, "password.reset_requested", id).await;
    let envelope: Envelope = serde_json::from_value(e.clone()).unwrap();
    let token_id: uuid::Uuid =
        sqlx::query_scalar("select id from email_tokens where purpose = 'reset'")
            .fetch_one(&app.db.pool().await)
            .await
            .unwrap();
    assert_eq!(
        envelope.event,
        Event::PasswordResetRequested {
            user_id: id,
            email: "bob@example.com".into(),
            token_id,
            requested_by: RequestedBy::User,
        }
    );
}

#[tokio::test]
async fn with_two_auth_workers_one_relays_and_the_stream_holds_each_event_once() {
    let mut app = spawn_app().await;
    app.start_auth_worker();
    for n in 0..5 {
        app.signup_ok(&format!("u{n}@example.com")).await;
    }
    all_published(&app).await;
    let pool = app.db.pool().await;
    let relays: i64 = sqlx::query_scalar(
        "select count(*) from pg_locks where locktype = 'advisory' and granted
           and database = (select oid from pg_database where datname = current_database())
           and objid::bigint = (hashtext('natsauth.relay')::bigint & 4294967295)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    // (Other tests' databases have relays of their own: this one's only.)
    assert_eq!(relays, 1, "exactly one auth-worker holds the relay's lock");
    let rows: i64 = sqlx::query_scalar("select count(*) from outbox")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 10);
    let (ops, _) = app.nats.connect_as("ops").await.unwrap();
    let mut stream = jetstream::new(ops)
        .get_stream(shared::events::STREAM)
        .await
        .unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, rows as u64);
}

#[tokio::test]
async fn role_changes_and_deletions_from_the_user_worker_are_events() {
    let app = spawn_app().await;
    let boss = app.admin_account("boss@example.com").await;
    let ann = app.account("ann@example.com").await;
    let admin = Some((boss.id, shared::Role::Admin));
    let (status, _) = app
        .nats_request(
            "user.update",
            admin,
            &json!({"id": ann.id, "role": "ADMIN"}),
        )
        .await;
    assert_eq!(status, None);
    let (status, _) = app
        .nats_request("user.update", admin, &json!({"id": ann.id, "role": "USER"}))
        .await;
    assert_eq!(status, None);
    let changes = events(&app, "role.changed", ann.id).await;
    assert_eq!(
        changes
            .iter()
            .map(|e| (e["from"].clone(), e["to"].clone()))
            .collect::<Vec<_>>(),
        [
            (json!("USER"), json!("ADMIN")),
            (json!("ADMIN"), json!("USER"))
        ]
    );
    let revoked = event(&app, "session.revoked", ann.id).await;
    assert_eq!(revoked["reason"], "role_changed");
    let (status, _) = app
        .nats_request("user.delete", admin, &json!({"id": ann.id}))
        .await;
    assert_eq!(status, None);
    let deleted = event(&app, "user.deleted", ann.id).await;
    assert_eq!(deleted["email"], "ann@example.com");
    all_published(&app).await;
}
