//! PostgreSQL as both workers use it: settings, the pool, [`users`], the
//! reads of a user that both make, and [`callers`], the check of every
//! request's caller, coalesced. Every statement is checked against the migrated schema at build
//! time (`sqlx::query!`, with the query data in `.sqlx/`).

pub mod callers;
pub mod users;

use std::path::PathBuf;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};

/// `[database]` in a worker's settings (and `[migrator]` in the
/// auth-worker's): the defaults, and what each key means, are in the
/// worker's `config/<worker>.toml`.
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// A `postgres://` URL; a secret, since it may hold a password.
    pub url: SecretString,
    /// A file whose first line is the password (it wins over one in `url`).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    pub max_connections: u32,
    /// How long a request waits for a connection before answering 503.
    pub acquire_timeout_ms: u64,
}

impl DatabaseSettings {
    pub fn connect_options(&self) -> anyhow::Result<PgConnectOptions> {
        let options: PgConnectOptions = self
            .url
            .expose_secret()
            .parse()
            .context("database.url is not a PostgreSQL URL")?;
        Ok(match &self.password_file {
            Some(path) => options.password(crate::secret::from_file(path)?.expose_secret()),
            None => options,
        })
    }
}

/// The name of the constraint that `e` violated, if it is a violation of a
/// named constraint: each worker's `From<sqlx::Error>` turns the ones a
/// caller can cause into its typed errors, in that one place.
pub fn violated_constraint(e: &sqlx::Error) -> Option<&str> {
    match e {
        sqlx::Error::Database(d) => d.constraint(),
        _ => None,
    }
}

/// A lazily connecting pool: the worker starts (and answers 503) while the
/// database is down, and recovers by itself when it returns.
///
/// One round trip to PostgreSQL per query: no ping before each acquire, and
/// none when a connection goes back to the pool with nothing in flight and no
/// transaction open (sqlx pings on every release; the workspace's vendored
/// `sqlx-postgres` answers that ping at once for a clean connection). A
/// dropped transaction's queued rollback, or a query abandoned mid-flight,
/// still makes the release ask the server (and wait). A connection that died
/// while idle (PostgreSQL restarted) fails its one next query with a 503; that
/// query left it unclean, so its release asks, fails, and drops it.
pub fn pool(settings: &DatabaseSettings) -> anyhow::Result<PgPool> {
    Ok(PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .test_before_acquire(false)
        .acquire_timeout(std::time::Duration::from_millis(
            settings.acquire_timeout_ms,
        ))
        .connect_lazy_with(settings.connect_options()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str, password_file: Option<PathBuf>) -> DatabaseSettings {
        DatabaseSettings {
            url: SecretString::from(url.to_owned()),
            password_file,
            max_connections: 1,
            acquire_timeout_ms: 1,
        }
    }

    fn temp_file(name: &str, content: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("db-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    #[test]
    fn the_password_comes_from_the_first_line_of_the_file() {
        let file = temp_file("good", "s3cret\nignored\n");
        let options = settings("postgres://app@db/natsauth", Some(file))
            .connect_options()
            .unwrap();
        assert_eq!(options.get_username(), "app");
        // PgConnectOptions has no password getter; its Debug shows it.
        assert!(format!("{options:?}").contains("s3cret"));
    }

    #[test]
    fn an_empty_password_file_is_refused_with_its_name() {
        let file = temp_file("empty", "\n");
        let err = settings("postgres://app@db/natsauth", Some(file.clone()))
            .connect_options()
            .unwrap_err();
        assert!(
            err.to_string().contains(&file.display().to_string()),
            "{err}"
        );
        assert!(err.to_string().contains("empty"), "{err}");
        let missing = settings("postgres://app@db/x", Some("/nonexistent/pw".into()))
            .connect_options()
            .unwrap_err();
        assert!(
            format!("{missing:#}").contains("/nonexistent/pw"),
            "{missing:#}"
        );
    }

    #[test]
    fn settings_print_no_password() {
        let shown = format!("{:?}", settings("postgres://app:s3cret@db/natsauth", None));
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}
