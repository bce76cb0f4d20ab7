//! NATS connection settings and connecting, the same for every process.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, bail};
use async_nats::{Client, ConnectOptions, Event, ServerAddr};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tracing::{info, warn};

/// `[nats]` in every process's settings: each process's defaults, and what
/// each key means, are in its `config/<process>.toml`.
#[derive(Debug, Clone, Deserialize)]
pub struct NatsSettings {
    /// One server URL or several, comma-separated.
    pub url: String,
    /// This process's NATS user (see `nats.conf`).
    pub user: String,
    /// The password; or else `password_file`.
    pub password: Option<SecretString>,
    /// A file whose first line is the password.
    pub password_file: Option<PathBuf>,
    /// The reply-subject prefix this user may subscribe to in `nats.conf`.
    pub inbox_prefix: String,
    /// Give up connecting at start-up after this long.
    pub connect_timeout_ms: u64,
    /// CA certificates (PEM) for the servers' TLS; set, TLS is required.
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
}

impl NatsSettings {
    /// The password, from `nats.password` or else `nats.password_file`.
    /// An empty one is refused, naming where it came from: nats-server reads
    /// `password: $VAR` with an empty `VAR` as a user without a password, so
    /// an empty value is a mistake on both sides, never a credential.
    /// `env_prefix` is the process's (`GATEWAY`, `AUTH_WORKER`, …).
    fn password(&self, env_prefix: &str) -> anyhow::Result<SecretString> {
        if let Some(p) = &self.password {
            if p.expose_secret().trim().is_empty() {
                bail!(
                    "the NATS password for user {:?} is empty: {env_prefix}_NATS__PASSWORD \
                     (nats.password) is set but empty; set a password, or unset it and use \
                     nats.password_file",
                    self.user
                );
            }
            return Ok(p.clone());
        }
        if let Some(path) = &self.password_file {
            return crate::secret::from_file(path).with_context(|| {
                format!(
                    "the NATS password for user {:?}: nats.password_file {} \
                     ({env_prefix}_NATS__PASSWORD_FILE)",
                    self.user,
                    path.display()
                )
            });
        }
        bail!(
            "no NATS password for user {:?}: set nats.password ({env_prefix}_NATS__PASSWORD) \
             or nats.password_file ({env_prefix}_NATS__PASSWORD_FILE)",
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
/// are logged. `name` is the process's (`auth-worker`): upper-cased with `_`
/// it is the prefix of its settings' environment variables, named in errors.
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

/// The environment prefix of `process`'s settings: `auth-worker` →
/// `AUTH_WORKER` (see [`crate::settings::load`]).
fn env_prefix(process: &str) -> String {
    process.to_ascii_uppercase().replace('-', "_")
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
    let process = name.split('/').next().unwrap_or(name);
    let password = settings.password(&env_prefix(process))?;
    let servers = settings.servers()?;
    let connection = name.to_owned();
    let options = ConnectOptions::with_user_and_password(
        settings.user.clone(),
        password.expose_secret().to_owned(),
    )
    .name(name)
    .custom_inbox_prefix(inbox_prefix)
    .connection_timeout(Duration::from_millis(settings.connect_timeout_ms))
    .max_reconnects(None);
    let options = match &settings.tls_ca_file {
        Some(ca) => options.add_root_certificates(ca.clone()).require_tls(true),
        None => options,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(password: Option<&str>, password_file: Option<PathBuf>) -> NatsSettings {
        NatsSettings {
            url: "nats://127.0.0.1:14222".into(),
            user: "gateway".into(),
            password: password.map(|p| SecretString::from(p.to_owned())),
            password_file,
            inbox_prefix: "_INBOX_gateway".into(),
            connect_timeout_ms: 1000,
            tls_ca_file: None,
        }
    }

    #[test]
    fn an_empty_password_variable_is_refused() {
        for empty in ["", "  "] {
            let err = settings(Some(empty), None)
                .password("GATEWAY")
                .expect_err("an empty password was accepted")
                .to_string();
            assert!(err.contains("GATEWAY_NATS__PASSWORD"), "{err}");
            assert!(err.contains("empty"), "{err}");
        }
    }

    #[test]
    fn an_empty_password_file_is_refused() {
        let dir = std::env::temp_dir().join(format!("nats-pw-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in [("empty", ""), ("blank", "\n"), ("spaces", "   \nsecond\n")] {
            let file = dir.join(name);
            std::fs::write(&file, text).unwrap();
            let err = settings(None, Some(file.clone()))
                .password("AUTH_WORKER")
                .expect_err("an empty password file was accepted")
                .to_string();
            assert!(err.contains(&file.display().to_string()), "{err}");
            assert!(err.contains("AUTH_WORKER_NATS__PASSWORD_FILE"), "{err}");
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_password_from_the_environment_or_a_file_is_used() {
        let from_env = settings(Some("p1"), None).password("GATEWAY").unwrap();
        assert_eq!(from_env.expose_secret(), "p1");
        let dir = std::env::temp_dir().join(format!("nats-pw-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pw");
        std::fs::write(&file, "p2\n").unwrap();
        let from_file = settings(None, Some(file)).password("GATEWAY").unwrap();
        assert_eq!(from_file.expose_secret(), "p2");
        let _ = std::fs::remove_dir_all(dir);
        assert!(settings(None, None).password("GATEWAY").is_err());
        assert_eq!(env_prefix("user-worker"), "USER_WORKER");
    }
}

/// Publishes a worker's notices (subjects nobody answers): a client, or
/// nothing where there is no NATS (the benchmark's in-process floor).
#[derive(Debug, Clone, Default)]
pub struct Notices(Option<Client>);

impl Notices {
    pub fn new(client: Client) -> Self {
        Self(Some(client))
    }

    /// Tells listeners that `user`'s sessions or role changed. Best effort:
    /// a notice that cannot be sent is logged (the listeners' caches expire
    /// on their own soon after).
    pub async fn user_changed(&self, subject: &'static str, user: shared::user::UserId) {
        let Some(client) = &self.0 else { return };
        let body =
            serde_json::to_vec(&shared::user::UserChanged { user_id: user }).unwrap_or_default();
        if let Err(e) = client.publish(subject, body.into()).await {
            warn!(subject, user_id = user, error = %e, "notice not sent");
        }
    }
}
