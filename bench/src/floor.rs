//! The no-hop floor: the gateway's router, layers and token checks, with
//! [`shared::rpc::Rpc::local`] calling both workers' handlers in this
//! process. Request and reply are still JSON-encoded and decoded once each,
//! as over NATS; what is missing is the broker: publishing, routing, two
//! socket writes and reads, headers. Configured by the same environment as
//! the three real processes (`GATEWAY_*`, `AUTH_WORKER_*`, `USER_WORKER_*`).

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context;
use shared::rpc::Rpc;

pub async fn run() -> anyhow::Result<()> {
    let gateway = gateway::Settings::load(None)?;
    let auth = auth_worker::Settings::load(None)?;
    let users = user_worker::Settings::load(None)?;
    let _telemetry = runtime::telemetry::init(&gateway.log, "natsauth-bench-floor")?;

    let argon2 = auth.argon2.clone();
    let hasher = tokio::task::spawn_blocking(move || auth_worker::password::Hasher::new(&argon2))
        .await
        .context("building the password hasher")??;
    let auth_state = auth_worker::AppState {
        db: runtime::db::pool(&auth.database)?,
        hasher: Arc::new(hasher),
        tokens: Arc::new(auth_worker::tokens::TokenIssuer::from_settings(&auth.jwt)?),
        settings: Arc::new(auth),
        notices: Default::default(),
    };
    let user_state = user_worker::AppState {
        db: runtime::db::pool(&users.database)?,
        settings: Arc::new(users),
        notices: Default::default(),
    };
    let handlers = auth_worker::service::builder(auth_state)
        .into_local()
        .into_iter()
        .chain(user_worker::service::builder(user_state).into_local());
    let rpc = Rpc::local(handlers, gateway.rpc.timeout()).with_timeouts(gateway.rpc.per_subject());

    let listener = tokio::net::TcpListener::bind(&gateway.http.addr)
        .await
        .with_context(|| format!("cannot listen on {}", gateway.http.addr))?;
    tracing::info!(addr = %listener.local_addr()?, "floor listening (no NATS)");
    let app = gateway::app(gateway::AppState::with_rpc(rpc, gateway)?);
    // As the gateway's `run` does.
    let _upkeep = gateway::metrics::upkeep();
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(runtime::shutdown::signal())
    .await?;
    Ok(())
}
