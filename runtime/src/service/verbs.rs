//! The service API's verbs: `$SRV.PING`, `$SRV.INFO` and `$SRV.STATS`, for
//! all services, by name and by id, so `nats micro ls/info/stats` see every
//! copy of a worker.

use std::sync::{Arc, Mutex};

use async_nats::{
    Client, Subscriber,
    service::{Info, PingResponse, Stats, endpoint},
};
use futures::{StreamExt, stream};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// Answers `$SRV.PING`, `$SRV.INFO` and `$SRV.STATS`.
pub(super) struct VerbResponder {
    pub(super) client: Client,
    pub(super) info: Info,
    pub(super) started: OffsetDateTime,
    pub(super) stats: Arc<Mutex<Vec<endpoint::Stats>>>,
}

#[derive(Clone, Copy)]
pub(super) enum Verb {
    Ping,
    Info,
    Stats,
}

impl VerbResponder {
    pub(super) async fn subscribe(&self) -> anyhow::Result<Vec<(Verb, Subscriber)>> {
        let mut subs = Vec::new();
        for (verb, word) in [
            (Verb::Ping, "PING"),
            (Verb::Info, "INFO"),
            (Verb::Stats, "STATS"),
        ] {
            for subject in [
                format!("$SRV.{word}"),
                format!("$SRV.{word}.{}", self.info.name),
                format!("$SRV.{word}.{}.{}", self.info.name, self.info.id),
            ] {
                subs.push((verb, self.client.subscribe(subject).await?));
            }
        }
        Ok(subs)
    }

    pub(super) async fn run(self, subs: Vec<(Verb, Subscriber)>, stop: CancellationToken) {
        let mut all = stream::select_all(
            subs.into_iter()
                .map(|(verb, sub)| sub.map(move |m| (verb, m)).boxed()),
        );
        loop {
            let (verb, message) = tokio::select! {
                next = all.next() => match next { Some(n) => n, None => break },
                () = stop.cancelled() => break,
            };
            let Some(reply) = message.reply else { continue };
            let body = match verb {
                Verb::Ping => serde_json::to_vec(&PingResponse {
                    kind: "io.nats.micro.v1.ping_response".into(),
                    name: self.info.name.clone(),
                    id: self.info.id.clone(),
                    version: self.info.version.clone(),
                    metadata: self.info.metadata.clone(),
                }),
                Verb::Info => serde_json::to_vec(&self.info),
                Verb::Stats => {
                    let endpoints = self.stats.lock().map(|s| s.clone()).unwrap_or_default();
                    serde_json::to_vec(&Stats {
                        kind: "io.nats.micro.v1.stats_response".into(),
                        name: self.info.name.clone(),
                        id: self.info.id.clone(),
                        version: self.info.version.clone(),
                        started: self.started,
                        endpoints,
                    })
                }
            };
            match body {
                Ok(body) => {
                    if let Err(e) = self.client.publish(reply, body.into()).await {
                        warn!(error = %e, "service API reply not published");
                    }
                }
                Err(e) => warn!(error = %e, "service API reply does not serialize"),
            }
        }
    }
}
