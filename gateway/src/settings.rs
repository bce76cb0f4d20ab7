//! The gateway's settings: defaults here, then `--config FILE`, then
//! `GATEWAY_<SECTION>__<KEY>` environment variables. `[nats]`'s and
//! `[log]`'s defaults are every process's ([`runtime::settings`]).

use std::{collections::HashMap, path::Path, time::Duration};

use runtime::{nats::NatsSettings, settings, telemetry::LogSettings};
use serde::Deserialize;

use crate::{
    admission::AdmissionSettings, proxy::ProxySettings, session::SessionSettings, web::WebSettings,
};

const DEFAULTS: &str = r#"
[http]
addr = "127.0.0.1:8080"
# Room for a post's 50 000 characters however the JSON escapes them.
max_body_bytes = 1048576
request_timeout_ms = 30000
# Comma-separated origins allowed by CORS; empty means no CORS headers, "*" any.
cors_origins = ""
# Responses at least this large are compressed when the client accepts it.
compression_min_bytes = 1024
# Take the client address (for login throttling) from the last
# X-Forwarded-For entry. Only behind exactly one trusted reverse proxy that
# appends it; otherwise a client could claim any address.
trust_forwarded_for = false

[session]
# The browser session's cookie; the __Host- prefix makes browsers keep it
# only when it is Secure, Path=/ and has no Domain.
cookie_name = "__Host-natsauth"
# The cookie's sealing key: 32 random bytes, base64, on the first line
# (`cargo xtask secrets` writes it; `gateway gen-session-key FILE` makes one).
# Empty: a key made at start (sessions end with the process; one copy only).
key_file = ".dev/secrets/session-key"
# The key before the last rotation: its cookies are still read, and sealed
# again with key_file's. Empty: none.
previous_key_file = ""
# The access token in the cookie is refreshed when less than this is left.
refresh_before_secs = 60
# The origin browsers use ("https://app.example.com"): a cookie-authenticated
# POST/PUT/PATCH/DELETE without Sec-Fetch-Site must come from it. Empty: the
# request's own Host.
public_origin = ""

[web]
# The built web app (`cargo xtask web`, or `npm run build` in web/).
dir = "web/dist"

[rpc]
timeout_ms = 5000
[rpc.timeouts_ms]

# Admission control (see `gateway::admission`): per lane, how many NATS
# requests may be out at once (adaptive between min_limit and max_limit),
# how long one may wait for its turn before a 503, and how many one client
# address may hold (0: no bound) before a 429.
[admission]
enabled = true
# A 429 (past an address's share, or a worker's throttle) is answered after
# this long: a client that retries at once then sends a few refused requests
# a second, not thousands that eat the CPU of everyone else's. 0: at once.
hold_refusals_ms = 1000
# At most this many refusals held at once; past it they are answered at once.
max_held_refusals = 4096

# Every subject that does not hash a password.
[admission.default]
algorithm = "aimd"
initial_limit = 32
min_limit = 8
max_limit = 1024
max_wait_ms = 1000
# Generous: one address (a NAT of many people, a busy API client) may hold
# 64 cheap requests at once; a flood from one address gets 429 beyond that
# instead of making everybody else's requests wait past max_wait_ms.
max_per_client = 64
max_queue = 10000

# auth.login, auth.create_user, auth.change_password (argon2id).
[admission.hashing]
algorithm = "vegas"
initial_limit = 4
min_limit = 1
max_limit = 64
max_wait_ms = 10000
max_per_client = 8
max_queue = 10000

[jwt]
issuer = "natsauth"
audience = "natsauth-api"
leeway_secs = 5
jwks_refresh_min_interval_ms = 1000
# The key set is fetched again this often (and whenever the auth-worker
# announces a change), so a key removed from it stops verifying.
jwks_refresh_interval_secs = 300
"#;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub http: HttpSettings,
    pub nats: NatsSettings,
    pub rpc: RpcSettings,
    pub jwt: JwtSettings,
    pub session: SessionSettings,
    pub web: WebSettings,
    pub admission: AdmissionSettings,
    /// The protected upstreams (`[[proxy.routes]]`); none by default.
    #[serde(default)]
    pub proxy: ProxySettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HttpSettings {
    pub addr: String,
    /// Larger request bodies get 413.
    pub max_body_bytes: usize,
    /// A request still running after this long gets 504.
    pub request_timeout_ms: u64,
    /// Comma-separated origins allowed by CORS (`*` for any; empty for none).
    pub cors_origins: String,
    /// Smallest response body worth compressing.
    pub compression_min_bytes: u16,
    /// Read the client address from the last `X-Forwarded-For` entry.
    pub trust_forwarded_for: bool,
}

impl HttpSettings {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn cors_origins(&self) -> Vec<String> {
        self.cors_origins
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct RpcSettings {
    /// How long a NATS request may take before the client gets 504.
    pub timeout_ms: u64,
    /// Per-subject overrides, e.g. `"auth.login" = 10000`.
    #[serde(default)]
    pub timeouts_ms: HashMap<String, u64>,
}

impl RpcSettings {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    pub fn per_subject(&self) -> HashMap<String, Duration> {
        self.timeouts_ms
            .iter()
            .map(|(s, ms)| (s.clone(), Duration::from_millis(*ms)))
            .collect()
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct JwtSettings {
    /// Tokens must carry exactly this `iss` …
    pub issuer: String,
    /// … and this `aud`.
    pub audience: String,
    /// Clock skew tolerated on `exp`.
    pub leeway_secs: u64,
    /// A token with an unknown `kid` refetches `auth.jwks` at most this often.
    pub jwks_refresh_min_interval_ms: u64,
    /// `auth.jwks` is fetched again this often (at least every second).
    pub jwks_refresh_interval_secs: u64,
}

impl JwtSettings {
    pub fn jwks_refresh_interval(&self) -> Duration {
        Duration::from_secs(self.jwks_refresh_interval_secs.max(1))
    }
}

impl Settings {
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        Ok(settings::load(
            &[DEFAULTS, &settings::nats("gateway"), settings::LOG],
            file,
            "GATEWAY",
        )?)
    }
}
