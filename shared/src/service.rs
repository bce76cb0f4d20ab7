//! The worker side of the NATS service API (ADR-32).
//!
//! A worker lists its endpoints and handlers, then calls
//! [`ServiceBuilder::serve`]. Every endpoint is a queue subscription in the
//! group named after the service, so copies of a worker share the load. The
//! service answers `$SRV.PING|INFO|STATS` (all, by name, by id) so that
//! `nats micro ls/info/stats` see it, with async-nats's own wire types.
//!
//! Why not `async_nats::service::Service` itself: its error replies carry an
//! empty body (the contract wants the JSON error body as well as the
//! `Nats-Service-Error*` headers), and its `stop()` unsubscribes without
//! draining, which loses requests already routed to the stopping copy. Here a
//! shutdown drains each subscription, finishes every request in hand, replies,
//! and flushes.

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use async_nats::{
    Client, HeaderMap, Message, Subscriber,
    service::{Info, PingResponse, Stats, endpoint},
};
use bytes::Bytes;
use futures::{StreamExt, stream};
use time::OffsetDateTime;
use tokio::sync::{Semaphore, TryAcquireError};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{Instrument, debug, info, info_span, warn};

use crate::{
    Caller, Endpoint, RequestContext, ServiceError, User,
    headers::{Access, ClientAddress, NATS_SERVICE_ERROR, NATS_SERVICE_ERROR_CODE},
    rpc::LocalHandler,
    telemetry,
};

/// What a handler learns about its request besides the body.
#[derive(Debug, Clone)]
pub struct Call<C> {
    /// The caller as the endpoint's [`Access`] wants it, already checked
    /// against the database: a live session and the current role.
    pub caller: C,
    /// The caller's own user row, as read when the caller was checked (none
    /// when no caller was checked): `user.get` of oneself, the hottest
    /// route, needs no second query.
    pub user: Option<User>,
    /// The HTTP client's address, when the gateway sent one.
    pub client: Option<ClientAddress>,
}

/// Checks a claimed caller against the current state: the user exists, the
/// session in the token is live (not revoked, not expired), and the role is
/// the user's current one. A worker's state implements it; the service loop
/// calls it once per request, before decoding, for every endpoint whose
/// [`Access`] asks for it.
pub trait ResolveCaller: Send + Sync {
    /// The caller's user as it is now (its role is the one that counts), or
    /// 401 when the caller's session has ended.
    fn resolve_caller(
        &self,
        claimed: Caller,
    ) -> impl Future<Output = Result<User, ServiceError>> + Send;
}

type HandlerFuture = Pin<Box<dyn Future<Output = Result<Bytes, ServiceError>> + Send>>;
type Handler<S> = Arc<dyn Fn(S, RequestContext, Bytes) -> HandlerFuture + Send + Sync>;

struct EndpointDef<S> {
    name: &'static str,
    subject: &'static str,
    metadata: HashMap<String, String>,
    handler: Handler<S>,
}

/// A self-contained JSON Schema of `T`: the schema, plus the components it
/// refers to (`#/components/schemas/…`), as one JSON text.
pub fn json_schema<T: utoipa::ToSchema>() -> String {
    let mut components = Vec::new();
    T::schemas(&mut components);
    let components: serde_json::Map<String, serde_json::Value> = components
        .into_iter()
        .filter_map(|(name, schema)| Some((name, serde_json::to_value(schema).ok()?)))
        .collect();
    serde_json::json!({
        "schema": T::schema(),
        "components": { "schemas": components },
    })
    .to_string()
}

/// Collects a worker's endpoints before it starts serving.
pub struct ServiceBuilder<S> {
    name: &'static str,
    version: String,
    description: String,
    max_in_flight: usize,
    state: S,
    endpoints: Vec<EndpointDef<S>>,
    announce: Option<&'static str>,
}

impl<S> std::fmt::Debug for ServiceBuilder<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceBuilder")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("max_in_flight", &self.max_in_flight)
            .field(
                "endpoints",
                &self.endpoints.iter().map(|e| e.subject).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl<S: ResolveCaller + Clone + Send + Sync + 'static> ServiceBuilder<S> {
    /// `name` is also the queue group; `state` is handed to every handler.
    pub fn new(name: &'static str, version: impl Into<String>, state: S) -> Self {
        Self {
            name,
            version: version.into(),
            description: String::new(),
            max_in_flight: 64,
            state,
            endpoints: Vec::new(),
            announce: None,
        }
    }

    /// Publishes an empty message on `subject` once serving: after every
    /// subscription, so whoever reacts by calling this service reaches it
    /// (the server takes one connection's messages in order).
    pub fn announce(mut self, subject: &'static str) -> Self {
        self.announce = Some(subject);
        self
    }

    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// How many requests this copy handles at once, over all endpoints. A
    /// request beyond that is answered at once with 503 and `retryAfter: 1`
    /// (counted as an error), rather than left to time out.
    pub fn max_in_flight(mut self, max: usize) -> Self {
        self.max_in_flight = max.max(1);
        self
    }

    /// Serves `E::SUBJECT` with `handler`. The caller is checked as
    /// `E::Caller` says (401 before anything else when it does not pass), the
    /// request body is decoded and validated (an empty body counts as `{}`),
    /// the reply encoded, and an error becomes an error reply.
    pub fn endpoint<E, F, Fut, Err>(mut self, handler: F) -> Self
    where
        E: Endpoint,
        F: Fn(S, Call<E::Caller>, E::Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<E::Reply, Err>> + Send + 'static,
        Err: Into<ServiceError>,
    {
        assert_eq!(
            E::SERVICE,
            self.name,
            "{} belongs to {}",
            E::SUBJECT,
            E::SERVICE
        );
        let handler = Arc::new(handler);
        let erased: Handler<S> = Arc::new(move |state, ctx, payload| {
            let handler = Arc::clone(&handler);
            Box::pin(async move {
                let (caller, user) = match ctx.caller {
                    Some(claimed) if <E::Caller as Access>::RESOLVE => {
                        let user = state.resolve_caller(claimed).await?;
                        let caller = Caller {
                            role: user.role,
                            ..claimed
                        };
                        (Some(caller), Some(user))
                    }
                    _ => (None, None),
                };
                let call = Call {
                    caller: E::Caller::from_resolved(caller)?,
                    user,
                    client: ctx.client,
                };
                let request = decode_request::<E::Request>(&payload)?;
                let reply = handler(state, call, request).await.map_err(Into::into)?;
                serde_json::to_vec(&reply).map(Bytes::from).map_err(|e| {
                    tracing::error!(subject = E::SUBJECT, error = %e, "reply does not serialize");
                    ServiceError::internal()
                })
            })
        });
        // `nats micro info` shows each subject's contract.
        let metadata = HashMap::from([
            ("request_schema".to_owned(), json_schema::<E::Request>()),
            ("response_schema".to_owned(), json_schema::<E::Reply>()),
        ]);
        self.endpoints.push(EndpointDef {
            name: E::NAME,
            subject: E::SUBJECT,
            metadata,
            handler: erased,
        });
        self
    }

    /// Every endpoint as a [`LocalHandler`] bound to this service's state, by
    /// subject, for [`crate::rpc::Rpc::local`]: the same decoding, validation,
    /// handler and encoding as over NATS, without NATS.
    pub fn into_local(self) -> Vec<(&'static str, LocalHandler)> {
        let state = self.state;
        self.endpoints
            .into_iter()
            .map(|def| {
                let (handler, state) = (def.handler, state.clone());
                let local: LocalHandler =
                    Arc::new(move |ctx, payload| (handler)(state.clone(), ctx, payload));
                (def.subject, local)
            })
            .collect()
    }

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

/// Resolves on SIGTERM or Ctrl-C: the signal every process stops on.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// Refuses a body whose top-level JSON value is not an object: serde would
/// read a struct from an array (`["a@b.co", "password"]`), and no request of
/// this contract is one.
pub fn require_object(body: &[u8]) -> Result<(), ServiceError> {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') | None => Ok(()),
        Some(_) => Err(ServiceError::bad_request(
            "request body must be a JSON object",
        )),
    }
}

/// Decodes and validates a request body (an empty body counts as `{}`), so a
/// request published straight onto NATS is held to the gateway's rules.
fn decode_request<T: serde::de::DeserializeOwned + validator::Validate>(
    payload: &[u8],
) -> Result<T, ServiceError> {
    let body: &[u8] = if payload.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        payload
    };
    require_object(body)?;
    let request: T = serde_json::from_slice(body).map_err(|e| {
        ServiceError::bad_request(format!(
            "invalid request body: {}",
            crate::error::describe_json_error(&e)
        ))
    })?;
    request.validate()?;
    Ok(request)
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

/// The reply of a copy whose `max_in_flight` requests are all in progress.
fn busy() -> ServiceError {
    ServiceError {
        retry_after: Some(1),
        ..ServiceError::unavailable("busy, retry later")
    }
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
        let ctx = RequestContext::from_headers(message.headers.as_ref());
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

/// Answers `$SRV.PING`, `$SRV.INFO` and `$SRV.STATS`.
struct VerbResponder {
    client: Client,
    info: Info,
    started: OffsetDateTime,
    stats: Arc<Mutex<Vec<endpoint::Stats>>>,
}

#[derive(Clone, Copy)]
enum Verb {
    Ping,
    Info,
    Stats,
}

impl VerbResponder {
    async fn subscribe(&self) -> anyhow::Result<Vec<(Verb, Subscriber)>> {
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

    async fn run(self, subs: Vec<(Verb, Subscriber)>, stop: CancellationToken) {
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

#[cfg(test)]
mod tests {
    use super::*;

    use crate::{auth::JwksRequest, user::GetRequest};

    #[test]
    fn an_empty_body_decodes_as_an_empty_object() {
        let _: JwksRequest = decode_request(b"").unwrap();
        let _: JwksRequest = decode_request(b"  \n").unwrap();
    }

    #[test]
    fn a_json_array_is_not_read_as_a_struct() {
        let err = decode_request::<GetRequest>(b" [1]").unwrap_err();
        assert_eq!(err.status_code, 400);
        assert_eq!(err.message, "request body must be a JSON object");
    }

    #[test]
    fn a_body_that_is_not_json_is_a_400() {
        let err = decode_request::<JwksRequest>(b"{nope").unwrap_err();
        assert_eq!(err.status_code, 400);
        assert!(err.message.starts_with("invalid request body"));
    }

    #[test]
    fn a_request_that_breaks_the_rules_is_a_400_with_details() {
        let err = decode_request::<GetRequest>(br#"{"id":0}"#).unwrap_err();
        assert_eq!(err.status_code, 400);
        assert_eq!(err.details[0].field, "id");
    }
}
