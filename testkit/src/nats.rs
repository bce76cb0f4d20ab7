//! A real `nats-server` per test, and connections to it as one of the
//! users of `nats.conf`.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use async_nats::{Client, ConnectOptions, Event, ServerAddr};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
    sync::mpsc,
};

use crate::eventually;

/// The project's NATS configuration, the same file operators run.
pub const NATS_CONF: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../nats.conf");

/// Finds `nats-server`: `$NATS_SERVER_BIN`, then `PATH`, then the places
/// Debian and manual installs put it.
pub fn nats_server_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("NATS_SERVER_BIN") {
        return bin.into();
    }
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("nats-server"))
                .collect()
        })
        .unwrap_or_default();
    candidates.extend(
        [
            "/usr/sbin/nats-server",
            "/usr/local/bin/nats-server",
            "/usr/bin/nats-server",
        ]
        .map(PathBuf::from),
    );
    candidates.into_iter().find(|p| p.is_file()).unwrap_or_else(|| {
        panic!("nats-server not found: run `cargo xtask test` (it installs it), or `apt-get install nats-server`, or set NATS_SERVER_BIN")
    })
}

/// One password per NATS user, fresh for every server.
#[derive(Debug, Clone)]
pub struct Passwords {
    pub gateway: String,
    pub auth_worker: String,
    pub user_worker: String,
    pub mail_worker: String,
    pub ops: String,
}

impl Passwords {
    pub fn random() -> Self {
        // A letter first: nats-server parses a variable's value as a config
        // token, and one starting with a digit is read as a (bad) number.
        let p = || format!("p{}", uuid::Uuid::new_v4().simple());
        Self {
            gateway: p(),
            auth_worker: p(),
            user_worker: p(),
            mail_worker: p(),
            ops: p(),
        }
    }

    pub fn of(&self, user: &str) -> &str {
        match user {
            "gateway" => &self.gateway,
            "auth-worker" => &self.auth_worker,
            "user-worker" => &self.user_worker,
            "mail-worker" => &self.mail_worker,
            "ops" => &self.ops,
            other => panic!("no NATS user {other}"),
        }
    }
}

/// Connects as `user` to any of `urls` (comma-separated), with replies under
/// `inbox_prefix`, as the processes do; server errors (permission
/// violations) arrive on the returned channel.
pub async fn connect(
    urls: &str,
    passwords: &Passwords,
    user: &str,
    inbox_prefix: &str,
) -> anyhow::Result<(Client, mpsc::UnboundedReceiver<String>)> {
    let servers = urls
        .split(',')
        .map(str::parse)
        .collect::<Result<Vec<ServerAddr>, _>>()?;
    let (tx, rx) = mpsc::unbounded_channel();
    let client = ConnectOptions::with_user_and_password(user.into(), passwords.of(user).into())
        .custom_inbox_prefix(inbox_prefix)
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                if let Event::ServerError(e) = event {
                    let _ = tx.send(e.to_string());
                }
            }
        })
        .connect(servers)
        .await?;
    Ok((client, rx))
}

/// The project's `nats.conf` (or a file that includes it) served on a free
/// port of 127.0.0.1 with fresh [`Passwords`]; killed on drop.
#[derive(Debug)]
pub struct NatsServer {
    process: NatsProcess,
    pub passwords: Passwords,
}

impl NatsServer {
    /// With its HTTP monitoring endpoint on a free port too
    /// ([`monitor_url`](Self::monitor_url)), as `cargo xtask up` runs it.
    pub async fn start() -> Self {
        Self::start_with(Path::new(NATS_CONF), &["-m", "-1"]).await
    }

    /// A server from another configuration file (one that includes
    /// `nats.conf`, say).
    pub async fn start_with_config(config: &Path) -> Self {
        Self::start_with(config, &[]).await
    }

    async fn start_with(config: &Path, extra: &[&str]) -> Self {
        let passwords = Passwords::random();
        let mut args = vec![
            "-c".to_owned(),
            config.display().to_string(),
            "-a".to_owned(),
            "127.0.0.1".to_owned(),
            // Any free port: the log says which.
            "-p".to_owned(),
            "-1".to_owned(),
        ];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        let process = NatsProcess::start("nats", &args, &passwords, &[]).await;
        Self { process, passwords }
    }

    /// `http://127.0.0.1:<port>` of the monitoring endpoint, when started
    /// with [`start`](Self::start) (the server logs it before it takes
    /// clients, so it is known once started).
    pub fn monitor_url(&self) -> Option<String> {
        let log = self.process.log.lock().unwrap();
        log.iter()
            .find_map(|line| line.split("Starting http monitor on ").nth(1))
            .map(|addr| format!("http://{}", addr.trim()))
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.process.port
    }

    pub fn url(&self) -> String {
        self.process.url()
    }

    /// Connects as `user` with that user's inbox prefix, and reports server
    /// errors (permission violations) on the returned channel.
    pub async fn connect_as(
        &self,
        user: &str,
    ) -> anyhow::Result<(Client, mpsc::UnboundedReceiver<String>)> {
        connect(
            &self.url(),
            &self.passwords,
            user,
            &format!("_INBOX_{user}"),
        )
        .await
    }

    /// Connects as the gateway does to call `service`: replies arrive under
    /// `_INBOX_gateway.<service>`, where only that service may publish.
    pub async fn connect_as_gateway_to(
        &self,
        service: &str,
    ) -> anyhow::Result<(Client, mpsc::UnboundedReceiver<String>)> {
        let inbox_prefix = format!("_INBOX_gateway.{service}");
        connect(&self.url(), &self.passwords, "gateway", &inbox_prefix).await
    }
}

/// A `nats-server` process started with the given arguments; killed on drop.
/// Its log is kept (and shown with `TEST_LOG`).
#[derive(Debug)]
pub struct NatsProcess {
    child: Child,
    name: String,
    /// The client port it listens on.
    pub port: u16,
    log: Arc<Mutex<Vec<String>>>,
    /// Its JetStream store, unless the caller named one
    /// (`NATS_JETSTREAM_DIR` in `env`: a restarted server keeps its streams).
    _store: Option<crate::TempDir>,
}

impl NatsProcess {
    /// Starts `nats-server <args>` with the users' passwords (and `env`) in
    /// its environment, and returns once it accepts clients. Its JetStream
    /// store is a directory of its own unless `env` names one
    /// (`NATS_JETSTREAM_DIR`).
    pub async fn start(
        name: &str,
        args: &[String],
        passwords: &Passwords,
        env: &[(&str, String)],
    ) -> Self {
        let store =
            (!env.iter().any(|(k, _)| *k == "NATS_JETSTREAM_DIR")).then(crate::TempDir::new);
        let mut command = Command::new(nats_server_bin());
        if let Some(store) = &store {
            command.env("NATS_JETSTREAM_DIR", &store.path);
        }
        let mut child = command
            .args(args)
            .env("NATS_GATEWAY_PASSWORD", &passwords.gateway)
            .env("NATS_AUTH_WORKER_PASSWORD", &passwords.auth_worker)
            .env("NATS_USER_WORKER_PASSWORD", &passwords.user_worker)
            .env("NATS_MAIL_WORKER_PASSWORD", &passwords.mail_worker)
            .env("NATS_OPS_PASSWORD", &passwords.ops)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start nats-server");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (port_tx, port_rx) = tokio::sync::oneshot::channel();
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let (keep, tag) = (Arc::clone(&log), name.to_owned());
        // Reads the log to its end, so the server never blocks on a full
        // pipe; the line that names the port also means it is ready.
        tokio::spawn(async move {
            let verbose = std::env::var_os("TEST_LOG").is_some();
            let mut port_tx = Some(port_tx);
            while let Ok(Some(line)) = lines.next_line().await {
                if verbose {
                    eprintln!("[{tag}] {line}");
                }
                if let Some(rest) = line.split("Listening for client connections on ").nth(1) {
                    let port = rest.rsplit(':').next().and_then(|p| p.trim().parse().ok());
                    if let (Some(tx), Some(port)) = (port_tx.take(), port) {
                        let _ = tx.send(port);
                    }
                }
                keep.lock().unwrap().push(line);
            }
        });
        let port: u16 = tokio::time::timeout(Duration::from_secs(10), port_rx)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_else(|| {
                panic!(
                    "nats-server {name} did not start:\n{}",
                    log.lock().unwrap().join("\n")
                )
            });
        Self {
            child,
            name: name.to_owned(),
            port,
            log,
            _store: store,
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// SIGKILL, and wait until it is gone (its ports are free again).
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("SIGKILL nats-server");
    }

    /// Waits until a line of its log contains `needle`.
    pub async fn wait_for_log(&self, needle: &str) {
        let logged = eventually(
            Duration::from_secs(15),
            Duration::from_millis(20),
            || async move { self.log.lock().unwrap().iter().any(|l| l.contains(needle)) },
        );
        assert!(
            logged.await,
            "nats-server {} never logged {needle:?}:\n{}",
            self.name,
            self.log.lock().unwrap().join("\n")
        );
    }
}
