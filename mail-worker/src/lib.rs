//! The mail worker: the mails of security events, sent over SMTP.
//!
//! * [`worker`] pulls the stream `AUTH_EVENTS` through the one durable
//!   consumer `mail-worker` that every copy shares (explicit acks, bounded
//!   deliveries, a nak with back-off after a failure), and keeps a mail that
//!   failed every try in the stream `MAIL_DEAD`.
//! * [`mails`] says which mails each event kind asks for.
//! * [`templates`] renders them (text and HTML, a folder per locale, English
//!   as fallback); [`smtp`] hands them to the SMTP server with lettre.
//! * [`run`] takes its settings and a shutdown future, like the other
//!   workers, so tests run it in-process. It serves no requests, but
//!   registers with the NATS service API so that `nats micro ls` lists
//!   every running copy.

pub mod mails;
pub mod settings;
pub mod smtp;
pub mod templates;
pub mod worker;

use std::{future::Future, sync::Arc, time::Duration};

use anyhow::Context;
use async_nats::service::ServiceExt;
use runtime::rpc::Rpc;
use shared::Endpoint;

pub use settings::Settings;

/// The worker's name: its NATS user, its service and its durable consumer.
pub const NAME: &str = "mail-worker";

/// Consumes events until `shutdown` resolves, then finishes the mails in
/// hand and returns.
pub async fn run(
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let templates = templates::Templates::load(settings.mail.templates_dir.as_deref())?;
    let mailer = smtp::Mailer::new(&settings.smtp, &settings.mail.from)?;
    let client = runtime::nats::connect(&settings.nats, NAME).await?;
    let service = client
        .service_builder()
        .description("Sends the mails of security events (consumes AUTH_EVENTS)")
        .start(NAME, env!("CARGO_PKG_VERSION"))
        .await
        .map_err(|e| anyhow::anyhow!("registering with the NATS service API: {e}"))?;
    // The token request waits at most as long as a send may.
    let timeout = Duration::from_millis(settings.smtp.timeout_ms);
    let rpc = Rpc::new(
        [(
            <shared::auth::IssueMailToken as Endpoint>::SERVICE,
            client.clone(),
        )],
        timeout,
    );
    let worker = Arc::new(worker::Worker {
        settings,
        templates,
        mailer,
        rpc,
        jetstream: async_nats::jetstream::new(client.clone()),
    });
    worker
        .dead_letter_stream()
        .await
        .context("the dead-letter stream")?;
    worker::consume(Arc::clone(&worker), shutdown).await;
    if let Err(e) = service.stop().await {
        tracing::warn!(error = %e, "leaving the NATS service API");
    }
    client.flush().await.context("flushing the last acks")?;
    tracing::info!("stopped");
    Ok(())
}
