//! The consumer loop: events in, mails out, each event acknowledged only
//! once all its mails are handed over (or kept as dead letters).
//!
//! Delivery is at least once: a copy killed after sending and before the
//! ack, or a mail of an event that failed after another of its mails went
//! out, is sent again on the next delivery, with the same `Message-ID`.

use std::{future::Future, sync::Arc, time::Duration};

use anyhow::Context;
use async_nats::{
    HeaderMap,
    jetstream::{
        self, AckKind,
        consumer::{AckPolicy, PullConsumer, pull},
        stream,
    },
};
use futures::StreamExt;
use runtime::rpc::{CallError, Rpc};
use serde_json::json;
use shared::{
    Endpoint, RequestContext,
    auth::{IssueMailToken, MailTokenRequest},
    events::{Envelope, STREAM},
};
use time::{OffsetDateTime, macros::format_description};
use tokio::{sync::Semaphore, task::JoinSet};
use tracing::{error, info, warn};

use crate::{
    Settings,
    mails::{Mail, mails},
    smtp::{Mailer, SendError},
    templates::Templates,
};

/// The durable consumer all copies share.
pub const CONSUMER: &str = "mail-worker";
/// The stream of mails that failed every try.
pub const DEAD_STREAM: &str = "MAIL_DEAD";
/// Its subjects: `mail.dead.<mail>`.
pub const DEAD_SUBJECTS: &str = "mail.dead.>";

/// What handling one event needs.
#[derive(Debug)]
pub struct Worker {
    pub settings: Settings,
    pub templates: Templates,
    pub mailer: Mailer,
    pub rpc: Rpc,
    pub jetstream: jetstream::Context,
}

/// What became of one mail.
enum Outcome {
    Sent,
    /// Its link is void (spent, voided or expired): not worth sending.
    Void,
}

impl Worker {
    /// Makes or brings up to date the stream MAIL_DEAD.
    pub async fn dead_letter_stream(&self) -> anyhow::Result<()> {
        let settings = &self.settings.dead_letters;
        let config = stream::Config {
            name: DEAD_STREAM.into(),
            subjects: vec![DEAD_SUBJECTS.into()],
            description: Some("Mails the mail-worker failed to send on every try".into()),
            max_age: Duration::from_secs(settings.max_age_days * 24 * 3600),
            max_bytes: settings.max_bytes,
            storage: stream::StorageType::File,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        };
        match self.jetstream.get_stream(DEAD_STREAM).await {
            Ok(_) => {
                self.jetstream
                    .update_stream(config)
                    .await
                    .context("updating the stream MAIL_DEAD")?;
            }
            Err(_) => {
                self.jetstream
                    .create_stream(config)
                    .await
                    .context("creating the stream MAIL_DEAD")?;
            }
        }
        Ok(())
    }

    /// The durable consumer, made or brought up to date; waits while the
    /// stream does not exist (the auth-worker makes it).
    pub async fn consumer(&self) -> PullConsumer {
        let settings = &self.settings.consumer;
        let config = pull::Config {
            durable_name: Some(CONSUMER.into()),
            description: Some("Sends the mails of security events".into()),
            ack_policy: AckPolicy::Explicit,
            ack_wait: Duration::from_secs(settings.ack_wait_secs),
            max_deliver: settings.max_deliver,
            ..Default::default()
        };
        loop {
            match self
                .jetstream
                .create_consumer_on_stream(config.clone(), STREAM)
                .await
            {
                Ok(consumer) => return consumer,
                Err(e) => {
                    warn!(
                        stream = STREAM,
                        error = %e,
                        retry_ms = settings.retry_ms,
                        "cannot bind the durable consumer yet (the auth-worker makes the \
                         stream when it starts); trying again"
                    );
                    tokio::time::sleep(Duration::from_millis(settings.retry_ms)).await;
                }
            }
        }
    }

    /// Handles one delivery of an event: its mails sent, then the ack; or a
    /// nak with the back-off after a transient failure; or, on the last
    /// delivery, the failed mails kept in MAIL_DEAD and the ack.
    pub async fn handle(&self, message: jetstream::Message) {
        let delivered = message.info().map(|i| i.delivered).unwrap_or(1);
        let last = delivered >= self.settings.consumer.max_deliver;
        let envelope: Envelope = match serde_json::from_slice(&message.payload) {
            Ok(envelope) => envelope,
            Err(e) => {
                let id = message
                    .info()
                    .map(|i| format!("seq-{}", i.stream_sequence))
                    .unwrap_or_else(|_| uuid::Uuid::new_v4().to_string());
                error!(subject = %message.subject, error = %e, "an event that does not decode");
                let letter = json!({
                    "subject": message.subject.as_str(),
                    "payload": String::from_utf8_lossy(&message.payload),
                    "error": e.to_string(),
                });
                self.settle(&message, self.dead_letter("undecodable", &id, letter).await)
                    .await;
                return;
            }
        };
        let mut retry = false;
        let mut kept = true;
        for mail in mails(&envelope) {
            match self.send(&envelope, &mail).await {
                Ok(Outcome::Sent) => {
                    metrics::counter!("mails_sent_total", "mail" => mail.name).increment(1);
                    info!(event = %envelope.id, mail = mail.name, delivered, "mail sent");
                }
                Ok(Outcome::Void) => {
                    metrics::counter!("mail_void_links_total", "mail" => mail.name).increment(1);
                    info!(
                        event = %envelope.id,
                        mail = mail.name,
                        "not sent: its link was already spent, voided or expired"
                    );
                }
                Err(failure) => {
                    metrics::counter!("mail_send_failures_total", "mail" => mail.name).increment(1);
                    let permanent = matches!(failure, SendError::Permanent(_));
                    warn!(
                        event = %envelope.id,
                        mail = mail.name,
                        delivered,
                        permanent,
                        error = %failure,
                        "mail not sent"
                    );
                    if permanent || last {
                        let letter = json!({
                            "event": envelope,
                            "mail": mail.name,
                            "to": mail.to,
                            "deliveries": delivered,
                            "error": failure.to_string(),
                        });
                        let id = format!("{}.{}", envelope.id, mail.name);
                        kept &= self.dead_letter(mail.name, &id, letter).await;
                    } else {
                        retry = true;
                    }
                }
            }
        }
        if retry {
            let delay = self.settings.consumer.backoff(delivered);
            if let Err(e) = message.ack_with(AckKind::Nak(Some(delay))).await {
                warn!(event = %envelope.id, error = %e, "nak not sent (redelivered after ack_wait)");
            }
        } else {
            self.settle(&message, kept).await;
        }
    }

    /// Acks when the event is done with (`done`), or asks for it again.
    async fn settle(&self, message: &jetstream::Message, done: bool) {
        let kind = if done {
            AckKind::Ack
        } else {
            AckKind::Nak(Some(self.settings.consumer.backoff(1)))
        };
        if let Err(e) = message.ack_with(kind).await {
            warn!(error = %e, "ack not sent (the event comes again after ack_wait)");
        }
    }

    /// Keeps a failed mail in MAIL_DEAD (deduplicated by `id`); false when
    /// it could not be stored, so the event is not acknowledged.
    async fn dead_letter(&self, mail: &str, id: &str, letter: serde_json::Value) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", id);
        let payload = bytes::Bytes::from(letter.to_string());
        for attempt in 1..=5 {
            let published = match self
                .jetstream
                .publish_with_headers(
                    format!("mail.dead.{mail}"),
                    headers.clone(),
                    payload.clone(),
                )
                .await
            {
                Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match published {
                Ok(()) => {
                    metrics::counter!("mail_dead_letters_total", "mail" => mail.to_owned())
                        .increment(1);
                    error!(id, mail, "mail kept in MAIL_DEAD after failing every try");
                    return true;
                }
                Err(e) => {
                    warn!(id, attempt, error = %e, "storing a dead letter failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        false
    }

    /// Renders and sends one mail, with a fresh token when it has a link.
    async fn send(&self, envelope: &Envelope, mail: &Mail) -> Result<Outcome, SendError> {
        let origin = self.settings.mail.public_origin.trim_end_matches('/');
        let mut context = json!({
            "email": mail.to,
            "origin": origin,
            "occurred_at": when(envelope.occurred_at),
        });
        if let (Some(extra), Some(context)) = (mail.vars.as_object(), context.as_object_mut()) {
            context.extend(extra.clone());
        }
        if let Some(link) = mail.link {
            let request = MailTokenRequest {
                token_id: link.token_id,
            };
            match self
                .rpc
                .call::<IssueMailToken>(&RequestContext::default(), &request)
                .await
            {
                Ok(token) => {
                    context["link"] = format!(
                        "{origin}{}?token={}",
                        link.page.path(),
                        token.token.expose()
                    )
                    .into();
                    context["expires_at"] = when(token.expires_at).into();
                }
                Err(CallError::Service(e)) if e.status_code == 410 => return Ok(Outcome::Void),
                Err(e) => {
                    return Err(SendError::Transient(format!(
                        "{}: {e}",
                        IssueMailToken::SUBJECT
                    )));
                }
            }
        }
        let rendered = self
            .templates
            .render(&self.settings.mail.locale, mail.template, &context)
            .map_err(|e| SendError::Permanent(format!("rendering {}: {e:#}", mail.template)))?;
        let message = self
            .mailer
            .message(envelope.id, mail.name, &mail.to, &rendered)?;
        self.mailer.send(message).await.map(|()| Outcome::Sent)
    }
}

/// A time as mails show it: `2026-12-07 14:20 UTC`.
fn when(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute] UTC"
        ))
        .unwrap_or_default()
}

/// Pulls events until `shutdown`, handling up to `consumer.max_in_flight`
/// at once; then stops pulling, finishes (and acks) the events in hand, and
/// returns. Events pulled but not started come again after `ack_wait`.
pub async fn consume(worker: Arc<Worker>, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    let max = worker.settings.consumer.max_in_flight.max(1);
    let slots = Arc::new(Semaphore::new(max));
    let mut tasks = JoinSet::new();
    'bind: loop {
        let consumer = tokio::select! {
            biased;
            () = &mut shutdown => break 'bind,
            consumer = worker.consumer() => consumer,
        };
        let messages = consumer
            .stream()
            .max_messages_per_batch(max)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await;
        let mut messages = match messages {
            Ok(messages) => messages,
            Err(e) => {
                warn!(error = %e, "pulling from the consumer failed; binding again");
                tokio::time::sleep(Duration::from_millis(worker.settings.consumer.retry_ms)).await;
                continue;
            }
        };
        info!(stream = STREAM, consumer = CONSUMER, "consuming events");
        loop {
            while tasks.try_join_next().is_some() {}
            let slot = tokio::select! {
                biased;
                () = &mut shutdown => break 'bind,
                slot = Arc::clone(&slots).acquire_owned() => slot,
            };
            let Ok(slot) = slot else { break 'bind };
            let next = tokio::select! {
                biased;
                () = &mut shutdown => break 'bind,
                next = messages.next() => next,
            };
            match next {
                Some(Ok(message)) => {
                    let worker = Arc::clone(&worker);
                    tasks.spawn(async move {
                        worker.handle(message).await;
                        drop(slot);
                    });
                }
                Some(Err(e)) => {
                    warn!(error = %e, "pulling events");
                    if matches!(
                        e.kind(),
                        pull::MessagesErrorKind::ConsumerDeleted
                            | pull::MessagesErrorKind::NoResponders
                            | pull::MessagesErrorKind::RequestLimitExceeded
                    ) {
                        tokio::time::sleep(Duration::from_millis(
                            worker.settings.consumer.retry_ms,
                        ))
                        .await;
                        continue 'bind;
                    }
                }
                None => continue 'bind,
            }
        }
    }
    info!(
        in_flight = tasks.len(),
        "draining: finishing the mails in hand"
    );
    while tasks.join_next().await.is_some() {}
}
