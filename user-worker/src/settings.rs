//! The user worker's settings: defaults here, then `--config FILE`, then
//! `USER_WORKER_<SECTION>__<KEY>` environment variables.

use std::path::Path;

use serde::Deserialize;
use shared::{db::DatabaseSettings, nats::NatsSettings, telemetry::LogSettings};

const DEFAULTS: &str = r#"
[nats]
url = "nats://127.0.0.1:14222"
user = "user-worker"
inbox_prefix = "_INBOX_user-worker"

[database]
# The worker's own role: no password hashes, no refresh tokens (see
# migrations/0005_worker_roles.sql); its password in password_file.
url = "postgres://natsauth_user_worker@127.0.0.1:5432/natsauth"
max_connections = 8
acquire_timeout_ms = 3000

[service]
max_in_flight = 64

[log]
level = "info"
format = "text"
# OTLP/HTTP base URL for span export, e.g. "http://127.0.0.1:4318"; empty: off
# (unless OTEL_EXPORTER_OTLP_ENDPOINT is set).
otlp_endpoint = ""
# Share of the traces started here that are exported (0 to 1).
otlp_sample_ratio = 1.0
"#;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub nats: NatsSettings,
    pub database: DatabaseSettings,
    pub service: ServiceSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServiceSettings {
    /// Requests handled at once by this copy (over all endpoints).
    pub max_in_flight: usize,
}

impl Settings {
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        Ok(shared::settings::load(DEFAULTS, file, "USER_WORKER")?)
    }
}
