//! The gateway's side of the NATS requests: [`Rpc`], the typed client.
//!
//! A call names its [`Endpoint`]; the client sends the request on
//! `E::SUBJECT` over the connection of `E::SERVICE`, with the
//! [`RequestContext`] as headers and `E::SUBJECT`'s timeout, and decodes the
//! reply into `E::Reply` or the [`ServiceError`] the worker sent. It fails
//! fast (503) while its connection is down or once it is lost, and counts
//! every call in `nats_requests_total` and `nats_request_duration_seconds`.
//!
//! The serving side is [`crate::service`]; what both sides agree on (subjects,
//! payloads, headers, errors) is the `shared` crate.

use std::{
    collections::HashMap,
    fmt,
    future::Future,
    pin::Pin,
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use async_nats::{Client, HeaderMap, Statistics, client::RequestErrorKind, connection::State};
use bytes::Bytes;
use shared::{
    Endpoint, RequestContext, ServiceError,
    headers::{NATS_SERVICE_ERROR, NATS_SERVICE_ERROR_CODE},
};

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
/// the reply body or the error out. The workers' service builder makes these
/// ([`ServiceBuilder::into_local`](crate::service::ServiceBuilder::into_local));
/// [`Rpc::local`] feeds them.
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
    /// [`ServiceBuilder::into_local`](crate::service::ServiceBuilder::into_local)).
    /// Used to measure what the broker hop costs; production always goes
    /// through NATS.
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
                .headers(headers(ctx))
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

/// Turns a reply message into the endpoint's reply type or its error.
fn decode_reply<E: Endpoint>(message: &async_nats::Message) -> Result<E::Reply, CallError> {
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

/// The request headers that carry `ctx`.
fn headers(ctx: &RequestContext) -> HeaderMap {
    let mut headers = HeaderMap::new();
    ctx.write_headers(|name, value| headers.insert(name, value));
    headers
}

#[cfg(test)]
mod tests {
    use async_nats::{HeaderMap, Message, service};
    use shared::{
        Caller, RequestContext, Role, ServiceError,
        auth::{JwkSet, Jwks},
        headers::{ClientAddress, NATS_SERVICE_ERROR, NATS_SERVICE_ERROR_CODE},
    };

    use super::{CallError, decode_reply, headers};

    /// A reply as the server delivers it.
    fn reply(headers: Option<HeaderMap>, payload: &[u8]) -> Message {
        Message {
            subject: "_INBOX.reply".into(),
            reply: None,
            payload: payload.to_vec().into(),
            headers,
            status: None,
            description: None,
            length: payload.len(),
        }
    }

    #[test]
    fn the_contract_names_the_error_headers_as_async_nats_does() {
        assert_eq!(NATS_SERVICE_ERROR, service::NATS_SERVICE_ERROR);
        assert_eq!(NATS_SERVICE_ERROR_CODE, service::NATS_SERVICE_ERROR_CODE);
    }

    #[test]
    fn the_context_survives_a_round_trip_through_nats_headers() {
        let ctx = RequestContext {
            caller: Some(Caller {
                id: 7,
                role: Role::Admin,
                session: Some(uuid::Uuid::nil()),
                mfa: true,
            }),
            request_id: Some("abc".into()),
            traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
            client: Some(ClientAddress("2001:db8::7".parse().unwrap())),
            user_agent: Some("curl/8.5.0".into()),
            origin: Some("http://localhost:8080".into()),
        };
        let sent = headers(&ctx);
        let back = RequestContext::from_headers(|name| sent.get(name).map(|v| v.as_str()));
        assert_eq!(back, ctx);
    }

    #[test]
    fn an_error_reply_decodes_from_its_body_or_else_its_headers() {
        let err = ServiceError::conflict("email already registered");
        let mut error_headers = HeaderMap::new();
        error_headers.insert(NATS_SERVICE_ERROR, "email already registered");
        error_headers.insert(NATS_SERVICE_ERROR_CODE, "409");
        let body = serde_json::to_vec(&err).unwrap();
        let from_body = decode_reply::<Jwks>(&reply(Some(error_headers.clone()), &body));
        assert!(matches!(from_body, Err(CallError::Service(e)) if e == err));
        // A plain ADR-32 service sends the two headers and no JSON body.
        let from_headers = decode_reply::<Jwks>(&reply(Some(error_headers), b""));
        assert!(matches!(from_headers, Err(CallError::Service(e)) if e == err));
    }

    #[test]
    fn a_reply_that_breaks_the_contract_is_a_decode_error() {
        let ok = decode_reply::<Jwks>(&reply(None, br#"{"keys":[]}"#));
        assert!(
            matches!(ok, Ok(JwkSet { ref keys }) if keys.is_empty()),
            "{ok:?}"
        );
        let bad = decode_reply::<Jwks>(&reply(None, b"[1]"));
        assert!(
            matches!(bad, Err(CallError::Decode("auth.jwks", _))),
            "{bad:?}"
        );
    }
}
