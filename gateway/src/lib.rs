//! The HTTP gateway.
//!
//! It holds no database connection and no signing key. For each call it
//! validates the input, checks the access token and the route's role, makes
//! one NATS request through [`runtime::rpc::Rpc`] and maps the reply to HTTP.
//!
//! * This file: [`AppState`], [`app`] (the router with its layers, so tests
//!   drive the real thing) and [`run`] (serve until shutdown).
//! * [`layers`]: the middleware [`app`] stacks, in the order it lists them.
//! * [`error`]: the one error type and the envelope of every error body.
//! * [`extract`]: JSON, bearer-token and context extractors.
//! * [`routes`]: one file per resource; [`openapi`]: their document.
//! * [`admission`]: which NATS requests go now, wait or are refused; its
//!   gate and its adaptive limits live beside it.
//! * [`tokens`]: local EdDSA verification with keys from `auth.jwks`.
//! * [`session`]: the browser session cookie, CSRF, refresh; [`web`]: the
//!   web app's pages and files.
//! * [`proxy`]: the protected upstreams (internal web tools behind the
//!   login): sending upstream and the WebSocket tunnel are its parts.
//! * [`metrics`]: Prometheus; [`settings`]: the typed configuration.
//!
//! An API request passes, outside in: request id (accepted or made) → trace
//! span → metrics → CORS → compression → error envelope → panic catcher →
//! client address → time limit → browser session (CSRF, cookie, refresh) →
//! body limit → route (extractors: JSON body, bearer token or session) →
//! handler → admission (its lane's turn) → one NATS request. A proxied
//! request skips CORS, compression, the time limit and the body limit, and
//! the envelope leaves the upstream's answers alone.

pub mod admission;
pub mod error;
pub mod extract;
pub mod layers;
pub mod metrics;
pub mod openapi;
pub mod proxy;
pub mod routes;
pub mod session;
pub mod settings;
pub mod single_flight;
pub mod tokens;
pub mod web;

use std::{future::Future, net::SocketAddr, sync::Arc};

use anyhow::Context;

use axum::{Router, extract::DefaultBodyLimit, middleware};
use runtime::rpc::Rpc;
use tower::ServiceBuilder;
use tower_http::{
    catch_panic::CatchPanicLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
};

pub use settings::Settings;

/// The request-id header, accepted from the client or made here.
pub const REQUEST_ID: &str = "x-request-id";

/// What every handler can reach: one `Arc`, so that the clone axum makes
/// for each request's handler and middleware is one counter, not one per
/// field.
#[derive(Debug, Clone)]
pub struct AppState(Arc<AppInner>);

impl std::ops::Deref for AppState {
    type Target = AppInner;

    fn deref(&self) -> &AppInner {
        &self.0
    }
}

/// The contents of [`AppState`].
#[derive(Debug)]
pub struct AppInner {
    /// NATS calls, through admission control.
    pub nats: admission::Calls,
    pub tokens: Arc<tokens::TokenVerifier>,
    pub sessions: Arc<session::Sessions>,
    pub proxy: Arc<proxy::Proxy>,
    pub settings: Arc<Settings>,
}

/// The worker services the gateway calls, each over its own connection.
pub const SERVICES: [&str; 2] = [shared::auth::SERVICE, shared::user::SERVICE];

impl AppState {
    /// `clients`: one NATS connection per service of [`SERVICES`] (see
    /// [`connect`]).
    /// Fails when the session key files cannot be read or a proxy route is
    /// wrong.
    pub fn new(
        clients: Vec<(&'static str, async_nats::Client)>,
        settings: Settings,
    ) -> anyhow::Result<Self> {
        let rpc =
            Rpc::new(clients, settings.rpc.timeout()).with_timeouts(settings.rpc.per_subject());
        Self::with_rpc(rpc, settings)
    }

    /// A state over any [`Rpc`]; the benchmark's floor passes
    /// [`Rpc::local`] to serve the same API without NATS.
    pub fn with_rpc(rpc: Rpc, settings: Settings) -> anyhow::Result<Self> {
        // The recorder first: admission control registers its gauges now.
        metrics::handle();
        let keys = settings.session.keys()?;
        Ok(Self(Arc::new(AppInner {
            // Key fetches bypass admission: one at a time (single flight),
            // and every token check waits on them.
            tokens: Arc::new(tokens::TokenVerifier::new(rpc.clone(), &settings.jwt)),
            sessions: Arc::new(session::Sessions::new(keys, settings.session.clone())),
            proxy: Arc::new(proxy::Proxy::new(&settings.proxy)?),
            nats: admission::Calls::new(rpc, admission::Admission::new(&settings.admission)),
            settings: Arc::new(settings),
        })))
    }
}

/// The OpenAPI document of every route.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes::api().into_openapi()
}

/// The whole HTTP API with its layers.
pub fn app(state: AppState) -> Router {
    app_with(state, Router::new())
}

/// The API plus `extra` routes (tests add failing routes), with every layer,
/// each list outside in.
pub fn app_with(state: AppState, extra: Router<AppState>) -> Router {
    metrics::handle();
    let http = &state.settings.http;
    // Every request: its id, trace span, response line and metrics.
    let every = ServiceBuilder::new()
        .layer(middleware::from_fn(layers::drop_bad_request_id))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(middleware::from_fn(layers::trace_context))
        .layer(layers::response_line())
        .layer(middleware::from_fn(metrics::track));
    // The API and the web app.
    let api = ServiceBuilder::new()
        .layer(layers::cors(&http.cors_origins()))
        .layer(layers::compression(http.compression_min_bytes))
        .layer(middleware::from_fn(error::error_envelope))
        .layer(CatchPanicLayer::custom(layers::on_panic))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            extract::forwarded_for,
        ))
        .layer(middleware::from_fn_with_state(
            http.request_timeout(),
            layers::time_limit,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            session::layer,
        ))
        .layer(DefaultBodyLimit::max(http.max_body_bytes));
    // Proxied traffic streams as the upstream sends it: no compression, time
    // or body limit; the envelope only dresses the proxy's own refusals.
    let proxied = ServiceBuilder::new()
        .layer(middleware::from_fn(error::error_envelope))
        .layer(CatchPanicLayer::custom(layers::on_panic))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            extract::forwarded_for,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            session::layer,
        ));
    let (routes, _) = routes::api().split_for_parts();
    routes
        .merge(web::router(&state.settings.web))
        .merge(extra)
        .fallback(web::fallback)
        .layer(api)
        .merge(proxy::router(&state.proxy).layer(proxied))
        .layer(every)
        .with_state(state)
}

/// Serves `listener` until `shutdown` resolves, then finishes open requests.
pub async fn run(
    settings: Settings,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    run_with(settings, listener, Router::new(), shutdown).await
}

/// [`run`] with extra routes (for tests).
pub async fn run_with(
    settings: Settings,
    listener: tokio::net::TcpListener,
    extra: Router<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let clients = connect(&settings.nats).await?;
    let state = AppState::new(clients, settings)?;
    let refresher = keep_keys_fresh(&state).await?;
    let upkeep = metrics::upkeep();
    let forgetter = proxy::forget_on_notices(&state).await?;
    for route in &state.proxy.routes {
        tracing::info!(
            route = route.name,
            prefix = route.prefix,
            upstream = %format!("{}://{}{}", route.scheme, route.authority, route.base_path),
            "proxy route"
        );
    }
    tracing::info!(addr = %listener.local_addr()?, "gateway listening");
    // On the signal, proxied streams and tunnels end too (they are not
    // bounded by the API's time limit).
    let closing = state.proxy.closing.clone();
    let shutdown = async move {
        shutdown.await;
        closing.cancel();
    };
    let served = axum::serve(
        listener,
        app_with(state, extra).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    refresher.abort();
    upkeep.abort();
    if let Some(task) = forgetter {
        task.abort();
    }
    Ok(served?)
}

/// Fetches the token keys again periodically and on the auth-worker's
/// notice ([`shared::auth::KEYS_CHANGED`], received on the connection to it).
async fn keep_keys_fresh(state: &AppState) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    use futures::StreamExt;
    let client = state
        .nats
        .rpc()
        .client(shared::auth::SERVICE)
        .context("no NATS connection to the auth-worker")?;
    let notices = client
        .subscribe(shared::auth::KEYS_CHANGED)
        .await
        .context("subscribing to the auth-worker's key notices")?
        .map(drop);
    let tokens = Arc::clone(&state.tokens);
    let interval = state.settings.jwt.jwks_refresh_interval();
    Ok(tokio::spawn(async move {
        tokens.keep_fresh(notices, interval).await;
    }))
}

/// One NATS connection per worker service, named `gateway/<service>`, whose
/// replies arrive under `<nats.inbox_prefix>.<service>`: `nats.conf` lets
/// each service publish only there, so a worker cannot answer the requests
/// meant for another (a user-worker cannot hand the gateway a key set).
pub async fn connect(
    settings: &runtime::nats::NatsSettings,
) -> anyhow::Result<Vec<(&'static str, async_nats::Client)>> {
    let mut clients = Vec::with_capacity(SERVICES.len());
    for service in SERVICES {
        let client = runtime::nats::connect_for_service(settings, "gateway", service).await?;
        clients.push((service, client));
    }
    Ok(clients)
}
