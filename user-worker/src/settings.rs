//! The user-worker's settings: the defaults of `config/user-worker.toml`,
//! `config/service.toml` and `config/log.toml` (compiled in), then
//! `--config FILE`, then `USER_WORKER_<SECTION>__<KEY>` environment variables.
//! What each key means is in those files; the docs here stay short.

use std::path::Path;

use runtime::{
    db::DatabaseSettings,
    nats::NatsSettings,
    settings::{self, ServiceSettings},
    telemetry::LogSettings,
};
use serde::Deserialize;

/// The user-worker's defaults, and the reference of every key it reads (but
/// `[service]`'s and `[log]`'s, in [`settings::SERVICE`] and
/// [`settings::LOG`]).
const DEFAULTS: &str = include_str!("../../config/user-worker.toml");

/// Every setting of the user-worker.
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
            &settings::worker_defaults(DEFAULTS),
            file,
            "USER_WORKER",
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_files_name_every_setting() {
        settings::reference::assert_named::<Settings>("", &settings::worker_defaults(DEFAULTS));
    }
}
