//! The user worker: profiles and posts, served on NATS.
//!
//! * [`service`] registers every `user.*` and `post.*` endpoint (queue group
//!   `user-worker`).
//! * `handlers` (`users`, `posts`) decide ownership themselves from the
//!   caller, which the service loop has checked against the database (live
//!   session, current role) before a handler runs: a request published
//!   straight onto NATS without a live caller, or for another user's data, is
//!   refused before anything changes.
//! * `db` (`users`, `posts`) holds the SQL; lists are keyset pages.
//! * [`run`] takes settings and a shutdown future, like the auth worker.

mod db;
mod error;
mod handlers;
pub mod service;
pub mod settings;

use std::{future::Future, sync::Arc};

use runtime::db::callers::{self, Callers};
use sqlx::PgPool;

pub use error::Error;
pub use settings::Settings;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: PgPool,
    pub settings: Arc<Settings>,
    /// Announces role changes and deletions ([`shared::user::CHANGED`]).
    pub notices: runtime::nats::Notices,
}

/// Serves until `shutdown` resolves, then drains and returns.
pub async fn run(
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let db = runtime::db::pool(&settings.database)?;
    let client = runtime::nats::connect(&settings.nats, "user-worker").await?;
    let state = AppState {
        db,
        settings: Arc::new(settings),
        notices: runtime::nats::Notices::new(client.clone()),
    };
    let callers = Callers::new(state.db.clone(), callers::LANES);
    service::builder(state, callers)
        .serve(client, shutdown)
        .await
}
