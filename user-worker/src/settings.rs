//! The user worker's settings: defaults here, then `--config FILE`, then
//! `USER_WORKER_<SECTION>__<KEY>` environment variables. `[nats]`,
//! `[service]` and `[log]` are every worker's ([`runtime::settings`]).

use std::path::Path;

use runtime::{
    db::DatabaseSettings,
    nats::NatsSettings,
    settings::{self, ServiceSettings},
    telemetry::LogSettings,
};
use serde::Deserialize;

const DEFAULTS: &str = r#"
[database]
# The worker's own role: no password hashes, no refresh tokens (see
# migrations/0005_worker_roles.sql); its password in password_file.
url = "postgres://natsauth_user_worker@127.0.0.1:5432/natsauth"
max_connections = 8
acquire_timeout_ms = 3000
"#;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub nats: NatsSettings,
    pub database: DatabaseSettings,
    pub service: ServiceSettings,
    pub log: LogSettings,
}

impl Settings {
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        Ok(settings::load(
            &[
                DEFAULTS,
                &settings::nats("user-worker"),
                settings::SERVICE,
                settings::LOG,
            ],
            file,
            "USER_WORKER",
        )?)
    }
}
