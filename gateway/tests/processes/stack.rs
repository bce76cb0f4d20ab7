//! The built binaries as processes: a [`Stack`] is a gateway process on
//! some NATS and PostgreSQL, and the means to start workers beside it.

use std::{
    collections::HashSet, ops::Deref, path::PathBuf, process::Stdio, sync::OnceLock, time::Duration,
};

use futures::StreamExt;
use serde_json::Value;
use testkit::{Api, NatsServer, Passwords, TempDir, TestDb, eventually, free_port, with_user};
use tokio::process::{Child, Command};

/// The workspace's binaries, built once per test run.
fn bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = std::process::Command::new(cargo)
            // The workspace's binaries, with the dependency features that
            // `cargo test --workspace` resolved (tests included): only the
            // binaries compile, not every dependency again (which took
            // minutes on 2 cores). `cargo xtask fuzz` builds the same way.
            .args(["build", "--quiet", "--workspace", "--bins", "--tests"])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building the binaries failed");
    });
    // target/<profile>/deps/<this test> → target/<profile>/<name>
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join(name)
}

/// One running copy of a binary.
pub struct Proc {
    child: Child,
}

impl Proc {
    /// Started with its log (stdout and stderr) written to `log`, if any.
    fn start_logging(name: &str, env: &[(String, String)], log: Option<&std::path::Path>) -> Self {
        let verbose = std::env::var_os("TEST_LOG").is_some();
        let output = || match log {
            Some(path) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .unwrap(),
            ),
            None if verbose => Stdio::inherit(),
            None => Stdio::null(),
        };
        let child = Command::new(bin(name))
            .envs(env.iter().cloned())
            .stdout(output())
            .stderr(output())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Self { child }
    }

    /// SIGKILL: no drain, no goodbye.
    pub async fn kill_hard(&mut self) {
        self.child.kill().await.expect("SIGKILL");
    }

    /// Sends `signal` (`STOP`, `CONT`, …) and returns once it is sent.
    pub async fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("running").to_string();
        let sent = Command::new("kill")
            .args([format!("-{signal}"), pid])
            .status()
            .await
            .unwrap();
        assert!(sent.success(), "kill -{signal}");
    }

    /// SIGTERM, then the exit status.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("running").to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .unwrap();
        assert!(sent.success());
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("exits within 30 s of SIGTERM")
            .unwrap()
    }

    /// Whether it still runs (it was never restarted behind the test's back).
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

/// Where a stack's processes find NATS (one URL, or several comma-separated)
/// and PostgreSQL.
pub struct Backends {
    pub nats_url: String,
    pub passwords: Passwords,
    /// The database as a superuser; each worker connects to it as its own
    /// role (`auth_worker::provision`).
    pub db_url: String,
    /// The roles' password files (`pg-<role>-password`), for a cluster that
    /// asks for passwords; `None` where loopback is trusted.
    pub db_passwords: Option<PathBuf>,
}

impl Backends {
    /// `nats` and `db`, where loopback is trusted.
    pub fn of(nats_url: String, passwords: &Passwords, db: &TestDb) -> Self {
        Self {
            nats_url,
            passwords: passwords.clone(),
            db_url: db.url.clone(),
            db_passwords: None,
        }
    }
}

/// A gateway process and the means to start workers beside it, called
/// through its HTTP API (`stack.signup(…)`: see [`Api`]).
pub struct Stack {
    api: Api,
    backends: Backends,
    /// The nats-server and database of a stack that made its own.
    _nats: Option<NatsServer>,
    _db: Option<TestDb>,
    _keys: TempDir,
    key_file: PathBuf,
    pub gateway: Proc,
}

impl Deref for Stack {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Stack {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// A stack with its own nats-server and database, whose gateway gets
    /// `gateway_env` too.
    pub async fn start_with(gateway_env: &[(&str, &str)]) -> Self {
        let nats = NatsServer::start().await;
        let db = TestDb::create().await;
        let backends = Backends::of(nats.url(), &nats.passwords, &db);
        let mut stack = Self::on(backends, gateway_env).await;
        stack._nats = Some(nats);
        stack._db = Some(db);
        stack
    }

    /// A stack on servers the test owns (and may break).
    pub async fn on(backends: Backends, gateway_env: &[(&str, &str)]) -> Self {
        Self::on_logging(backends, gateway_env, None).await
    }

    /// [`Self::on`], the gateway's log written to `log`, if any.
    pub async fn on_logging(
        backends: Backends,
        gateway_env: &[(&str, &str)],
        log: Option<&std::path::Path>,
    ) -> Self {
        let keys = TempDir::new();
        let key_file = keys.path.join("jwt.pem");
        auth_worker::tokens::generate_key_file(&key_file).unwrap();
        let session_key = keys.path.join("session-key");
        let key = gateway::session::seal::generate().unwrap();
        std::fs::write(&session_key, gateway::session::seal::encode_key(&key)).unwrap();
        let port = free_port();
        let mut env = vec![
            ("GATEWAY_NATS__URL".into(), backends.nats_url.clone()),
            (
                "GATEWAY_NATS__PASSWORD".into(),
                backends.passwords.gateway.clone(),
            ),
            ("GATEWAY_HTTP__ADDR".into(), format!("127.0.0.1:{port}")),
            ("GATEWAY_LOG__LEVEL".into(), "warn".into()),
            (
                "GATEWAY_SESSION__KEY_FILE".into(),
                session_key.display().to_string(),
            ),
        ];
        env.extend(
            gateway_env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let gateway = Proc::start_logging("gateway", &env, log);
        let stack = Self {
            api: Api::new(format!("http://127.0.0.1:{port}")),
            backends,
            _nats: None,
            _db: None,
            _keys: keys,
            key_file,
            gateway,
        };
        // Up when /healthz answers.
        let health = stack.url("/healthz");
        let (http, health) = (&stack.http, health.as_str());
        let up = eventually(
            Duration::from_secs(30),
            Duration::from_millis(25),
            || async move {
                let reply = http.get(health).send().await;
                reply.is_ok_and(|r| r.status() == 200)
            },
        );
        assert!(up.await, "the gateway comes up");
        stack
    }

    /// The stack's database, as a superuser.
    pub fn db_url(&self) -> &str {
        &self.backends.db_url
    }

    pub fn worker(&self, name: &str) -> Proc {
        self.worker_with(name, &[])
    }

    /// A worker with `extra` environment besides the stack's.
    pub fn worker_with(&self, name: &str, extra: &[(&str, &str)]) -> Proc {
        self.worker_logging(name, extra, None)
    }

    /// [`Self::worker_with`], its log written to `log`.
    pub fn worker_logging(
        &self,
        name: &str,
        extra: &[(&str, &str)],
        log: Option<&std::path::Path>,
    ) -> Proc {
        // The mail-worker has no database; its SMTP server is the test's
        // (`MAIL_WORKER_SMTP__PORT` in `extra`).
        let (prefix, password, database) = match name {
            "auth-worker" => (
                "AUTH_WORKER",
                &self.backends.passwords.auth_worker,
                Some(auth_worker::provision::ROLES[1]),
            ),
            "mail-worker" => ("MAIL_WORKER", &self.backends.passwords.mail_worker, None),
            _ => (
                "USER_WORKER",
                &self.backends.passwords.user_worker,
                Some(auth_worker::provision::ROLES[2]),
            ),
        };
        let mut env = vec![
            (
                format!("{prefix}_NATS__URL"),
                self.backends.nats_url.clone(),
            ),
            (format!("{prefix}_NATS__PASSWORD"), password.clone()),
            (format!("{prefix}_LOG__LEVEL"), "warn".into()),
        ];
        if let Some((role, password_file)) = database {
            env.push((
                format!("{prefix}_DATABASE__URL"),
                with_user(&self.backends.db_url, role),
            ));
            if let Some(dir) = &self.backends.db_passwords {
                env.push((
                    format!("{prefix}_DATABASE__PASSWORD_FILE"),
                    dir.join(password_file).display().to_string(),
                ));
            }
        }
        if name == "mail-worker" {
            env.push(("MAIL_WORKER_MAIL__PUBLIC_ORIGIN".into(), self.url("")));
        }
        if name == "auth-worker" {
            env.push((
                "AUTH_WORKER_JWT__PRIVATE_KEY_FILE".into(),
                self.key_file.display().to_string(),
            ));
        }
        env.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        Proc::start_logging(name, &env, log)
    }

    /// Every reply to one request on a service-API subject (`$SRV.PING.x`,
    /// `$SRV.STATS.x`), asked as `ops`: one per copy, collected until 300 ms
    /// pass in silence.
    pub async fn service_replies(&self, subject: &str) -> Vec<Value> {
        let (urls, passwords) = (&self.backends.nats_url, &self.backends.passwords);
        let (ops, _) = testkit::connect(urls, passwords, "ops", "_INBOX_ops")
            .await
            .unwrap_or_else(|e| panic!("ops connects to {urls}: {e}"));
        let inbox = ops.new_inbox();
        let mut replies = ops.subscribe(inbox.clone()).await.unwrap();
        ops.publish_with_reply(subject.to_owned(), inbox, "".into())
            .await
            .unwrap();
        let mut all = Vec::new();
        while let Ok(Some(reply)) =
            tokio::time::timeout(Duration::from_millis(300), replies.next()).await
        {
            // A status message ("no responders") has no body.
            if let Ok(body) = serde_json::from_slice::<Value>(&reply.payload) {
                all.push(body);
            }
        }
        all
    }

    /// The ids of the copies of `service` that answer a ping.
    async fn copies(&self, service: &str) -> HashSet<String> {
        self.service_replies(&format!("$SRV.PING.{service}"))
            .await
            .iter()
            .map(|pong| pong["id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Waits until exactly `n` copies of `service` answer.
    pub async fn wait_for_copies(&self, service: &str, n: usize) -> HashSet<String> {
        tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let ids = self.copies(service).await;
                if ids.len() == n {
                    return ids;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{n} copies of {service} never answered"))
    }

    /// Polls `/readyz` until it answers `status`; the body.
    pub async fn await_readyz(&self, status: u16) -> Value {
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                let response = self.get("/readyz").await;
                if response.status() == status {
                    return response.json().await.unwrap_or(Value::Null);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("/readyz never answered {status}"))
    }
}
