//! Layered configuration: built-in defaults, then an optional TOML file, then
//! environment variables (`<PREFIX>_<SECTION>__<KEY>`), later wins; and the
//! blocks that more than one process has, written once: [`nats`] and [`LOG`]
//! (every process) and [`SERVICE`] (every worker). [`reference::undocumented`]
//! is the check, in each process's tests, that its reference files name every
//! key of its settings.

pub mod reference;

use std::path::Path;

use config::{Config, Environment, File, FileFormat};
use serde::{Deserialize, de::DeserializeOwned};

/// The defaults of `[nats]` ([`crate::nats::NatsSettings`]) for the process
/// that connects as NATS user `user` (see `nats.conf`): the project's
/// nats-server on this machine, and the user's own reply prefix.
pub fn nats(user: &str) -> String {
    format!(
        "[nats]\nurl = \"nats://127.0.0.1:14222\"\nuser = \"{user}\"\n\
         inbox_prefix = \"_INBOX_{user}\"\n"
    )
}

/// The defaults of `[log]` ([`crate::telemetry::LogSettings`]), in every
/// process's settings.
pub const LOG: &str = r#"
[log]
level = "info"
format = "text"
# OTLP/HTTP base URL for span export, e.g. "http://127.0.0.1:4318"; empty: off
# (unless OTEL_EXPORTER_OTLP_ENDPOINT is set).
otlp_endpoint = ""
# Share of the traces started here that are exported (0 to 1).
otlp_sample_ratio = 1.0
"#;

/// The defaults of `[service]` ([`ServiceSettings`]), in every worker's
/// settings.
pub const SERVICE: &str = r#"
[service]
# Requests one copy works on at once (a task each); beyond: 503 "busy" at
# once, which a gateway sends again. Room for 512 keeps the gateway's queue
# (where handing a slot over costs a wake-up across its threads) empty up to
# 512 clients per copy.
max_in_flight = 512
# Threads of the async runtime: 1 runs it on the main thread alone; 0 means
# one per core. Scale a worker by running more copies (one per core).
threads = 1
"#;

/// `[service]`: how a worker copy serves its endpoints.
#[derive(Debug, Clone, Deserialize)]
pub struct ServiceSettings {
    /// Requests handled at once by this copy (over all endpoints); one more
    /// gets a fast 503 with `retryAfter`.
    pub max_in_flight: usize,
    /// Threads of the async runtime: 1 (the default) is tokio's
    /// current-thread runtime, 0 one worker thread per core, n that many.
    /// One thread per copy, with a copy per core, is cheapest: no task is
    /// woken across cores (in the benchmark the user-worker's CPU per `/me` went
    /// from 50 to 36 µs, a quarter of it kernel time spent on those
    /// wake-ups).
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
///   (the process's own, and [`nats`], [`LOG`], [`SERVICE`] as it has them).
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
            &[&nats("user-worker"), SERVICE, LOG],
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
