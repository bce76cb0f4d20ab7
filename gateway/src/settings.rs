//! The gateway's settings: the defaults of `config/gateway.toml` and
//! `config/log.toml` (compiled in), then `--config FILE`, then
//! `GATEWAY_<SECTION>__<KEY>` environment variables. What each key means is
//! in those files; the docs here stay short.

use std::{collections::HashMap, path::Path, time::Duration};

use runtime::{nats::NatsSettings, settings, telemetry::LogSettings};
use serde::Deserialize;

use crate::{
    admission::AdmissionSettings, proxy::ProxySettings, session::SessionSettings, web::WebSettings,
};

/// The gateway's defaults, and the reference of every key it reads (but
/// `[log]`'s, in [`settings::LOG`]).
const DEFAULTS: &str = include_str!("../../config/gateway.toml");

/// Every setting of the gateway.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub http: HttpSettings,
    pub nats: NatsSettings,
    pub rpc: RpcSettings,
    pub jwt: JwtSettings,
    pub session: SessionSettings,
    pub web: WebSettings,
    pub admission: AdmissionSettings,
    pub mfa: MfaSettings,
    /// The protected upstreams (`[[proxy.routes]]`); none by default.
    #[serde(default)]
    pub proxy: ProxySettings,
    pub log: LogSettings,
}

/// `[http]`.
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

/// `[mfa]`: the second-factor policy the gateway enforces.
#[derive(Debug, Clone, Deserialize)]
pub struct MfaSettings {
    /// An ADMIN must have signed in with a second factor: the ADMIN routes
    /// and the back office refuse a session without one, and a proxy route
    /// that admits only ADMIN requires one (as `mfa = "required"` would).
    pub require_for_admin: bool,
}

/// `[rpc]`.
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

/// `[jwt]`: how access tokens are verified.
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
    /// `auth.jwks` is fetched again this often (see
    /// [`Self::jwks_refresh_interval`]).
    pub jwks_refresh_interval_secs: u64,
}

impl JwtSettings {
    /// At least a second, so a zero cannot make the refresh spin.
    pub fn jwks_refresh_interval(&self) -> Duration {
        Duration::from_secs(self.jwks_refresh_interval_secs.max(1))
    }
}

impl Settings {
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        Ok(settings::load(&[DEFAULTS, settings::LOG], file, "GATEWAY")?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_files_name_every_setting() {
        settings::reference::assert_named::<Settings>("", &[DEFAULTS, settings::LOG]);
    }
}
