//! NATS connection settings and connecting, the same for every process.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, bail};
use async_nats::{Client, ConnectOptions, Event, ServerAddr};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tracing::{info, warn};

/// `[nats]` in every process's settings.
#[derive(Debug, Clone, Deserialize)]
pub struct NatsSettings {
    /// One server URL or several, comma-separated (a cluster).
    pub url: String,
    /// This process's NATS user (see `nats.conf`).
    pub user: String,
    /// The password, from the environment; or use `password_file`.
    pub password: Option<SecretString>,
    /// A file holding the password (first line).
    pub password_file: Option<PathBuf>,
    /// The reply-subject prefix this user may subscribe to in `nats.conf`.
    pub inbox_prefix: String,
    /// Give up connecting at start-up after this long.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
}

fn default_connect_timeout_ms() -> u64 {
    5_000
}

impl NatsSettings {
    fn password(&self) -> anyhow::Result<SecretString> {
        if let Some(p) = &self.password {
            return Ok(p.clone());
        }
        if let Some(path) = &self.password_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading nats.password_file {}", path.display()))?;
            let line = text.lines().next().unwrap_or_default().trim().to_owned();
            return Ok(SecretString::from(line));
        }
        bail!(
            "no NATS password for user {:?}: set nats.password (environment) or nats.password_file",
            self.user
        )
    }

    pub fn servers(&self) -> anyhow::Result<Vec<ServerAddr>> {
        let servers = self
            .url
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().with_context(|| format!("bad NATS url {s:?}")))
            .collect::<anyhow::Result<Vec<ServerAddr>>>()?;
        if servers.is_empty() {
            bail!("nats.url names no server");
        }
        Ok(servers)
    }
}

/// Connects as `settings.user`, naming the connection `name`, with the
/// user's inbox prefix. Reconnects forever once connected; connection events
/// are logged.
pub async fn connect(settings: &NatsSettings, name: &str) -> anyhow::Result<Client> {
    connect_with_inbox(settings, name, &settings.inbox_prefix).await
}

/// The connection of a caller of several services (the gateway) to one of
/// them: named `<name>/<service>`, its replies under
/// `<inbox_prefix>.<service>`, the only part of the caller's inbox that
/// `nats.conf` lets that service publish to. So one service cannot answer
/// the requests meant for another.
pub async fn connect_for_service(
    settings: &NatsSettings,
    name: &str,
    service: &str,
) -> anyhow::Result<Client> {
    connect_with_inbox(
        settings,
        &format!("{name}/{service}"),
        &service_inbox_prefix(&settings.inbox_prefix, service),
    )
    .await
}

/// The inbox prefix of a caller's connection to `service`.
pub fn service_inbox_prefix(inbox_prefix: &str, service: &str) -> String {
    format!("{inbox_prefix}.{service}")
}

async fn connect_with_inbox(
    settings: &NatsSettings,
    name: &str,
    inbox_prefix: &str,
) -> anyhow::Result<Client> {
    let password = settings.password()?;
    let servers = settings.servers()?;
    let connection = name.to_owned();
    let options = ConnectOptions::with_user_and_password(
        settings.user.clone(),
        password.expose_secret().to_owned(),
    )
    .name(name)
    .custom_inbox_prefix(inbox_prefix)
    .connection_timeout(Duration::from_millis(settings.connect_timeout_ms))
    .max_reconnects(None)
    .event_callback(move |event| {
        let connection = connection.clone();
        async move {
            match event {
                Event::Connected => info!(connection, "nats connected"),
                Event::Disconnected => warn!(connection, "nats disconnected"),
                other => info!(connection, event = %other, "nats event"),
            }
        }
    });
    options.connect(servers).await.with_context(|| {
        format!(
            "cannot connect to NATS at {} as {:?}; is the project's nats-server running \
             (`cargo xtask up` starts one) and is the password right?",
            settings.url, settings.user
        )
    })
}
