//! The HTTP gateway.
//!
//! It holds no database connection and no signing key. For each call it
//! validates the input, checks the access token and the route's role, makes
//! one NATS request through [`shared::rpc::Rpc`] and maps the reply to HTTP.
//!
//! * [`app`] builds the router with its layers, so tests drive the real thing.
//! * [`error`]: the one error type and the envelope of every error body.
//! * [`extract`]: JSON, bearer-token and context extractors.
//! * [`tokens`]: local EdDSA verification with keys from `auth.jwks`.
//! * [`routes`]: one file per resource.
//!
//! A request passes, outside in: request id (accepted or made) → trace span →
//! error envelope → panic catcher → body limit → route (extractors: JSON body,
//! bearer token) → handler → one NATS request.

pub mod error;
pub mod extract;
pub mod routes;
pub mod settings;
pub mod tokens;

use std::{future::Future, net::SocketAddr, sync::Arc};

use axum::{
    Router,
    extract::{DefaultBodyLimit, Request},
    http::StatusCode,
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use shared::rpc::Rpc;
use tower::ServiceBuilder;
use tower_http::{
    catch_panic::CatchPanicLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};

pub use settings::Settings;

/// The request-id header, accepted from the client or made here.
pub const REQUEST_ID: &str = "x-request-id";

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub rpc: Rpc,
    pub tokens: Arc<tokens::TokenVerifier>,
    pub settings: Arc<Settings>,
}

impl AppState {
    pub fn new(client: async_nats::Client, settings: Settings) -> Self {
        let rpc =
            Rpc::new(client, settings.rpc.timeout()).with_timeouts(settings.rpc.per_subject());
        Self {
            tokens: Arc::new(tokens::TokenVerifier::new(rpc.clone(), &settings.jwt)),
            rpc,
            settings: Arc::new(settings),
        }
    }
}

/// The whole HTTP API with its layers.
pub fn app(state: AppState) -> Router {
    let max_body = state.settings.http.max_body_bytes;
    Router::new()
        .nest("/api/auth", routes::auth::router())
        .nest("/api/users", routes::users::router())
        .merge(routes::health::router())
        .fallback(|| async { StatusCode::NOT_FOUND })
        .layer(
            ServiceBuilder::new()
                .layer(middleware::from_fn(drop_bad_request_id))
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(
                    TraceLayer::new_for_http().make_span_with(|request: &Request| {
                        let id = request
                            .headers()
                            .get(REQUEST_ID)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default();
                        tracing::info_span!(
                            "http",
                            method = %request.method(),
                            path = %request.uri().path(),
                            request_id = id,
                        )
                    }),
                )
                .layer(middleware::from_fn(error::error_envelope))
                .layer(CatchPanicLayer::custom(on_panic))
                .layer(DefaultBodyLimit::max(max_body)),
        )
        .with_state(state)
}

/// Serves `listener` until `shutdown` resolves, then finishes open requests.
pub async fn run(
    settings: Settings,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let client = shared::nats::connect(&settings.nats, "gateway").await?;
    let state = AppState::new(client, settings);
    tracing::info!(addr = %listener.local_addr()?, "gateway listening");
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    Ok(())
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

fn on_panic(payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic".to_owned());
    error::ApiError::Internal(anyhow::anyhow!("handler panicked: {detail}")).into_response()
}
