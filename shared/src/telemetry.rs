//! Logging set-up shared by every binary: human-readable by default, JSON on
//! request, filtered by `RUST_LOG` or the configured level.

use serde::Deserialize;
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// `[log]` in every process's settings.
#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    /// `info`, `debug`, or any `RUST_LOG`-style filter; `RUST_LOG` wins.
    pub level: String,
    /// `text` or `json`.
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the global subscriber. Call once, from `main`.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(settings.level.clone()));
    let registry = tracing_subscriber::registry().with(filter);
    match settings.format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true),
            )
            .init(),
        LogFormat::Text => registry.with(fmt::layer().with_target(false)).init(),
    }
}
