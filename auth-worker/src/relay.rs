//! The outbox relay: publishes the rows of `outbox` to the JetStream stream
//! `AUTH_EVENTS`, in id order, each with its id as `Nats-Msg-Id`, and marks
//! a row published only once the stream acknowledged it. A relay that dies
//! between the two publishes the row again; the stream stores it once
//! (its duplicate window), so no event is lost and none is doubled.
//!
//! One copy relays at a time: the one holding the session-level advisory
//! lock `natsauth.relay` on a connection of its own (a copy that dies
//! releases it with its connection). The others try again every
//! `events.standby_retry_ms`. The relay wakes on the database's notice of a
//! new row (`natsauth_outbox`, sent by the outbox's trigger), and looks
//! every `events.poll_interval_ms` anyway, in case a notice was missed.

use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::{self, stream};
use shared::events::{STREAM, SUBJECT_PREFIX, SUBJECTS};
use sqlx::{Connection, PgConnection, postgres::PgListener};

use crate::{AppState, db::outbox};

/// The advisory lock only the relaying copy holds.
const LOCK: &str = "natsauth.relay";
/// The channel the outbox's trigger notifies.
const CHANNEL: &str = "natsauth_outbox";
/// The longest wait after a failure.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Relays forever, whenever this copy holds the lock (it makes or updates
/// the stream first). Failures are logged and retried with a growing
/// pause; nothing is marked published that the stream did not acknowledge.
pub async fn run(state: AppState, client: async_nats::Client) {
    let js = jetstream::new(client);
    let mut backoff = Duration::from_millis(200);
    loop {
        match relay(&state, &js).await {
            Ok(()) => backoff = Duration::from_millis(200),
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), "event relay failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// The stream as the settings describe it.
fn stream_config(state: &AppState) -> stream::Config {
    let events = &state.settings.events;
    stream::Config {
        name: STREAM.to_owned(),
        subjects: vec![SUBJECTS.to_owned()],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::Old,
        max_age: Duration::from_secs(events.stream_max_age_secs),
        max_bytes: events.stream_max_bytes,
        duplicate_window: Duration::from_secs(events.duplicate_window_secs),
        ..Default::default()
    }
}

/// One spell: returns `Ok` when another copy holds the lock (after
/// waiting a standby interval), an error when something failed.
async fn relay(state: &AppState, js: &jetstream::Context) -> anyhow::Result<()> {
    let mut lock = PgConnection::connect_with(&state.settings.database.connect_options()?)
        .await
        .context("connecting for the relay lock")?;
    let got: bool = sqlx::query_scalar("select pg_try_advisory_lock(hashtext($1))")
        .bind(LOCK)
        .fetch_one(&mut lock)
        .await?;
    if !got {
        lock.close().await.ok();
        let standby = Duration::from_millis(state.settings.events.standby_retry_ms.max(100));
        tokio::time::sleep(standby).await;
        return Ok(());
    }
    let relayed = match js.create_or_update_stream(stream_config(state)).await {
        Ok(_) => {
            tracing::info!("relaying events");
            relay_locked(state, js, &mut lock).await
        }
        Err(e) => Err(anyhow::Error::new(e).context("making the stream AUTH_EVENTS")),
    };
    // Closing the connection releases the lock, whatever happened.
    lock.close().await.ok();
    relayed
}

/// Publishes pending rows until something fails. The rows are read and
/// marked on `lock`, the connection that holds the lock: if it is lost, the
/// next mark fails and this copy stops relaying.
async fn relay_locked(
    state: &AppState,
    js: &jetstream::Context,
    lock: &mut PgConnection,
) -> anyhow::Result<()> {
    let mut listener = PgListener::connect_with(&state.db).await?;
    listener.listen(CHANNEL).await?;
    let poll = Duration::from_millis(state.settings.events.poll_interval_ms.max(10));
    let batch = state.settings.events.batch_size.max(1);
    loop {
        let rows = outbox::pending(&mut *lock, batch).await?;
        if rows.is_empty() {
            metrics::gauge!("auth_events_pending").set(0.0);
            // A notice, or the poll interval: either way, look again.
            tokio::select! {
                notice = listener.recv() => { notice?; }
                () = tokio::time::sleep(poll) => {}
            }
            continue;
        }
        let full = rows.len() as i64 == batch;
        let published = publish(js, &rows).await;
        let acked: Vec<uuid::Uuid> = rows
            .iter()
            .take(match &published {
                Ok(()) => rows.len(),
                Err((acked, _)) => *acked,
            })
            .map(|r| r.id)
            .collect();
        if !acked.is_empty() {
            outbox::mark_published(&mut *lock, &acked).await?;
            metrics::counter!("auth_events_relayed_total").increment(acked.len() as u64);
        }
        if let Err((_, e)) = published {
            return Err(e);
        }
        if full {
            let pending = outbox::pending_count(&mut *lock).await?;
            metrics::gauge!("auth_events_pending").set(pending as f64);
        }
    }
}

/// Publishes `rows` in order (all sent before any acknowledgement is
/// awaited), then awaits their acknowledgements in order. On failure, how
/// many were acknowledged before it.
async fn publish(
    js: &jetstream::Context,
    rows: &[outbox::Pending],
) -> Result<(), (usize, anyhow::Error)> {
    let mut acks = Vec::with_capacity(rows.len());
    for row in rows {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", row.id.to_string().as_str());
        let subject = format!("{SUBJECT_PREFIX}.{}", row.kind);
        match js
            .publish_with_headers(subject, headers, row.payload.clone().into_bytes().into())
            .await
        {
            Ok(ack) => acks.push(ack),
            Err(e) => {
                // Nothing awaited yet: count the ones already stored.
                let stored = await_in_order(acks).await;
                return Err((stored, anyhow::Error::new(e).context("publishing an event")));
            }
        }
    }
    let total = acks.len();
    let stored = await_in_order(acks).await;
    if stored == total {
        Ok(())
    } else {
        Err((
            stored,
            anyhow::anyhow!("the stream did not acknowledge an event"),
        ))
    }
}

/// Awaits acknowledgements in order; how many, from the first, arrived.
async fn await_in_order(acks: Vec<jetstream::context::PublishAckFuture>) -> usize {
    let mut stored = 0;
    for ack in acks {
        if let Err(e) = ack.await {
            tracing::warn!(error = %e, "an event was not acknowledged");
            break;
        }
        stored += 1;
    }
    stored
}
