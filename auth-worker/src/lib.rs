//! The auth worker: accounts, credentials and tokens, served on NATS.
//!
//! * [`service`] registers every `auth.*` endpoint with the NATS service API
//!   (queue group `auth-worker`) and is the only place that knows subjects.
//! * `handlers` are plain `async fn(state, ctx, request) -> Result<reply, Error>`,
//!   one file per concern: users, sessions, password, keys.
//! * `db` holds the SQL; [`password`] runs argon2id off the async runtime;
//!   [`tokens`] signs EdDSA access tokens and publishes the JWK Set.
//! * Security events are written to the outbox (`db::outbox`) in the
//!   transaction of each change; `relay` publishes them to the JetStream
//!   stream `AUTH_EVENTS` (one copy at a time), beside the purge loop.
//! * [`factors`] holds the second factors' secrets and checks (TOTP,
//!   recovery codes, passkeys); `handlers::mfa` their subjects.
//! * `user_agent` names a login's browser family and network for the
//!   sessions list, never keeping the whole header or the address.
//! * [`run`] takes its settings and a shutdown future, so tests run the real
//!   worker in-process against their own NATS server and database.
//! * [`provision`] makes the PostgreSQL roles and the database (as a
//!   superuser); [`migrate`] and [`set_role`] connect as the migrator role.

/// The SQL; public so the tests can run the throttle's statements under
/// contention against a real database.
pub mod db;
mod error;
pub mod factors;
mod handlers;
mod normalize;
pub mod password;
pub mod provision;
mod relay;
pub mod service;
pub mod settings;
pub mod tokens;
pub mod user_agent;

use std::{future::Future, sync::Arc};

use anyhow::Context;
use runtime::db::callers::{self, Callers};
use sqlx::{PgPool, postgres::PgPoolOptions};

pub use error::Error;
pub use runtime::db::DatabaseSettings;
pub use settings::Settings;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: PgPool,
    pub hasher: Arc<password::Hasher>,
    pub tokens: Arc<tokens::TokenIssuer>,
    pub settings: Arc<Settings>,
    /// Announces ended sessions ([`shared::auth::SESSIONS_ENDED`]).
    pub notices: runtime::nats::Notices,
    /// The second factors' key and relying parties.
    pub mfa: Arc<Mfa>,
}

/// What the second factors need besides the database.
#[derive(Debug)]
pub struct Mfa {
    /// Seals authenticator-app secrets (`mfa.key_file`).
    pub key: factors::SealingKey,
    /// WebAuthn relying parties, one per public origin.
    pub relying_parties: factors::passkeys::RelyingParties,
}

impl Mfa {
    /// The key of `mfa.key_file` and relying parties named `mfa.issuer`.
    pub fn from_settings(settings: &settings::MfaSettings) -> anyhow::Result<Self> {
        Ok(Self {
            key: factors::SealingKey::from_file(&settings.key_file)?,
            relying_parties: factors::passkeys::RelyingParties::new(&settings.issuer),
        })
    }
}

/// Serves until `shutdown` resolves, then drains and returns.
pub async fn run(
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    Worker::connect(settings).await?.serve(shutdown).await
}

/// A connected auth worker, before it serves.
#[derive(Debug)]
pub struct Worker {
    state: AppState,
    client: async_nats::Client,
}

impl Worker {
    /// Builds the hasher and the token issuer, and connects to NATS (the
    /// database pool connects lazily).
    pub async fn connect(settings: Settings) -> anyhow::Result<Self> {
        let db = runtime::db::pool(&settings.database)?;
        // Building the hasher runs argon2 once (the timing dummy): off the runtime.
        let argon2 = settings.argon2.clone();
        let hasher = tokio::task::spawn_blocking(move || password::Hasher::new(&argon2))
            .await
            .context("building the password hasher")??;
        let tokens = tokens::TokenIssuer::from_settings(&settings.jwt)?;
        let mfa = Mfa::from_settings(&settings.mfa)?;
        let client = runtime::nats::connect(&settings.nats, "auth-worker").await?;
        let state = AppState {
            db,
            hasher: Arc::new(hasher),
            tokens: Arc::new(tokens),
            settings: Arc::new(settings),
            notices: runtime::nats::Notices::new(client.clone()),
            mfa: Arc::new(mfa),
        };
        Ok(Self { state, client })
    }

    /// The password hasher (tests count its verifications).
    pub fn hasher(&self) -> &Arc<password::Hasher> {
        &self.state.hasher
    }

    /// Serves until `shutdown` resolves, then drains and returns. Purges
    /// expired rows at start and on its schedule meanwhile, and relays the
    /// outbox's events when no other copy does.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let purge = tokio::spawn(purge_loop(self.state.clone()));
        let relay = tokio::spawn(relay::run(self.state.clone(), self.client.clone()));
        let callers = Callers::new(self.state.db.clone(), callers::LANES);
        let served = service::builder(self.state, callers)
            .serve(self.client, shutdown)
            .await;
        relay.abort();
        purge.abort();
        served
    }
}

/// Purges now, then every `purge.interval_secs`. Many copies are safe: one
/// purges while the others skip (see `db::purge`). A failure is logged and
/// retried next time.
async fn purge_loop(state: AppState) {
    let every = std::time::Duration::from_secs(state.settings.purge.interval_secs.max(1));
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match db::purge::run(&state.db, &state.settings).await {
            Ok(Some(p)) => tracing::info!(
                sessions = p.sessions,
                refresh_tokens = p.refresh_tokens,
                successors = p.successors,
                throttle_rows = p.throttle_rows,
                email_tokens = p.email_tokens,
                events = p.events,
                second_factor = p.second_factor,
                "purged expired rows"
            ),
            Ok(None) => tracing::debug!("another copy is purging"),
            Err(e) => tracing::warn!(error = %e, "purge failed; retrying next time"),
        }
    }
}

/// Applies `migrations/`, connected with `settings` (the migrator's: the
/// owner of the schema), then brings every stored email to its normal form
/// (`normalize`: it fails, changing nothing, when two accounts would share
/// a mailbox). The database and the roles come first, from [`provision`].
pub async fn migrate(settings: &DatabaseSettings) -> anyhow::Result<()> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(settings.connect_options()?)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.code().as_deref() == Some("3D000") => anyhow::anyhow!(
                "{e}: run `auth-worker provision` (as a PostgreSQL superuser) first"
            ),
            _ => anyhow::Error::new(e)
                .context("cannot reach PostgreSQL (is it running? `cargo xtask up` starts one)"),
        })?;
    MIGRATOR.run(&pool).await.context("applying migrations")?;
    let emails_normalized = normalize::emails(&pool)
        .await
        .context("normalizing stored emails")?;
    tracing::info!(
        applied = MIGRATOR.iter().count(),
        emails_normalized,
        "migrations are up to date"
    );
    Ok(())
}

/// Sets the role of the user with `email` (the first ADMIN is made this way;
/// no HTTP route lets a user raise its own role).
pub async fn set_role(
    settings: &DatabaseSettings,
    email: &str,
    role: shared::Role,
) -> anyhow::Result<shared::User> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(settings.connect_options()?)
        .await
        .context("cannot reach PostgreSQL")?;
    let email = shared::types::Email::parse(email)
        .map_err(|e| anyhow::anyhow!("--email {email:?}: {e}"))?;
    db::users::set_role_by_email(&pool, &email, role)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .with_context(|| format!("no user with email {:?}: sign up first", email.as_str()))
}

/// The project's migrations, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");
