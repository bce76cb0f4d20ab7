//! Layered configuration: built-in defaults, then an optional TOML file, then
//! environment variables (`<PREFIX>_<SECTION>__<KEY>`), later wins.
//!
//! The defaults are the commented TOML files of `config/`, compiled in: one
//! per process (`gateway.toml`, `auth-worker.toml`, `user-worker.toml`, each
//! with its own `[nats]`), and the blocks more than one process has, written
//! once: [`LOG`] (every process) and [`SERVICE`] (every worker). Those files
//! are the settings' reference; [`reference::undocumented`] is the check,
//! in each process's tests, that they name every key.

pub mod reference;

use std::path::Path;

use config::{Config, Environment, File, FileFormat};
use serde::{Deserialize, de::DeserializeOwned};

/// `[log]` ([`crate::telemetry::LogSettings`]): `config/log.toml`, in every
/// process's defaults.
pub const LOG: &str = include_str!("../../config/log.toml");

/// `[service]` ([`ServiceSettings`]): `config/service.toml`, in every
/// worker's defaults.
pub const SERVICE: &str = include_str!("../../config/service.toml");

/// A worker's defaults: its own file, then [`SERVICE`] and [`LOG`].
pub fn worker_defaults(own: &'static str) -> [&'static str; 3] {
    [own, SERVICE, LOG]
}

/// `[service]`: how a worker copy serves its endpoints (see
/// `config/service.toml`).
#[derive(Debug, Clone, Deserialize)]
pub struct ServiceSettings {
    /// Requests handled at once by this copy, over all endpoints.
    pub max_in_flight: usize,
    /// Threads of the async runtime: 1 is tokio's current-thread runtime,
    /// 0 one worker thread per core, n that many.
    pub threads: usize,
}

impl ServiceSettings {
    /// The async runtime [`threads`](Self::threads) asks for.
    pub fn runtime(&self) -> std::io::Result<tokio::runtime::Runtime> {
        match self.threads {
            1 => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build(),
            n => {
                let mut builder = tokio::runtime::Builder::new_multi_thread();
                if n > 1 {
                    builder.worker_threads(n);
                }
                builder.enable_all().build()
            }
        }
    }
}

/// Loads a process's settings.
///
/// * `defaults`: TOML documents that together give every setting a default
///   (the process's own file, and [`LOG`], [`SERVICE`] as it has them).
/// * `file`: an optional TOML file; it must exist when given.
/// * `env_prefix`: e.g. `GATEWAY` reads `GATEWAY_HTTP__ADDR` into `http.addr`.
pub fn load<T: DeserializeOwned>(
    defaults: &[&str],
    file: Option<&Path>,
    env_prefix: &str,
) -> Result<T, config::ConfigError> {
    let mut builder = Config::builder();
    for document in defaults {
        builder = builder.add_source(File::from_str(document, FileFormat::Toml));
    }
    if let Some(path) = file {
        builder = builder.add_source(File::from(path).format(FileFormat::Toml).required(true));
    }
    builder
        .add_source(
            Environment::with_prefix(env_prefix)
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true),
        )
        .build()?
        .try_deserialize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Demo {
        http: Http,
    }
    #[derive(Debug, serde::Deserialize)]
    struct Http {
        addr: String,
        max_body_bytes: u64,
    }

    #[test]
    fn a_config_file_overrides_the_defaults_key_by_key() {
        // The environment layer is covered by the integration tests, which
        // configure every process through it (setting variables in-process
        // needs `unsafe`, which the workspace forbids).
        let dir = std::env::temp_dir().join(format!("settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("demo.toml");
        std::fs::write(&file, "[http]\naddr = \"0.0.0.0:1\"\n").unwrap();
        let demo: Demo = load(
            &["[http]\naddr = \"127.0.0.1:8080\"\nmax_body_bytes = 10\n"],
            Some(&file),
            "SETTINGS_TEST_UNUSED",
        )
        .unwrap();
        assert_eq!(demo.http.addr, "0.0.0.0:1");
        assert_eq!(demo.http.max_body_bytes, 10);
    }

    #[derive(Debug, serde::Deserialize)]
    struct Worker {
        nats: crate::nats::NatsSettings,
        service: ServiceSettings,
        log: crate::telemetry::LogSettings,
    }

    #[test]
    fn the_shared_blocks_give_their_settings_defaults() {
        let worker: Worker = load(
            &[include_str!("../../config/user-worker.toml"), SERVICE, LOG],
            None,
            "SETTINGS_TEST_UNUSED",
        )
        .unwrap();
        assert_eq!(worker.nats.user, "user-worker");
        assert_eq!(worker.nats.inbox_prefix, "_INBOX_user-worker");
        assert_eq!(worker.nats.url, "nats://127.0.0.1:14222");
        assert_eq!(worker.service.max_in_flight, 512);
        assert_eq!(worker.service.threads, 1);
        assert_eq!(worker.log.level, "info");
    }

    #[test]
    fn service_threads_choose_the_runtime() {
        use tokio::runtime::RuntimeFlavor;
        let flavor = |threads| {
            ServiceSettings {
                max_in_flight: 1,
                threads,
            }
            .runtime()
            .unwrap()
            .block_on(async { tokio::runtime::Handle::current().runtime_flavor() })
        };
        assert_eq!(flavor(1), RuntimeFlavor::CurrentThread);
        assert_eq!(flavor(0), RuntimeFlavor::MultiThread);
        assert_eq!(flavor(3), RuntimeFlavor::MultiThread);
    }

    #[test]
    fn a_missing_config_file_is_an_error() {
        let err = load::<Demo>(
            &["[http]\naddr = \"x\"\nmax_body_bytes = 1\n"],
            Some(Path::new("/nonexistent/app.toml")),
            "SETTINGS_TEST_UNUSED",
        );
        assert!(err.is_err());
    }
}
