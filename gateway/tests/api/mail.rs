//! The mail-worker on the stack: an event in AUTH_EVENTS becomes a mail
//! caught by the real SMTP server, or, after every try failed, a dead
//! letter in MAIL_DEAD. (The flows that make the events — sign-up, reset,
//! email change — are tested with their routes.)

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use shared::events::{Envelope, Event, STREAM, SUBJECTS};
use testkit::eventually;

use crate::helpers::{TestApp, spawn_app};

/// Publishes `event` to AUTH_EVENTS as the auth-worker's relay does (the
/// stream made first if the auth-worker has not yet), with the envelope id
/// as `Nats-Msg-Id`.
async fn publish(app: &TestApp, event: Event) -> Envelope {
    let (client, _) = app
        .nats
        .connect_as("auth-worker")
        .await
        .expect("auth-worker connects");
    let js = jetstream::new(client);
    js.get_or_create_stream(stream::Config {
        name: STREAM.into(),
        subjects: vec![SUBJECTS.into()],
        ..Default::default()
    })
    .await
    .expect("the stream AUTH_EVENTS");
    let envelope = Envelope::new(event);
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", envelope.id.to_string().as_str());
    js.publish_with_headers(
        envelope.subject(),
        headers,
        serde_json::to_vec(&envelope).unwrap().into(),
    )
    .await
    .expect("publish")
    .await
    .expect("stored in AUTH_EVENTS");
    envelope
}

/// The messages of a stream, as `nats stream info` shows them (as ops).
async fn stream_messages(app: &TestApp, name: &str) -> u64 {
    let (ops, _) = app.nats.connect_as("ops").await.expect("ops connects");
    let stream = jetstream::new(ops)
        .get_stream_no_info(name)
        .await
        .expect("stream");
    stream
        .get_info()
        .await
        .map(|i| i.state.messages)
        .unwrap_or(0)
}

#[tokio::test]
async fn an_event_becomes_a_mail_whose_message_id_names_the_event() {
    let mut app = spawn_app().await;
    app.start_mail_worker().await;
    // Listed by the service API (`nats micro ls`), though it serves nothing.
    let info = app.service_api("$SRV.INFO.mail-worker").await;
    assert_eq!(info["name"], "mail-worker");

    // An event without a mail is acknowledged and sends nothing.
    publish(
        &app,
        Event::UserCreated {
            user_id: 7,
            email: "quiet@example.com".into(),
        },
    )
    .await;
    let envelope = publish(
        &app,
        Event::PasswordChanged {
            user_id: 7,
            email: "ann@example.com".into(),
        },
    )
    .await;
    let mail = app
        .mail()
        .wait_for("ann@example.com", "password was changed")
        .await;
    assert_eq!(
        mail.message_id,
        format!("{}.password_changed@localhost", envelope.id)
    );
    assert!(mail.raw.contains("Auto-Submitted: auto-generated"));
    assert!(mail.text.contains("ann@example.com"), "{}", mail.text);
    assert!(mail.html.contains("<strong>ann@example.com</strong>"));
    assert_eq!(app.mail().messages().len(), 1);
}

#[tokio::test]
async fn a_mail_that_fails_every_try_is_kept_in_mail_dead_and_acknowledged() {
    let mut app = spawn_app().await;
    app.start_mail_worker_with(|s| {
        s.consumer.max_deliver = 2;
        s.consumer.backoff_secs = vec![1];
    })
    .await;
    // The SMTP server is down for good.
    app.mail_mut().stop().await;
    publish(
        &app,
        Event::PasswordChanged {
            user_id: 8,
            email: "bob@example.com".into(),
        },
    )
    .await;
    let app = &app;
    let kept = eventually(
        Duration::from_secs(20),
        Duration::from_millis(100),
        || async move { stream_messages(app, "MAIL_DEAD").await == 1 },
    )
    .await;
    assert!(kept, "no dead letter in MAIL_DEAD");
    let (ops, _) = app.nats.connect_as("ops").await.expect("ops connects");
    let consumer: jetstream::consumer::PullConsumer = jetstream::new(ops)
        .get_stream_no_info(STREAM)
        .await
        .unwrap()
        .get_consumer("mail-worker")
        .await
        .expect("the durable consumer");
    let consumer = &consumer;
    let settled = eventually(
        Duration::from_secs(10),
        Duration::from_millis(100),
        || async {
            consumer
                .get_info()
                .await
                .is_ok_and(|i| i.num_ack_pending == 0 && i.num_pending == 0)
        },
    )
    .await;
    assert!(
        settled,
        "the event was not acknowledged after its dead letter"
    );
}

/// A change of address, end to end through the mail: the old address is
/// told (with no way to stop it), the new one gets the link, following it
/// switches the address, and both are told it changed.
#[tokio::test]
async fn a_change_of_address_mails_the_old_address_and_the_new_ones_link_switches_it() {
    let mut app = spawn_app().await;
    app.start_mail_worker().await;
    app.signup_ok("ada@example.com").await;
    let token = app.access_token("ada@example.com").await;
    let body =
        serde_json::json!({"email": "ada@example.org", "currentPassword": testkit::PASSWORD});
    let reply = app
        .call(
            reqwest::Method::POST,
            "/api/users/me/email",
            token.as_str(),
            Some(&body),
        )
        .send()
        .await;
    assert_eq!(reply.status(), 202);

    let notice = app
        .mail()
        .wait_for("ada@example.com", "Your email address is being changed")
        .await;
    assert!(
        notice.text.contains("ada@example.org"),
        "the notice names the new address: {}",
        notice.text
    );
    assert_eq!(notice.link("/verify"), None, "the old address gets no link");
    let confirm = app
        .mail()
        .wait_for("ada@example.org", "Confirm your new email address")
        .await;
    let link_token = confirm.token("/verify").expect("a confirmation link");
    // Nothing changed until the link is followed.
    let me = app
        .call(reqwest::Method::GET, "/api/users/me", token.as_str(), None)
        .send()
        .await;
    assert_eq!(
        me.json::<serde_json::Value>().await.unwrap()["email"],
        "ada@example.com"
    );

    let verified = app
        .post(
            "/api/auth/verify",
            &serde_json::json!({"token": link_token}),
        )
        .await;
    assert_eq!(verified.status(), 200);
    let user: serde_json::Value = verified.json().await.unwrap();
    assert_eq!(
        (user["email"].as_str(), user["emailVerified"].as_bool()),
        (Some("ada@example.org"), Some(true))
    );
    for to in ["ada@example.com", "ada@example.org"] {
        app.mail()
            .wait_for(to, "Your email address was changed")
            .await;
    }
}
