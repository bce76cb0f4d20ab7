//! The HTTP gateway.
//!
//! It holds no database connection and no signing key. For each call it
//! validates the input, checks the access token and the route's role, makes
//! one NATS request through [`runtime::rpc::Rpc`] and maps the reply to HTTP.
//!
//! * [`app`] builds the router with its layers, so tests drive the real thing.
//! * [`error`]: the one error type and the envelope of every error body.
//! * [`extract`]: JSON, bearer-token and context extractors.
//! * [`tokens`]: local EdDSA verification with keys from `auth.jwks`.
//! * [`routes`]: one file per resource.
//!
//! * [`session`]: the browser session cookie, CSRF, refresh; [`web`]: the
//!   web app's pages and files.
//! * [`proxy`]: the protected upstreams (internal web tools behind the
//!   login).
//!
//! An API request passes, outside in: request id (accepted or made) → trace
//! span → metrics → CORS → compression → error envelope → panic catcher →
//! time limit → browser session (CSRF, cookie, refresh) → body limit → route
//! (extractors: JSON body, bearer token or session) → handler → admission
//! (its lane's turn, [`admission`]) → one NATS request. A proxied request skips CORS, compression, the time limit and
//! the body limit, and the envelope leaves the upstream's answers alone.

pub mod admission;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod openapi;
pub mod proxy;
pub mod routes;
pub mod session;
pub mod settings;
pub mod single_flight;
pub mod tokens;
pub mod web;

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;

use axum::{
    Router,
    extract::{DefaultBodyLimit, MatchedPath, Request, State},
    http::{HeaderValue, Method, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use runtime::{rpc::Rpc, telemetry};
use shared::headers::TRACEPARENT;
use tower::ServiceBuilder;
use tower_http::{
    catch_panic::CatchPanicLayer,
    compression::{CompressionLayer, predicate::SizeAbove},
    cors::{AllowOrigin, CorsLayer},
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::{DefaultOnResponse, TraceLayer},
};
use tracing::{Instrument, Level};

pub use settings::Settings;

/// The request-id header, accepted from the client or made here.
pub const REQUEST_ID: &str = "x-request-id";

/// What every handler can reach: one `Arc`, so that the clone axum makes
/// for each request's handler and middleware is one counter, not six
/// (a profile had the per-request clones and drops at 4 % of the
/// gateway's CPU).
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The contents of [`AppState`].
#[derive(Debug)]
pub struct Shared {
    /// NATS calls, through admission control.
    pub rpc: admission::Calls,
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
        Ok(Self(Arc::new(Shared {
            // Key fetches bypass admission: one at a time (single flight),
            // and every token check waits on them.
            tokens: Arc::new(tokens::TokenVerifier::new(rpc.clone(), &settings.jwt)),
            sessions: Arc::new(session::Sessions::new(keys, settings.session.clone())),
            proxy: Arc::new(proxy::Proxy::new(&settings.proxy)?),
            rpc: admission::Calls::new(rpc, admission::Admission::new(&settings.admission)),
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

/// The API plus `extra` routes (tests add failing routes), with every layer.
pub fn app_with(state: AppState, extra: Router<AppState>) -> Router {
    metrics::handle();
    let (api, _) = routes::api().split_for_parts();
    let http = &state.settings.http;
    // Every request: its id, trace span and metrics.
    let outer = ServiceBuilder::new()
        .layer(middleware::from_fn(drop_bad_request_id))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(middleware::from_fn(trace_context))
        .layer(
            TraceLayer::new_for_http()
                // The span `trace_context` made and entered.
                .make_span_with(|_: &Request| tracing::Span::current())
                .on_response(ResponseLine),
        )
        .layer(middleware::from_fn(metrics::track));
    let api_layers = ServiceBuilder::new()
        .layer(cors(&http.cors_origins()))
        .layer(CompressionLayer::new().compress_when(SizeAbove::new(http.compression_min_bytes)))
        .layer(middleware::from_fn(error::error_envelope))
        .layer(CatchPanicLayer::custom(on_panic))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            extract::forwarded_for,
        ))
        .layer(middleware::from_fn_with_state(
            http.request_timeout(),
            time_limit,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            session::layer,
        ))
        .layer(DefaultBodyLimit::max(http.max_body_bytes));
    // Proxied traffic streams as the upstream sends it: no compression, time
    // or body limit; the envelope only dresses the proxy's own refusals.
    let proxy_layers = ServiceBuilder::new()
        .layer(middleware::from_fn(error::error_envelope))
        .layer(CatchPanicLayer::custom(on_panic))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            extract::forwarded_for,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            session::layer,
        ));
    let api = api
        .merge(web::router(&state.settings.web))
        .merge(extra)
        .fallback(web::fallback)
        .layer(api_layers);
    api.merge(proxy::router(&state.proxy).layer(proxy_layers))
        .layer(outer)
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
        .rpc
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

/// One span per request: method, route (the matched pattern, not the raw
/// path, so ids do not explode cardinality), request id, and the trace id
/// that [`trace_context`] records; the response event of the `TraceLayer`
/// inside it adds status and latency.
fn request_span(request: &Request, route: &str) -> tracing::Span {
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "http",
        method = %request.method(),
        route,
        request_id = id,
        trace_id = tracing::field::Empty,
        otel.name = tracing::field::Empty,
        otel.kind = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    )
}

/// Makes the request's span and continues the client's W3C trace (or starts
/// one) in it: the gateway is a new hop of the same trace, and the worker
/// continues it from the NATS header. With OTLP export on, the span is
/// exported as `METHOD /route` with its status. (The trace must be joined
/// before the span is first entered, when the exporter starts it.)
async fn trace_context(mut request: Request, next: Next) -> Response {
    let (span, trace) = {
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map_or("unmatched", MatchedPath::as_str);
        let span = request_span(&request, route);
        let incoming = request
            .headers()
            .get(TRACEPARENT)
            .and_then(|v| v.to_str().ok());
        let trace =
            telemetry::continue_trace(&span, incoming, || format!("{} {route}", request.method()));
        (span, trace)
    };
    request.extensions_mut().insert(trace);
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    telemetry::set_exported_attribute(
        &span,
        "http.response.status_code",
        i64::from(status.as_u16()),
    );
    if status.is_server_error() {
        telemetry::mark_failed(&span);
    }
    response
}

/// The line logged per response: at info level, except admission control's
/// refusals (debug), which a flood would turn into a flood of lines.
#[derive(Debug, Clone, Copy)]
struct ResponseLine;

impl<B> tower_http::trace::OnResponse<B> for ResponseLine {
    fn on_response(self, response: &Response<B>, latency: Duration, span: &tracing::Span) {
        let level = if response.extensions().get::<error::Refused>().is_some() {
            Level::DEBUG
        } else {
            Level::INFO
        };
        DefaultOnResponse::new()
            .level(level)
            .on_response(response, latency, span);
    }
}

/// CORS for the configured origins; none configured means no CORS headers.
fn cors(origins: &[String]) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::HeaderName::from_static(REQUEST_ID),
        ])
        .expose_headers([
            header::HeaderName::from_static(REQUEST_ID),
            header::RETRY_AFTER,
        ]);
    if origins.iter().any(|o| o == "*") {
        layer.allow_origin(AllowOrigin::any())
    } else {
        let list: Vec<HeaderValue> = origins.iter().filter_map(|o| o.parse().ok()).collect();
        layer.allow_origin(AllowOrigin::list(list))
    }
}

/// A client's request id is echoed and logged, so it must be short and plain;
/// anything else is replaced by a fresh one.
async fn drop_bad_request_id(mut request: Request, next: Next) -> Response {
    let ok = request.headers().get(REQUEST_ID).is_none_or(|v| {
        let b = v.as_bytes();
        !b.is_empty()
            && b.len() <= 128
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || b"-_.:".contains(c))
    });
    if !ok {
        request.headers_mut().remove(REQUEST_ID);
    }
    next.run(request).await
}

/// Answers 504 for a request still running after `limit`. The handler is
/// dropped, and with it any NATS request it awaits; a worker that took one
/// still finishes it.
async fn time_limit(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    tokio::time::timeout(limit, next.run(request))
        .await
        .unwrap_or_else(|_| error::ApiError::TimedOut.into_response())
}

fn on_panic(payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic".to_owned());
    error::ApiError::Internal(anyhow::anyhow!("handler panicked: {detail}")).into_response()
}
