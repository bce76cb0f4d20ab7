//! One trait binds a subject to its request and reply types.
//!
//! Each subject is a zero-sized type implementing [`Endpoint`], declared once
//! in [`crate::auth`] or [`crate::user`]. The gateway calls
//! `rpc.call::<auth::Login>(&ctx, &request)`; a worker registers the same
//! `auth::Login` with its handler. No subject string exists anywhere else.

use std::{
    collections::HashMap,
    fmt,
    future::Future,
    pin::Pin,
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use async_nats::{Client, Statistics, client::RequestErrorKind, connection::State};
use bytes::Bytes;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::{
    RequestContext, ServiceError,
    headers::{Access, NATS_SERVICE_ERROR, NATS_SERVICE_ERROR_CODE},
};

/// The reply of a command with nothing to say: `{}` (HTTP 204).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Done {}

/// A NATS request/reply endpoint: its subject, its name in the service API,
/// the worker service that serves it, and its payload types.
pub trait Endpoint: Send + Sync + 'static {
    /// `<service>.<operation>`, e.g. `auth.login`.
    const SUBJECT: &'static str;
    /// The endpoint's name in `nats micro info` (`^[A-Za-z0-9_-]+$`): the
    /// subject with `_` for `.`, e.g. `auth_login`, `user_get`.
    const NAME: &'static str;
    /// The worker service (and queue group) that serves the subject.
    const SERVICE: &'static str;
    /// Who may call: [`Caller`](crate::Caller) (a live session),
    /// `Option<Caller>` or [`Anonymous`](crate::headers::Anonymous). The
    /// worker checks it before the handler runs (see [`Access`]).
    type Caller: Access;
    /// Validated by the gateway before sending and by the worker on receipt;
    /// its JSON Schema is published in the endpoint's service metadata.
    type Request: Serialize
        + DeserializeOwned
        + validator::Validate
        + utoipa::ToSchema
        + Send
        + Sync
        + 'static;
    type Reply: Serialize + DeserializeOwned + utoipa::ToSchema + Send + Sync + 'static;
}

/// Declares a marker type and its [`Endpoint`] impl in one line.
macro_rules! endpoint {
    ($(#[$doc:meta])* $marker:ident, $subject:literal, $name:literal, $service:expr, $caller:ty, $req:ty => $reply:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $marker;

        impl $crate::rpc::Endpoint for $marker {
            const SUBJECT: &'static str = $subject;
            const NAME: &'static str = $name;
            const SERVICE: &'static str = $service;
            type Caller = $caller;
            type Request = $req;
            type Reply = $reply;
        }
    };
}
pub(crate) use endpoint;

/// Declares the types of one partial update whose fields are written once:
/// after `fields { … }`, each `Name { before } { after }` is a struct with the
/// fields `before`, then the shared fields, then `after` (so the NATS request
/// can add the target's `id` and an HTTP body can add what only its route
/// may send). Every one refuses unknown fields, so nothing sent is silently
/// ignored; absent fields are `None` (keep), and serialize back as absent.
macro_rules! partial_update {
    (fields { $($fields:tt)* }) => {};
    (
        fields { $($fields:tt)* }
        $(#[$doc:meta])* $name:ident { $($before:tt)* } { $($after:tt)* }
        $($rest:tt)*
    ) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize,
            validator::Validate, utoipa::ToSchema,
        )]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($before)*
            $($fields)*
            $($after)*
        }

        $crate::rpc::partial_update! { fields { $($fields)* } $($rest)* }
    };
}
pub(crate) use partial_update;

/// Why a call did not produce a reply.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Nobody subscribes to the subject: no worker runs.
    #[error("no worker serves {0}")]
    NoResponders(&'static str),
    /// A worker took the request but did not answer in time.
    #[error("{0} did not answer within {1:?}")]
    Timeout(&'static str, Duration),
    /// The client is not connected to NATS right now.
    #[error("not connected to NATS")]
    Disconnected,
    /// The worker answered with an error.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// Anything else NATS reported.
    #[error("request on {0} failed: {1}")]
    Transport(&'static str, String),
    /// The reply did not match the contract.
    #[error("reply on {0} does not match the contract: {1}")]
    Decode(&'static str, String),
    /// Not sent: the caller's admission control refused it (503 when
    /// overloaded, 429 beyond a client's share), with its retry hint.
    #[error("refused before sending: {0}")]
    Refused(ServiceError),
}

/// The typed NATS client: per-subject timeouts, context headers, contract
/// errors. Over NATS it holds one connection per worker service and sends
/// each call on the connection of its endpoint's service.
#[derive(Debug, Clone)]
pub struct Rpc {
    transport: Transport,
    default_timeout: Duration,
    timeouts: Arc<HashMap<String, Duration>>,
}

/// What a worker endpoint is, once its state is bound: the request body in,
/// the reply body or the error out. The workers' service builder (crate
/// `runtime`) makes these; NATS or [`Rpc::local`] feeds them.
pub type LocalHandler = Arc<
    dyn Fn(
            RequestContext,
            Bytes,
        ) -> Pin<Box<dyn Future<Output = Result<Bytes, ServiceError>> + Send>>
        + Send
        + Sync,
>;

#[derive(Clone)]
enum Transport {
    /// A connection per worker service, by [`Endpoint::SERVICE`]. Each takes
    /// its replies under its own inbox prefix, which `nats.conf` lets only
    /// that service publish to: one worker cannot answer another's requests.
    Nats(Arc<HashMap<&'static str, Client>>),
    /// The worker handlers in this process, by subject: the benchmark's
    /// "same work without the hop" floor. Bodies are still JSON both ways,
    /// so only the broker (publish, routing, sockets, headers) is missing.
    Local(Arc<HashMap<&'static str, LocalHandler>>),
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Nats(clients) => f.debug_tuple("Nats").field(clients).finish(),
            Self::Local(handlers) => f
                .debug_tuple("Local")
                .field(&handlers.keys().collect::<Vec<_>>())
                .finish(),
        }
    }
}

impl Rpc {
    /// Calls over NATS: `clients` holds the connection for each worker
    /// service (`E::SERVICE`) this caller may call.
    pub fn new(
        clients: impl IntoIterator<Item = (&'static str, Client)>,
        default_timeout: Duration,
    ) -> Self {
        Self {
            transport: Transport::Nats(Arc::new(clients.into_iter().collect())),
            default_timeout,
            timeouts: Arc::default(),
        }
    }

    /// Calls the handlers in this process instead of sending over NATS (see
    /// the service builder's `into_local`, crate `runtime`). Used to measure what
    /// the broker hop costs; production always goes through NATS.
    pub fn local(
        handlers: impl IntoIterator<Item = (&'static str, LocalHandler)>,
        default_timeout: Duration,
    ) -> Self {
        Self {
            transport: Transport::Local(Arc::new(handlers.into_iter().collect())),
            default_timeout,
            timeouts: Arc::default(),
        }
    }

    /// Overrides the timeout of some subjects (`auth.login`, …).
    pub fn with_timeouts(mut self, timeouts: HashMap<String, Duration>) -> Self {
        self.timeouts = Arc::new(timeouts);
        self
    }

    /// The NATS connection that carries calls to `service`; `None` for an
    /// in-process [`Rpc::local`] or a service without one.
    pub fn client(&self, service: &str) -> Option<&Client> {
        match &self.transport {
            Transport::Nats(clients) => clients.get(service),
            Transport::Local(_) => None,
        }
    }

    /// Every NATS connection with its service, by service name; empty for
    /// an in-process [`Rpc::local`].
    pub fn clients(&self) -> Vec<(&'static str, &Client)> {
        let mut clients: Vec<_> = match &self.transport {
            Transport::Nats(clients) => clients.iter().map(|(s, c)| (*s, c)).collect(),
            Transport::Local(_) => Vec::new(),
        };
        clients.sort_by_key(|(service, _)| *service);
        clients
    }

    pub fn timeout_for(&self, subject: &str) -> Duration {
        self.timeouts
            .get(subject)
            .copied()
            .unwrap_or(self.default_timeout)
    }

    /// Sends one request on `E::SUBJECT` and decodes the reply.
    pub async fn call<E: Endpoint>(
        &self,
        ctx: &RequestContext,
        request: &E::Request,
    ) -> Result<E::Reply, CallError> {
        let started = std::time::Instant::now();
        let result = self.call_inner::<E>(ctx, request).await;
        let outcome = match &result {
            Ok(_) => "ok".to_owned(),
            Err(CallError::Service(e)) => format!("error_{}", e.status_code),
            Err(CallError::NoResponders(_)) => "no_responders".to_owned(),
            Err(CallError::Timeout(..)) => "timeout".to_owned(),
            Err(CallError::Disconnected) => "disconnected".to_owned(),
            Err(CallError::Transport(..) | CallError::Decode(..)) => "failed".to_owned(),
            Err(CallError::Refused(_)) => "refused".to_owned(),
        };
        metrics::counter!("nats_requests_total", "subject" => E::SUBJECT, "outcome" => outcome)
            .increment(1);
        metrics::histogram!("nats_request_duration_seconds", "subject" => E::SUBJECT)
            .record(started.elapsed().as_secs_f64());
        result
    }

    async fn call_inner<E: Endpoint>(
        &self,
        ctx: &RequestContext,
        request: &E::Request,
    ) -> Result<E::Reply, CallError> {
        let client = match &self.transport {
            Transport::Nats(clients) => clients.get(E::SERVICE).ok_or_else(|| {
                CallError::Transport(E::SUBJECT, format!("no connection for {}", E::SERVICE))
            })?,
            Transport::Local(handlers) => {
                return self.call_local::<E>(handlers, ctx, request).await;
            }
        };
        // While disconnected, async-nats would buffer the request and the
        // caller would wait for the whole timeout; fail fast instead.
        if client.connection_state() != State::Connected {
            return Err(CallError::Disconnected);
        }
        let payload = serde_json::to_vec(request)
            .map_err(|e| CallError::Decode(E::SUBJECT, e.to_string()))?;
        let timeout = self.timeout_for(E::SUBJECT);
        let stats = client.statistics();
        let connects = stats.connects.load(Ordering::Relaxed);
        let request = client.send_request(
            E::SUBJECT,
            async_nats::Request::new()
                .headers(ctx.to_headers())
                .payload(Bytes::from(payload))
                .timeout(Some(timeout)),
        );
        let message = tokio::select! {
            biased;
            reply = request => reply.map_err(|e| match e.kind() {
                RequestErrorKind::NoResponders => CallError::NoResponders(E::SUBJECT),
                RequestErrorKind::TimedOut => CallError::Timeout(E::SUBJECT, timeout),
                _ => CallError::Transport(E::SUBJECT, e.to_string()),
            })?,
            // No reply comes back over a connection that is gone, yet
            // async-nats would hold the request until its timeout (one sent
            // before the client noticed a dead server, too): 503 now.
            () = connection_lost(client, &stats, connects) => return Err(CallError::Disconnected),
        };
        decode_reply::<E>(&message)
    }

    async fn call_local<E: Endpoint>(
        &self,
        handlers: &HashMap<&'static str, LocalHandler>,
        ctx: &RequestContext,
        request: &E::Request,
    ) -> Result<E::Reply, CallError> {
        let handler = handlers
            .get(E::SUBJECT)
            .ok_or(CallError::NoResponders(E::SUBJECT))?;
        let payload = serde_json::to_vec(request)
            .map_err(|e| CallError::Decode(E::SUBJECT, e.to_string()))?;
        let timeout = self.timeout_for(E::SUBJECT);
        let body = tokio::time::timeout(timeout, handler(ctx.clone(), Bytes::from(payload)))
            .await
            .map_err(|_| CallError::Timeout(E::SUBJECT, timeout))??;
        serde_json::from_slice(&body).map_err(|e| CallError::Decode(E::SUBJECT, e.to_string()))
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

/// Decodes and validates a request body as a worker receives it (an empty
/// body counts as `{}`), so a request published straight onto NATS is held to
/// the gateway's rules.
pub fn decode_request<T: DeserializeOwned + validator::Validate>(
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

/// Turns a reply message into the endpoint's reply type or its error.
pub fn decode_reply<E: Endpoint>(message: &async_nats::Message) -> Result<E::Reply, CallError> {
    if let Some(code) = message
        .headers
        .as_ref()
        .and_then(|h| h.get(NATS_SERVICE_ERROR_CODE))
    {
        // Prefer the JSON body; fall back to the two headers alone, which is
        // all that a plain ADR-32 service sends.
        let err = serde_json::from_slice::<ServiceError>(&message.payload).unwrap_or_else(|_| {
            let status = code.as_str().parse().unwrap_or(500);
            let text = message
                .headers
                .as_ref()
                .and_then(|h| h.get(NATS_SERVICE_ERROR))
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default();
            ServiceError::new(status, text)
        });
        return Err(CallError::Service(err));
    }
    serde_json::from_slice(&message.payload)
        .map_err(|e| CallError::Decode(E::SUBJECT, e.to_string()))
}

/// How often a request in flight checks that its connection still stands.
const CONNECTION_CHECK: Duration = Duration::from_millis(20);

/// Resolves once the connection a request went out on is gone: `client` is
/// disconnected, or has connected again since it had made `connects`
/// connections (to another node of a cluster, which can take less than one
/// check). async-nats reports state changes only to the event callback given
/// at connect time, so this polls: one timer per request still waiting after
/// a check interval.
async fn connection_lost(client: &Client, stats: &Statistics, connects: u64) {
    loop {
        tokio::time::sleep(CONNECTION_CHECK).await;
        if client.connection_state() != State::Connected
            || stats.connects.load(Ordering::Relaxed) != connects
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Endpoint, decode_request};
    use crate::{
        auth::{self, JwksRequest},
        post,
        user::{self, GetRequest},
    };

    fn named_after_its_subject<E: Endpoint>() {
        assert_eq!(E::NAME, E::SUBJECT.replace('.', "_"), "{}", E::SUBJECT);
        // ADR-32's rule for endpoint names.
        assert!(
            E::NAME
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
            "{}",
            E::NAME
        );
    }

    #[test]
    fn every_endpoint_is_named_after_its_subject() {
        named_after_its_subject::<auth::CreateUser>();
        named_after_its_subject::<auth::GetUser>();
        named_after_its_subject::<auth::Login>();
        named_after_its_subject::<auth::Jwks>();
        named_after_its_subject::<auth::Refresh>();
        named_after_its_subject::<auth::Logout>();
        named_after_its_subject::<auth::ChangePassword>();
        named_after_its_subject::<user::Get>();
        named_after_its_subject::<user::List>();
        named_after_its_subject::<user::Update>();
        named_after_its_subject::<user::Delete>();
        named_after_its_subject::<post::Create>();
        named_after_its_subject::<post::Get>();
        named_after_its_subject::<post::List>();
        named_after_its_subject::<post::Update>();
        named_after_its_subject::<post::Delete>();
    }

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
