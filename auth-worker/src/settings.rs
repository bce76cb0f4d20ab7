//! The auth worker's settings: defaults here, then `--config FILE`, then
//! `AUTH_WORKER_<SECTION>__<KEY>` environment variables. `[nats]`,
//! `[service]` and `[log]` are every worker's ([`runtime::settings`]).

use std::path::{Path, PathBuf};

use runtime::{
    db::DatabaseSettings,
    nats::NatsSettings,
    settings::{self, ServiceSettings},
    telemetry::LogSettings,
};
use serde::Deserialize;

const DEFAULTS: &str = r#"
[database]
# The worker's own role, with only the privileges it needs (see
# migrations/0005_worker_roles.sql); its password in password_file.
url = "postgres://natsauth_auth_worker@127.0.0.1:5432/natsauth"
max_connections = 8
acquire_timeout_ms = 3000

[migrator]
# `auth-worker migrate` and `set-role` connect as the owner of the schema,
# not as the worker. Its database is the one `auth-worker provision` creates.
url = "postgres://natsauth_migrator@127.0.0.1:5432/natsauth"
max_connections = 1
acquire_timeout_ms = 10000

[jwt]
private_key_file = ".dev/keys/jwt-ed25519.pem"
extra_public_key_files = []
issuer = "natsauth"
audience = "natsauth-api"
access_ttl_secs = 900
refresh_ttl_secs = 2592000
# Lifetime of the identity assertions minted for the gateway's protected
# upstreams (`auth.proxy_assertion`); at most 60.
assertion_ttl_secs = 60

[refresh]
# A refresh token presented again within this many seconds of its rotation
# (a client that retried after losing the reply, two tabs) gets the session's
# current token pair back; later, a reuse revokes the whole session. Keep it
# well above the gateway's NATS timeout (rpc.timeout_ms, 5 s) plus one retry
# and a person's reload: a reply lost to a 504 is retried within it.
reuse_grace_secs = 30

[throttle]
# Login attempts are counted before the password is checked (one statement
# reserves them), and given back when the password was right.
window_secs = 900
# One email from one client address (an IPv6 client: its /64): over this many
# attempts in the window, 429 until the window ends, even for the right
# password. Nobody else is locked out by it.
pair_max_attempts = 5
# One client address, over every email: failed attempts in the window.
address_max_failures = 20
# One email from every address: past this many failed attempts in the window,
# each attempt for it waits email_slowdown_ms before the password is checked.
# Never refused, so an attacker cannot lock the owner out.
email_slowdown_after = 10
email_slowdown_ms = 1000
# Sign-ups from one client address per signup_window_secs.
signup_max_per_address = 10
signup_window_secs = 3600

[purge]
# How often a copy deletes expired sessions and tokens and finished throttle
# windows (one copy at a time, whatever the number of copies; also at start).
interval_secs = 600
# Revoked sessions (with their tokens) are kept this long, then deleted.
# Spent refresh tokens of a live session are kept as long as it lives, so a
# stolen one replayed at any time revokes it.
revoked_session_retention_secs = 86400

[argon2]
memory_kib = 19456
iterations = 2
parallelism = 1
# 0 means one per CPU core.
max_concurrent_hashes = 0
# The hashing threads' nice value (0 to 19): under a login flood they take
# the CPU left over by the other requests of the machine, not theirs.
nice = 10
"#;

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
    pub argon2: Argon2Settings,
    pub service: ServiceSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct JwtSettings {
    /// The Ed25519 signing key (PKCS#8 PEM). Its public key is published in
    /// `auth.jwks` with a `kid` that is its RFC 7638 thumbprint.
    pub private_key_file: PathBuf,
    /// Public keys (PEM) still published after a key rotation, so tokens signed
    /// by the previous key verify until they expire.
    pub extra_public_key_files: Vec<PathBuf>,
    pub issuer: String,
    pub audience: String,
    pub access_ttl_secs: u64,
    pub refresh_ttl_secs: u64,
    /// Lifetime of a proxy assertion (capped at 60 s).
    pub assertion_ttl_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RefreshSettings {
    pub reuse_grace_secs: u64,
}

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

#[derive(Debug, Clone, Deserialize)]
pub struct PurgeSettings {
    pub interval_secs: u64,
    pub revoked_session_retention_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Argon2Settings {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    pub max_concurrent_hashes: usize,
    /// The hashing threads' nice value; 0 leaves them at the process's.
    pub nice: i32,
}

impl Settings {
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        Ok(settings::load(
            &[
                DEFAULTS,
                &settings::nats("auth-worker"),
                settings::SERVICE,
                settings::LOG,
            ],
            file,
            "AUTH_WORKER",
        )?)
    }
}
