//! The auth-worker's settings: the defaults of `config/auth-worker.toml`,
//! `config/service.toml` and `config/log.toml` (compiled in), then
//! `--config FILE`, then `AUTH_WORKER_<SECTION>__<KEY>` environment variables.
//! What each key means is in those files; the docs here stay short.

use std::path::{Path, PathBuf};

use runtime::{
    db::DatabaseSettings,
    nats::NatsSettings,
    settings::{self, ServiceSettings},
    telemetry::LogSettings,
};
use serde::Deserialize;

/// The auth-worker's defaults, and the reference of every key it reads (but
/// `[service]`'s and `[log]`'s, in [`settings::SERVICE`] and
/// [`settings::LOG`]).
const DEFAULTS: &str = include_str!("../../config/auth-worker.toml");

/// Every setting of the auth-worker.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub nats: NatsSettings,
    pub database: DatabaseSettings,
    /// The schema owner's connection, for `migrate` and `set-role` only.
    pub migrator: DatabaseSettings,
    pub jwt: JwtSettings,
    pub refresh: RefreshSettings,
    pub throttle: ThrottleSettings,
    pub purge: PurgeSettings,
    pub events: EventSettings,
    pub recovery: RecoverySettings,
    pub mfa: MfaSettings,
    pub argon2: Argon2Settings,
    pub service: ServiceSettings,
    pub log: LogSettings,
}

/// `[jwt]`: the tokens and assertions this worker signs.
#[derive(Debug, Clone, Deserialize)]
pub struct JwtSettings {
    /// The Ed25519 signing key (PKCS#8 PEM); its `kid` in `auth.jwks` is its
    /// RFC 7638 thumbprint.
    pub private_key_file: PathBuf,
    /// Public keys (PEM) still published after a key rotation.
    pub extra_public_key_files: Vec<PathBuf>,
    pub issuer: String,
    pub audience: String,
    pub access_ttl_secs: u64,
    pub refresh_ttl_secs: u64,
    /// Lifetime of a proxy assertion (capped at 60 s).
    pub assertion_ttl_secs: u64,
}

/// `[refresh]`: refresh-token rotation.
#[derive(Debug, Clone, Deserialize)]
pub struct RefreshSettings {
    pub reuse_grace_secs: u64,
}

/// `[throttle]`: login and sign-up limits.
#[derive(Debug, Clone, Deserialize)]
pub struct ThrottleSettings {
    pub window_secs: u64,
    pub pair_max_attempts: i32,
    pub address_max_failures: i32,
    pub email_slowdown_after: i32,
    pub email_slowdown_ms: u64,
    pub signup_max_per_address: i32,
    pub signup_window_secs: u64,
}

/// `[purge]`: deleting what has expired.
#[derive(Debug, Clone, Deserialize)]
pub struct PurgeSettings {
    pub interval_secs: u64,
    pub revoked_session_retention_secs: u64,
    pub published_event_retention_secs: u64,
}

/// `[events]`: the outbox relay and the stream it publishes to.
#[derive(Debug, Clone, Deserialize)]
pub struct EventSettings {
    pub stream_max_age_secs: u64,
    pub stream_max_bytes: i64,
    pub duplicate_window_secs: u64,
    pub poll_interval_ms: u64,
    pub standby_retry_ms: u64,
    pub batch_size: i64,
}

/// `[mfa]`: second factors (see `config/auth-worker.toml`).
#[derive(Debug, Clone, Deserialize)]
pub struct MfaSettings {
    /// The key that seals authenticator-app secrets (32 bytes, base64).
    /// Empty: a key made at start (secrets die with the process).
    pub key_file: String,
    /// The issuer an authenticator app shows, and the passkey RP's name.
    pub issuer: String,
    /// An ADMIN must keep a second factor (the gateway enforces the rest).
    pub require_for_admin: bool,
    /// How long a pending login waits for its second factor (seconds).
    pub pending_ttl_secs: u64,
    /// Wrong factors a pending login takes before it is gone.
    pub pending_max_failures: i32,
    /// How long a WebAuthn challenge may be answered (seconds).
    pub challenge_ttl_secs: u64,
    /// Factor checks per user and client address in the throttle window
    /// (`throttle.window_secs`); 429 beyond.
    pub max_attempts_per_address: i32,
    /// Failed factor checks of a user, from every address, after which each
    /// check waits `throttle.email_slowdown_ms` first (never a lock-out).
    pub slowdown_after: i32,
}

/// `[recovery]`: the links mails carry and how often they may be asked for.
#[derive(Debug, Clone, Deserialize)]
pub struct RecoverySettings {
    pub reset_ttl_secs: u64,
    pub verify_ttl_secs: u64,
    pub change_email_ttl_secs: u64,
    pub window_secs: u64,
    pub recover_max_per_email: i32,
    pub recover_max_per_address: i32,
    pub resend_max_per_user: i32,
}

/// `[argon2]`: password hashing.
#[derive(Debug, Clone, Deserialize)]
pub struct Argon2Settings {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// Hashing threads; 0: one per core.
    pub max_concurrent_hashes: usize,
    /// The hashing threads' nice value; 0 leaves them at the process's.
    pub nice: i32,
}

impl Settings {
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        Ok(settings::load(
            &settings::worker_defaults(DEFAULTS),
            file,
            "AUTH_WORKER",
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
