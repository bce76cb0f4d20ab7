//! [`ServiceBuilder`]: a worker's endpoints, each bound to its handler.

use std::{collections::HashMap, future::Future, pin::Pin, sync::Arc};

use bytes::Bytes;
use shared::{
    Caller, Endpoint, RequestContext, ServiceError, User, endpoint::decode_request, headers::Access,
};

use super::{Call, ResolveCaller};
use crate::rpc::LocalHandler;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
/// A handler with its types erased: request context and body in, reply body
/// or error out.
pub(super) type Handler<S> =
    Arc<dyn Fn(S, RequestContext, Bytes) -> BoxFuture<Result<Bytes, ServiceError>> + Send + Sync>;
type Resolve = Arc<dyn Fn(Caller) -> BoxFuture<Result<User, ServiceError>> + Send + Sync>;

/// One endpoint as registered: what the service API publishes about it, and
/// its handler.
pub(super) struct EndpointDef<S> {
    pub(super) name: &'static str,
    pub(super) subject: &'static str,
    pub(super) metadata: HashMap<String, String>,
    pub(super) handler: Handler<S>,
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

/// Collects a worker's endpoints before it starts serving
/// ([`ServiceBuilder::serve`]).
pub struct ServiceBuilder<S> {
    pub(super) name: &'static str,
    pub(super) version: String,
    pub(super) description: String,
    pub(super) max_in_flight: usize,
    pub(super) state: S,
    pub(super) endpoints: Vec<EndpointDef<S>>,
    pub(super) announce: Option<&'static str>,
    resolve: Resolve,
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

impl<S: Clone + Send + Sync + 'static> ServiceBuilder<S> {
    /// `name` is also the queue group; `state` is handed to every handler;
    /// `callers` checks the caller of every endpoint that takes one.
    pub fn new(
        name: &'static str,
        version: impl Into<String>,
        state: S,
        callers: impl ResolveCaller,
    ) -> Self {
        let callers = Arc::new(callers);
        Self {
            name,
            version: version.into(),
            description: String::new(),
            max_in_flight: 512,
            state,
            endpoints: Vec::new(),
            announce: None,
            resolve: Arc::new(move |claimed| {
                let callers = Arc::clone(&callers);
                Box::pin(async move { callers.resolve_caller(claimed).await })
            }),
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
        let resolve = Arc::clone(&self.resolve);
        let erased: Handler<S> = Arc::new(move |state, ctx, payload| {
            let (handler, resolve) = (Arc::clone(&handler), Arc::clone(&resolve));
            Box::pin(async move {
                let (caller, user) = match ctx.caller {
                    Some(claimed) if <E::Caller as Access>::RESOLVE => {
                        let user = resolve(claimed).await?;
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
                    user_agent: ctx.user_agent,
                    origin: ctx.origin,
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
    /// subject, for [`Rpc::local`](crate::rpc::Rpc::local): the same caller
    /// check, decoding, validation, handler and encoding as over NATS,
    /// without NATS. The benchmark's no-hop floor runs on it.
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
}
