//! Liveness, readiness and the API document.

use std::time::Duration;

use axum::{Json, extract::State};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    error::{ApiError, ErrorBody},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

/// Prometheus metrics: HTTP requests by route and status with latency
/// histograms, NATS requests by subject and outcome, process figures.
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain; version=0.0.4")))]
async fn metrics() -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        crate::metrics::render(),
    )
}

/// A passed health or readiness check.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// 200 while the process runs.
#[utoipa::path(get, path = "/healthz", tag = "ops",
    responses((status = 200, description = "Alive", body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// 200 when NATS is connected and every worker service answers a ping; else
/// 503 whose message names what is missing.
#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "Not ready; the message names what is missing", body = ErrorBody),
    ))]
async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    let clients = state.nats.rpc().clients();
    // In-process handlers (the benchmark's floor) have nothing to reach.
    if clients.is_empty() {
        return Ok(Json(Health { status: "ok" }));
    }
    let mut missing = Vec::new();
    if clients
        .iter()
        .any(|(_, c)| c.connection_state() != async_nats::connection::State::Connected)
    {
        missing.push("nats".to_owned());
    } else {
        // Each service on its own connection: its reply may reach only that.
        for (service, client) in clients {
            let ping = client.request(format!("$SRV.PING.{service}"), "".into());
            if !matches!(
                tokio::time::timeout(Duration::from_secs(1), ping).await,
                Ok(Ok(_))
            ) {
                missing.push(service.to_owned());
            }
        }
    }
    if missing.is_empty() {
        Ok(Json(Health { status: "ok" }))
    } else {
        Err(ApiError::NotReady(missing))
    }
}
