//! The no-hop floor: the gateway's router, layers and token checks, with
//! [`runtime::rpc::Rpc::local`] calling both workers' handlers in this
//! process. Request and reply are still JSON-encoded and decoded once each,
//! as over NATS; what is missing is the broker: publishing, routing, two
//! socket writes and reads, headers. Configured by the same environment as
//! the three real processes (`GATEWAY_*`, `AUTH_WORKER_*`, `USER_WORKER_*`).
//!
//! Its caller checks are one query per request by default (`impl
//! ResolveCaller for PgPool`), as a single-process monolith makes them: the
//! `me-floor` scenario, which the `/me` target is set against. With
//! `--coalesced` they go through the workers' own
//! [`runtime::db::callers::Callers`] (`me-floor-coalesced`): the same code as
//! the stack with only the hop taken away, the hop's own price.

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context;
use runtime::{
    db::callers::{self, Callers},
    rpc::Rpc,
};

#[derive(Debug, clap::Args)]
pub struct FloorArgs {
    /// Check callers in batches, as the workers do, rather than with one
    /// query per request.
    #[arg(long)]
    coalesced: bool,
}

pub async fn run(args: FloorArgs) -> anyhow::Result<()> {
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
        mfa: Arc::new(auth_worker::Mfa::from_settings(&auth.mfa)?),
        settings: Arc::new(auth),
        notices: Default::default(),
    };
    let user_state = user_worker::AppState {
        db: runtime::db::pool(&users.database)?,
        settings: Arc::new(users),
        notices: Default::default(),
    };
    let (auth, users) = if args.coalesced {
        let auth = auth_worker::service::builder(
            auth_state.clone(),
            Callers::new(auth_state.db, callers::LANES),
        );
        let users = user_worker::service::builder(
            user_state.clone(),
            Callers::new(user_state.db, callers::LANES),
        );
        (auth.into_local(), users.into_local())
    } else {
        let auth = auth_worker::service::builder(auth_state.clone(), auth_state.db);
        let users = user_worker::service::builder(user_state.clone(), user_state.db);
        (auth.into_local(), users.into_local())
    };
    let handlers = auth.into_iter().chain(users);
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
