//! The mail-worker's settings: the defaults of `config/mail-worker.toml`,
//! `config/service.toml` and `config/log.toml` (compiled in), then
//! `--config FILE`, then `MAIL_WORKER_<SECTION>__<KEY>` environment variables.
//! What each key means is in those files; the docs here stay short.

use std::{path::Path, path::PathBuf, time::Duration};

use runtime::{
    nats::NatsSettings,
    settings::{self, ServiceSettings},
    telemetry::LogSettings,
};
use serde::Deserialize;

/// The mail-worker's defaults, and the reference of every key it reads (but
/// `[service]`'s and `[log]`'s, in [`settings::SERVICE`] and
/// [`settings::LOG`]).
const DEFAULTS: &str = include_str!("../../config/mail-worker.toml");

/// Every setting of the mail-worker.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub nats: NatsSettings,
    pub consumer: ConsumerSettings,
    pub dead_letters: DeadLetterSettings,
    pub smtp: SmtpSettings,
    pub mail: MailSettings,
    /// Only `threads` is read: the mail-worker serves no requests.
    pub service: ServiceSettings,
    pub log: LogSettings,
}

/// `[consumer]`: the durable consumer of AUTH_EVENTS.
#[derive(Debug, Clone, Deserialize)]
pub struct ConsumerSettings {
    pub max_in_flight: usize,
    pub max_deliver: i64,
    pub backoff_secs: Vec<u64>,
    pub ack_wait_secs: u64,
    pub retry_ms: u64,
}

impl ConsumerSettings {
    /// The wait before the try after the `delivered`-th delivery failed.
    pub fn backoff(&self, delivered: i64) -> Duration {
        let index = usize::try_from(delivered.max(1) - 1).unwrap_or(0);
        let secs = self
            .backoff_secs
            .get(index)
            .or(self.backoff_secs.last())
            .copied()
            .unwrap_or(5);
        Duration::from_secs(secs)
    }
}

/// `[dead_letters]`: the stream MAIL_DEAD.
#[derive(Debug, Clone, Deserialize)]
pub struct DeadLetterSettings {
    pub max_age_days: u64,
    pub max_bytes: i64,
}

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tls {
    None,
    Starttls,
    Tls,
}

/// `[smtp]`: the server mail is handed to.
#[derive(Debug, Clone, Deserialize)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    pub timeout_ms: u64,
}

/// `[mail]`: what the mails say and link to.
#[derive(Debug, Clone, Deserialize)]
pub struct MailSettings {
    pub from: String,
    pub public_origin: String,
    pub locale: String,
    #[serde(default)]
    pub templates_dir: Option<PathBuf>,
}

impl Settings {
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        Ok(settings::load(
            &settings::worker_defaults(DEFAULTS),
            file,
            "MAIL_WORKER",
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

    #[test]
    fn the_defaults_load_and_the_last_backoff_repeats() {
        let settings: Settings = settings::load(
            &settings::worker_defaults(DEFAULTS),
            None,
            "MAIL_TEST_UNUSED",
        )
        .unwrap();
        assert_eq!(settings.nats.user, "mail-worker");
        assert_eq!(settings.nats.inbox_prefix, "_INBOX_mail-worker");
        assert_eq!(settings.smtp.tls, Tls::None);
        let consumer = settings.consumer;
        assert_eq!(consumer.backoff(1), Duration::from_secs(5));
        assert_eq!(consumer.backoff(2), Duration::from_secs(30));
        assert_eq!(consumer.backoff(100), Duration::from_secs(3600));
    }
}
