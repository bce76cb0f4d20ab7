//! Serving: a loop per endpoint takes its queue subscription's requests,
//! runs each as a task within the service's `max_in_flight` slots (a request
//! beyond them gets a fast 503), replies (an error as the `Nats-Service-Error`
//! headers plus the contract's JSON body), counts it for `$SRV.STATS`, and on
//! shutdown drains: no new request is taken, every one already routed here is
//! answered.

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use async_nats::{
    Client, HeaderMap, Message, Subscriber,
    service::{Info, endpoint},
};
use bytes::Bytes;
use futures::StreamExt;
use shared::{
    RequestContext, ServiceError,
    headers::{NATS_SERVICE_ERROR, NATS_SERVICE_ERROR_CODE},
};
use time::OffsetDateTime;
use tokio::sync::{Semaphore, TryAcquireError};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{Instrument, debug, info, info_span, warn};

use super::{
    ServiceBuilder,
    builder::{EndpointDef, Handler},
    verbs::VerbResponder,
};
use crate::telemetry;

impl<S: Clone + Send + Sync + 'static> ServiceBuilder<S> {
    /// Subscribes every endpoint and the service API verbs, serves until
    /// `shutdown` resolves, then drains: no new request is taken, every request
    /// already routed here is answered, and the replies are flushed.
    pub async fn serve(
        self,
        client: Client,
        shutdown: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let info = Info {
            kind: "io.nats.micro.v1.info_response".into(),
            name: self.name.into(),
            id: id.clone(),
            description: self.description.clone(),
            version: self.version.clone(),
            metadata: HashMap::new(),
            endpoints: self
                .endpoints
                .iter()
                .map(|e| endpoint::Info {
                    name: e.name.into(),
                    subject: e.subject.into(),
                    queue_group: self.name.into(),
                    metadata: e.metadata.clone(),
                })
                .collect(),
        };
        let stats = Arc::new(Mutex::new(
            self.endpoints
                .iter()
                .map(|e| endpoint::Stats {
                    name: e.name.into(),
                    subject: e.subject.into(),
                    queue_group: self.name.into(),
                    ..Default::default()
                })
                .collect::<Vec<_>>(),
        ));

        let mut subscriptions = Vec::with_capacity(self.endpoints.len());
        for e in &self.endpoints {
            subscriptions.push(client.queue_subscribe(e.subject, self.name.into()).await?);
        }
        let verbs = VerbResponder {
            client: client.clone(),
            info,
            started: OffsetDateTime::now_utc(),
            stats: Arc::clone(&stats),
        };
        let verb_subs = verbs.subscribe().await?;
        client.flush().await?;
        info!(
            service = self.name,
            id,
            endpoints = self.endpoints.len(),
            max_in_flight = self.max_in_flight,
            "serving"
        );
        if let Some(subject) = self.announce {
            client.publish(subject, Bytes::new()).await?;
            client.flush().await?;
        }

        let stop = CancellationToken::new();
        let tracker = TaskTracker::new();
        let slots = Arc::new(Semaphore::new(self.max_in_flight));
        let verb_task = tokio::spawn(verbs.run(verb_subs, stop.clone()));
        let mut loops = tokio::task::JoinSet::new();
        for (index, (def, sub)) in self.endpoints.into_iter().zip(subscriptions).enumerate() {
            loops.spawn(
                EndpointLoop {
                    index,
                    def,
                    client: client.clone(),
                    state: self.state.clone(),
                    stats: Arc::clone(&stats),
                    slots: Arc::clone(&slots),
                    tracker: tracker.clone(),
                    stop: stop.clone(),
                }
                .run(sub),
            );
        }

        tokio::select! {
            () = shutdown => info!(service = self.name, "shutting down: draining"),
            // An endpoint loop only ends by itself when the connection closed.
            _ = loops.join_next() => warn!(service = self.name, "subscription closed"),
        }
        stop.cancel();
        while loops.join_next().await.is_some() {}
        tracker.close();
        tracker.wait().await;
        client.flush().await?;
        verb_task.abort();
        info!(service = self.name, "drained");
        Ok(())
    }
}

struct EndpointLoop<S> {
    index: usize,
    def: EndpointDef<S>,
    client: Client,
    state: S,
    stats: Arc<Mutex<Vec<endpoint::Stats>>>,
    slots: Arc<Semaphore>,
    tracker: TaskTracker,
    stop: CancellationToken,
}

impl<S: Clone + Send + Sync + 'static> EndpointLoop<S> {
    async fn run(self, mut sub: Subscriber) {
        let mut draining = false;
        loop {
            let message = if draining {
                sub.next().await
            } else {
                tokio::select! {
                    message = sub.next() => message,
                    () = self.stop.cancelled() => {
                        // The server stops routing to this copy; what it had
                        // already sent still arrives, then the stream ends.
                        if let Err(e) = sub.drain().await {
                            warn!(subject = self.def.subject, error = %e, "drain failed");
                            return;
                        }
                        draining = true;
                        continue;
                    }
                }
            };
            let Some(message) = message else { break };
            let job = Job {
                index: self.index,
                subject: self.def.subject,
                handler: Arc::clone(&self.def.handler),
                client: self.client.clone(),
                state: self.state.clone(),
                stats: Arc::clone(&self.stats),
            };
            match Arc::clone(&self.slots).try_acquire_owned() {
                Ok(slot) => {
                    self.tracker.spawn(async move {
                        job.run(message).await;
                        drop(slot);
                    });
                }
                // Full: a fast 503 with a retry hint beats a caller's timeout.
                Err(TryAcquireError::NoPermits) => {
                    self.tracker.spawn(job.reject(message, busy()));
                }
                Err(TryAcquireError::Closed) => break,
            }
        }
        debug!(subject = self.def.subject, "endpoint loop ended");
    }
}

struct Job<S> {
    index: usize,
    subject: &'static str,
    handler: Handler<S>,
    client: Client,
    state: S,
    stats: Arc<Mutex<Vec<endpoint::Stats>>>,
}

/// The reply of a copy whose `max_in_flight` requests are all in progress
/// (the gateway sends such a request again: it did not run).
fn busy() -> ServiceError {
    ServiceError::busy()
}

impl<S: Clone> Job<S> {
    /// Answers `message` with `err` without running the handler.
    async fn reject(self, message: Message, err: ServiceError) {
        let started = Instant::now();
        let result = Err(err);
        self.record(&result, started.elapsed());
        self.reply(message.reply, result).await;
    }

    async fn run(self, message: Message) {
        let started = Instant::now();
        let headers = message.headers.as_ref();
        let ctx = RequestContext::from_headers(|name| headers?.get(name).map(|v| v.as_str()));
        let span = info_span!(
            "rpc",
            subject = self.subject,
            request_id = ctx.request_id.as_deref().unwrap_or(""),
            trace_id = tracing::field::Empty,
            caller = ctx.caller.map(|c| c.id),
            otel.name = tracing::field::Empty,
            otel.kind = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        telemetry::continue_trace(&span, ctx.traceparent.as_deref(), || self.subject.into());
        let result = (self.handler)(self.state.clone(), ctx, message.payload)
            .instrument(span.clone())
            .await;
        let elapsed = started.elapsed();
        let _enter = span.enter();
        match &result {
            Ok(_) => debug!(elapsed_us = elapsed.as_micros() as u64, "ok"),
            Err(e) => {
                debug!(
                    elapsed_us = elapsed.as_micros() as u64,
                    status = e.status_code,
                    "error reply"
                );
                telemetry::set_exported_attribute(&span, "status_code", i64::from(e.status_code));
                if e.status_code >= 500 {
                    telemetry::mark_failed(&span);
                }
            }
        }
        self.record(&result, elapsed);
        self.reply(message.reply, result).await;
    }

    async fn reply(&self, reply: Option<async_nats::Subject>, result: Result<Bytes, ServiceError>) {
        let Some(reply) = reply else {
            return;
        };
        let published = match result {
            Ok(body) => self.client.publish(reply, body).await,
            Err(err) => {
                let mut headers = HeaderMap::new();
                headers.insert(NATS_SERVICE_ERROR, err.message.as_str());
                headers.insert(
                    NATS_SERVICE_ERROR_CODE,
                    err.status_code.to_string().as_str(),
                );
                let body = serde_json::to_vec(&err).unwrap_or_default();
                self.client
                    .publish_with_headers(reply, headers, body.into())
                    .await
            }
        };
        if let Err(e) = published {
            warn!(error = %e, "reply not published");
        }
    }

    fn record(&self, result: &Result<Bytes, ServiceError>, elapsed: Duration) {
        let Ok(mut all) = self.stats.lock() else {
            return;
        };
        let stats = &mut all[self.index];
        stats.requests += 1;
        stats.processing_time += elapsed;
        stats.average_processing_time = stats.processing_time / stats.requests as u32;
        if let Err(e) = result {
            stats.errors += 1;
            stats.last_error = Some(async_nats::service::error::Error {
                status: e.message.clone(),
                code: e.status_code.into(),
            });
        }
    }
}
