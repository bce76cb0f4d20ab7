//! PostgreSQL settings and pool, the same for both workers.

use crate::{Caller, ServiceError, User};
use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};

/// `[database]` in a worker's settings.
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// A `postgres://` URL; may hold a password, so it is a secret.
    pub url: SecretString,
    pub max_connections: u32,
    /// How long a request waits for a connection before answering 503.
    pub acquire_timeout_ms: u64,
}

impl DatabaseSettings {
    pub fn connect_options(&self) -> anyhow::Result<PgConnectOptions> {
        self.url
            .expose_secret()
            .parse()
            .context("database.url is not a PostgreSQL URL")
    }
}

/// The claimed caller's user as it stands now, if the caller's session is
/// live (not revoked, not expired, and the user's own): its role is the one
/// that counts. One query over two primary keys; a deleted user has no
/// sessions left.
pub async fn resolve_caller(db: &PgPool, claimed: Caller) -> Result<User, ServiceError> {
    let ended = || ServiceError::unauthorized("session expired or revoked");
    let session = claimed.session.ok_or_else(ended)?;
    let user: Option<User> = sqlx::query_as(
        "select u.id, u.email, u.firstname, u.lastname, u.role, u.created_at, u.updated_at \
         from sessions s join users u on u.id = s.user_id \
         where s.id = $1 and s.user_id = $2 and s.revoked_at is null and s.expires_at > now()",
    )
    .bind(session)
    .bind(claimed.id)
    .fetch_optional(db)
    .await?;
    user.ok_or_else(ended)
}

/// A lazily connecting pool: the worker starts (and answers 503) while the
/// database is down, and recovers by itself when it returns.
pub fn pool(settings: &DatabaseSettings) -> anyhow::Result<PgPool> {
    Ok(PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(std::time::Duration::from_millis(
            settings.acquire_timeout_ms,
        ))
        .connect_lazy_with(settings.connect_options()?))
}
