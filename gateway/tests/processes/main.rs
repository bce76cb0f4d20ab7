//! Tests that run the real binaries as separate processes. (The in-process
//! tests in `tests/api` cover behaviour; these cover what only a process
//! boundary shows: signals, drain, exit, lost connections, several copies,
//! several NATS servers.)
//!
//! * `scaling`: restarting every worker under load loses nothing; three
//!   copies of a worker share the load and one can leave under load.
//! * `faults`: a worker SIGKILLed mid-request (504), nats-server killed and
//!   restarted (503 at once, then recovery), PostgreSQL stopped and
//!   restarted (503, then recovery).
//! * `cluster`: the three-node NATS cluster of `nats-cluster/`, one node
//!   SIGKILLed under load.
//! * `otlp`: spans exported to a collector of the test's own, one trace
//!   across the hop, sent on SIGTERM.
//!
//! This file holds the harness: the built binaries, a [`Stack`] of real
//! processes, and a [`Load`] of concurrent HTTP calls that records every
//! reply's status and timing.

// Shares the API tests' helpers; not all of them are used here.
#![allow(dead_code, clippy::unwrap_used)]

#[path = "../api/helpers.rs"]
mod helpers;

mod cluster;
mod faults;
mod otlp;
mod scaling;
mod servers;

use std::{
    collections::{BTreeMap, HashSet},
    path::PathBuf,
    process::Stdio,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use async_nats::ServerAddr;
use futures::StreamExt;
use helpers::{NatsServer, Passwords, TempDir, TestDb};
use serde_json::Value;
use tokio::{
    process::{Child, Command},
    task::JoinHandle,
};

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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Fresh passwords for the four NATS users (a letter first: nats-server reads
/// a variable's value as a config token).
fn random_passwords() -> Passwords {
    let p = || format!("p{}", uuid::Uuid::new_v4().simple());
    Passwords {
        gateway: p(),
        auth_worker: p(),
        user_worker: p(),
        ops: p(),
    }
}

/// Connects as `user`, with that user's inbox prefix, to any of `urls`
/// (comma-separated), as the processes do.
async fn connect_as(urls: &str, passwords: &Passwords, user: &str) -> async_nats::Client {
    let servers: Vec<ServerAddr> = urls.split(',').map(|u| u.parse().unwrap()).collect();
    async_nats::ConnectOptions::with_user_and_password(user.into(), passwords.of(user).into())
        .custom_inbox_prefix(format!("_INBOX_{user}"))
        .connect(servers)
        .await
        .unwrap_or_else(|e| panic!("{user} connects to {urls}: {e}"))
}

/// One running copy of a binary.
struct Proc {
    child: Child,
}

impl Proc {
    fn start(name: &str, env: &[(String, String)]) -> Self {
        let verbose = std::env::var_os("TEST_LOG").is_some();
        let child = Command::new(bin(name))
            .envs(env.iter().cloned())
            .stdout(if verbose {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .stderr(if verbose {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Self { child }
    }

    /// SIGKILL: no drain, no goodbye.
    async fn kill_hard(&mut self) {
        self.child.kill().await.expect("SIGKILL");
    }

    /// SIGTERM, then the exit status.
    async fn terminate(&mut self) -> std::process::ExitStatus {
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
    fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

/// Where a stack's processes find NATS (one URL, or several comma-separated)
/// and PostgreSQL.
struct Backends {
    nats_url: String,
    passwords: Passwords,
    /// The database as a superuser; each worker connects to it as its own
    /// role (`auth_worker::provision`).
    db_url: String,
    /// The roles' password files (`pg-<role>-password`), for a cluster that
    /// asks for passwords; `None` where loopback is trusted.
    db_passwords: Option<PathBuf>,
}

/// A gateway process and the means to start workers beside it.
struct Stack {
    backends: Backends,
    /// The nats-server and database of a stack that made its own.
    _nats: Option<NatsServer>,
    _db: Option<TestDb>,
    _keys: TempDir,
    key_file: PathBuf,
    base: String,
    http: reqwest::Client,
    gateway: Proc,
}

impl Stack {
    async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// A stack with its own nats-server and database, whose gateway gets
    /// `gateway_env` too.
    async fn start_with(gateway_env: &[(&str, &str)]) -> Self {
        let nats = NatsServer::start().await;
        let db = TestDb::create().await;
        let backends = Backends {
            nats_url: nats.url(),
            passwords: nats.passwords.clone(),
            db_url: db.url.clone(),
            db_passwords: None,
        };
        let mut stack = Self::on(backends, gateway_env).await;
        stack._nats = Some(nats);
        stack._db = Some(db);
        stack
    }

    /// A stack on servers the test owns (and may break).
    async fn on(backends: Backends, gateway_env: &[(&str, &str)]) -> Self {
        let keys = TempDir::new();
        let key_file = keys.path.join("jwt.pem");
        auth_worker::tokens::generate_key_file(&key_file).unwrap();
        let port = free_port();
        let mut env = vec![
            ("GATEWAY_NATS__URL".into(), backends.nats_url.clone()),
            (
                "GATEWAY_NATS__PASSWORD".into(),
                backends.passwords.gateway.clone(),
            ),
            ("GATEWAY_HTTP__ADDR".into(), format!("127.0.0.1:{port}")),
            ("GATEWAY_LOG__LEVEL".into(), "warn".into()),
        ];
        env.extend(
            gateway_env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let gateway = Proc::start("gateway", &env);
        let stack = Self {
            backends,
            _nats: None,
            _db: None,
            _keys: keys,
            key_file,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            gateway,
        };
        // Up when /healthz answers.
        tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let health = stack.http.get(format!("{}/healthz", stack.base));
                if health.send().await.is_ok_and(|r| r.status() == 200) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        })
        .await
        .expect("the gateway comes up");
        stack
    }

    fn worker(&self, name: &str) -> Proc {
        self.worker_with(name, &[])
    }

    /// A worker with `extra` environment besides the stack's.
    fn worker_with(&self, name: &str, extra: &[(&str, &str)]) -> Proc {
        let (prefix, password, (role, password_file)) = match name {
            "auth-worker" => (
                "AUTH_WORKER",
                &self.backends.passwords.auth_worker,
                auth_worker::provision::ROLES[1],
            ),
            _ => (
                "USER_WORKER",
                &self.backends.passwords.user_worker,
                auth_worker::provision::ROLES[2],
            ),
        };
        let mut env = vec![
            (
                format!("{prefix}_NATS__URL"),
                self.backends.nats_url.clone(),
            ),
            (format!("{prefix}_NATS__PASSWORD"), password.clone()),
            (
                format!("{prefix}_DATABASE__URL"),
                helpers::url_as(&self.backends.db_url, role),
            ),
            (format!("{prefix}_LOG__LEVEL"), "warn".into()),
        ];
        if let Some(dir) = &self.backends.db_passwords {
            env.push((
                format!("{prefix}_DATABASE__PASSWORD_FILE"),
                dir.join(password_file).display().to_string(),
            ));
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
        Proc::start(name, &env)
    }

    /// An `ops` connection to the stack's NATS.
    async fn ops(&self) -> async_nats::Client {
        connect_as(&self.backends.nats_url, &self.backends.passwords, "ops").await
    }

    /// Every reply to one request on a service-API subject (`$SRV.PING.x`,
    /// `$SRV.STATS.x`): one per copy, collected until 300 ms pass in silence.
    async fn service_replies(&self, subject: &str) -> Vec<Value> {
        let ops = self.ops().await;
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
    async fn wait_for_copies(&self, service: &str, n: usize) -> HashSet<String> {
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

    /// Signs up `email` and logs in; the access token.
    async fn user_token(&self, email: &str) -> String {
        let credentials = serde_json::json!({"email": email, "password": "correct horse battery"});
        let signup = self
            .http
            .post(format!("{}/api/auth/signup", self.base))
            .json(&credentials)
            .send()
            .await
            .unwrap();
        assert_eq!(signup.status(), 201);
        let login: Value = self
            .http
            .post(format!("{}/api/auth/login", self.base))
            .json(&credentials)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        login["accessToken"].as_str().unwrap().to_owned()
    }

    /// `GET /readyz`: the status and the body.
    async fn readyz(&self) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}/readyz", self.base))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Polls `/readyz` until it answers `status`; the body.
    async fn await_readyz(&self, status: u16) -> Value {
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                let (got, body) = self.readyz().await;
                if got == status {
                    return body;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("/readyz never answered {status}"))
    }
}

/// One kind of HTTP call a [`Load`] makes, and the status it gets when all
/// is well.
#[derive(Debug, Clone)]
struct Call {
    name: &'static str,
    method: reqwest::Method,
    path: &'static str,
    body: Option<Value>,
    expect: u16,
}

impl Call {
    /// `GET /api/users/me`: user-worker, one `user.get` (a database read).
    fn me() -> Self {
        Self {
            name: "me",
            method: reqwest::Method::GET,
            path: "/api/users/me",
            body: None,
            expect: 200,
        }
    }

    /// `GET /api/auth/jwks`: auth-worker, no database.
    fn jwks() -> Self {
        Self {
            name: "jwks",
            method: reqwest::Method::GET,
            path: "/api/auth/jwks",
            body: None,
            expect: 200,
        }
    }

    /// `POST /api/auth/refresh` with a token nobody holds: auth-worker, a
    /// database look-up that finds nothing (401) and changes nothing.
    fn unknown_refresh() -> Self {
        Self {
            name: "refresh",
            method: reqwest::Method::POST,
            path: "/api/auth/refresh",
            body: Some(
                serde_json::json!({"refreshToken": "nobody-holds-this-token-00000000000000000"}),
            ),
            expect: 401,
        }
    }
}

/// The outcome of one call; status 0 is a transport error (or no reply
/// within 20 s).
#[derive(Debug, Clone)]
struct Sample {
    call: &'static str,
    ok: bool,
    status: u16,
    /// The error body's message, when the call failed.
    message: Option<String>,
    started: Instant,
    ended: Instant,
}

impl Sample {
    fn elapsed(&self) -> Duration {
        self.ended - self.started
    }
}

/// Concurrent HTTP calls through the gateway, in a loop per task, until
/// stopped; every reply is recorded as it comes.
struct Load {
    /// The kinds of call made.
    calls: Vec<&'static str>,
    samples: Arc<Mutex<Vec<Sample>>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Load {
    /// `tasks` loops, the i-th making `calls[i % calls.len()]` with `token`.
    fn start(stack: &Stack, token: &str, calls: &[Call], tasks: usize) -> Self {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..tasks)
            .map(|i| {
                let call = calls[i % calls.len()].clone();
                let (http, base, token) =
                    (stack.http.clone(), stack.base.clone(), token.to_owned());
                let (samples, stop) = (Arc::clone(&samples), Arc::clone(&stop));
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let mut request = http
                            .request(call.method.clone(), format!("{base}{}", call.path))
                            .bearer_auth(&token)
                            .timeout(Duration::from_secs(20));
                        if let Some(body) = &call.body {
                            request = request.json(body);
                        }
                        let started = Instant::now();
                        let (status, message) = match request.send().await {
                            Ok(response) => {
                                let status = response.status().as_u16();
                                let message = if status == call.expect {
                                    None
                                } else {
                                    // The contract's error body says who failed.
                                    let body: Value = response.json().await.unwrap_or_default();
                                    body["message"].as_str().map(str::to_owned)
                                };
                                (status, message)
                            }
                            Err(_) => (0, None),
                        };
                        let sample = Sample {
                            call: call.name,
                            ok: status == call.expect,
                            status,
                            message,
                            started,
                            ended: Instant::now(),
                        };
                        samples.lock().unwrap().push(sample);
                    }
                })
            })
            .collect();
        Self {
            calls: calls.iter().map(|c| c.name).collect(),
            samples,
            stop,
            tasks,
        }
    }

    fn samples(&self) -> Vec<Sample> {
        self.samples.lock().unwrap().clone()
    }

    /// Polls the samples until `done` holds (20 s at most).
    async fn wait_until(&self, what: &str, done: impl Fn(&[Sample]) -> bool) {
        let finished = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                if done(&self.samples.lock().unwrap()) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(
            finished.is_ok(),
            "never saw {what}; replies so far: {}",
            summary(&self.samples())
        );
    }

    /// Waits for `n` successful replies of every kind of call among the calls
    /// started from now on.
    async fn wait_for_successes(&self, n: usize) {
        let now = Instant::now();
        self.wait_until(&format!("{n} successes of each call"), |samples| {
            self.calls.iter().all(|call| {
                samples
                    .iter()
                    .filter(|s| s.call == *call && s.ok && s.started >= now)
                    .count()
                    >= n
            })
        })
        .await;
    }

    /// Stops every loop; every sample.
    async fn stop(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.unwrap();
        }
        Arc::try_unwrap(self.samples).unwrap().into_inner().unwrap()
    }
}

/// Counts by call and status, for failure messages.
fn summary(samples: &[Sample]) -> String {
    let mut counts: BTreeMap<(&str, u16), usize> = BTreeMap::new();
    for s in samples {
        *counts.entry((s.call, s.status)).or_default() += 1;
    }
    counts
        .iter()
        .map(|((call, status), n)| format!("{call} {status}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Prints what the calls got (seen with `--nocapture`): counts by call and
/// status, and the slowest failure.
/// The gateway's NATS request timeout in the fault tests (the default).
const RPC_TIMEOUT: Duration = Duration::from_secs(5);

fn report(what: &str, samples: &[Sample]) {
    let slowest = samples.iter().filter(|s| !s.ok).map(Sample::elapsed).max();
    eprintln!("{what}: {}; slowest failure: {slowest:?}", summary(samples));
}

/// Fails with the offending samples unless `holds` is true of every sample
/// that `which` selects.
/// Every call that ended before the outage began, and every call that
/// started after the recovery, succeeded.
fn assert_ok_outside(samples: &[Sample], outage: Instant, recovered: Instant, what: &str) {
    assert_every(
        samples,
        |s| s.ended < outage,
        |s| s.ok,
        &format!("every call before the {what} succeeds"),
    );
    assert_every(
        samples,
        |s| s.started > recovered,
        |s| s.ok,
        &format!("every call after the {what} is over succeeds"),
    );
}

/// Every call succeeded or got the gateway's own 503, and none waited near
/// the NATS timeout.
fn assert_fast_gateway_503s(samples: &[Sample]) {
    assert_every(
        samples,
        |_| true,
        |s| s.ok || (s.status == 503 && s.message.as_deref() == Some("service unavailable")),
        "every call succeeds or fails with the gateway's 503",
    );
    assert_every(
        samples,
        |_| true,
        |s| s.elapsed() < RPC_TIMEOUT / 2,
        "no call waits anywhere near the NATS timeout",
    );
}

fn assert_every(
    samples: &[Sample],
    which: impl Fn(&Sample) -> bool,
    holds: impl Fn(&Sample) -> bool,
    rule: &str,
) {
    let selected: Vec<&Sample> = samples.iter().filter(|s| which(s)).collect();
    let broken: Vec<String> = selected
        .iter()
        .filter(|s| !holds(s))
        .map(|s| {
            let message = s.message.as_deref().unwrap_or("");
            format!("{} {} {message:?} in {:?}", s.call, s.status, s.elapsed())
        })
        .collect();
    assert!(
        broken.is_empty(),
        "{rule}: {} of {} broke it: {}{}",
        broken.len(),
        selected.len(),
        broken
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
        if broken.len() > 20 { ", …" } else { "" }
    );
}
