//! Tests that run the real binaries as separate processes: restarts under
//! load. (The in-process tests in `tests/api` cover behaviour; these cover
//! what only a process boundary shows: signals, drain, exit.)

// Shares the API tests' helpers; not all of them are used here.
#![allow(dead_code, clippy::unwrap_used)]

#[path = "../api/helpers.rs"]
mod helpers;

use std::{
    collections::HashSet,
    path::PathBuf,
    process::Stdio,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use futures::StreamExt;
use helpers::{NatsServer, TempDir, TestDb};
use serde_json::Value;
use tokio::process::{Child, Command};

/// The workspace's binaries, built once per test run.
fn bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "--bins",
                "-p",
                "gateway",
                "-p",
                "auth-worker",
                "-p",
                "user-worker",
            ])
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
}

/// A stack of real processes.
struct Stack {
    nats: NatsServer,
    db: TestDb,
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

    /// A stack whose gateway gets `gateway_env` too.
    async fn start_with(gateway_env: &[(&str, &str)]) -> Self {
        let nats = NatsServer::start().await;
        let db = TestDb::create().await;
        let keys = TempDir::new();
        let key_file = keys.path.join("jwt.pem");
        auth_worker::tokens::generate_key_file(&key_file).unwrap();
        let port = free_port();
        let mut env = vec![
            ("GATEWAY_NATS__URL".into(), nats.url()),
            (
                "GATEWAY_NATS__PASSWORD".into(),
                nats.passwords.gateway.clone(),
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
            nats,
            db,
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
        let (prefix, password) = match name {
            "auth-worker" => ("AUTH_WORKER", &self.nats.passwords.auth_worker),
            _ => ("USER_WORKER", &self.nats.passwords.user_worker),
        };
        let mut env = vec![
            (format!("{prefix}_NATS__URL"), self.nats.url()),
            (format!("{prefix}_NATS__PASSWORD"), password.clone()),
            (format!("{prefix}_DATABASE__URL"), self.db.url.clone()),
            (format!("{prefix}_LOG__LEVEL"), "warn".into()),
        ];
        if name == "auth-worker" {
            env.push((
                "AUTH_WORKER_JWT__PRIVATE_KEY_FILE".into(),
                self.key_file.display().to_string(),
            ));
        }
        Proc::start(name, &env)
    }

    /// The ids of the copies of `service` that answer a ping.
    async fn copies(&self, service: &str) -> HashSet<String> {
        let (ops, _) = self.nats.connect_as("ops").await.unwrap();
        let inbox = ops.new_inbox();
        let mut replies = ops.subscribe(inbox.clone()).await.unwrap();
        ops.publish_with_reply(format!("$SRV.PING.{service}"), inbox, "".into())
            .await
            .unwrap();
        let mut ids = HashSet::new();
        while let Ok(Some(reply)) =
            tokio::time::timeout(Duration::from_millis(300), replies.next()).await
        {
            // A status message ("no responders") has no body.
            if let Ok(pong) = serde_json::from_slice::<Value>(&reply.payload) {
                ids.insert(pong["id"].as_str().unwrap().to_owned());
            }
        }
        ids
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
}

/// This test found a request lost now and then (1 in ~9,500) with async-nats
/// 0.51 as published: its `Subscriber::drain` forgot the subscription on the
/// client's next poll after the UNSUB was written, not after the server's
/// PONG, so a request routed just before the server processed the UNSUB was
/// dropped. The workspace patches that (vendor/async-nats, `[patch]` in
/// Cargo.toml).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_every_worker_one_by_one_under_load_fails_no_request() {
    let stack = Stack::start().await;
    let mut workers = vec![
        ("auth-worker", stack.worker("auth-worker")),
        ("auth-worker", stack.worker("auth-worker")),
        ("user-worker", stack.worker("user-worker")),
        ("user-worker", stack.worker("user-worker")),
    ];
    stack.wait_for_copies("auth-worker", 2).await;
    stack.wait_for_copies("user-worker", 2).await;

    let signup = stack
        .http
        .post(format!("{}/api/auth/signup", stack.base))
        .json(&serde_json::json!({"email": "ada@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), 201);
    let login: Value = stack
        .http
        .post(format!("{}/api/auth/login", stack.base))
        .json(&serde_json::json!({"email": "ada@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["accessToken"].as_str().unwrap().to_owned();

    // Steady load on both workers: /me (user-worker) and the JWKS (auth-worker).
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for i in 0..6 {
        let (http, base, token, stop) = (
            stack.http.clone(),
            stack.base.clone(),
            token.clone(),
            Arc::clone(&stop),
        );
        load.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let request = if i % 2 == 0 {
                    http.get(format!("{base}/api/users/me")).bearer_auth(&token)
                } else {
                    http.get(format!("{base}/api/auth/jwks"))
                };
                statuses.push(
                    request
                        .send()
                        .await
                        .map(|r| r.status().as_u16())
                        .unwrap_or(0),
                );
            }
            statuses
        }));
    }

    for (service, process) in &mut workers {
        let status = process.terminate().await;
        assert!(
            status.success(),
            "{service} exited with {status} after SIGTERM"
        );
        *process = stack.worker(service);
        stack.wait_for_copies(service, 2).await;
    }

    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for task in load {
        all.extend(task.await.unwrap());
    }
    let failed: Vec<_> = all.iter().filter(|s| **s != 200).collect();
    assert!(
        all.len() > 100,
        "too little load to mean anything: {}",
        all.len()
    );
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {failed:?}",
        failed.len(),
        all.len()
    );

    let mut gateway = stack.gateway;
    assert!(
        gateway.terminate().await.success(),
        "the gateway exits cleanly on SIGTERM"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_request_gives_504_within_the_timeout_and_nothing_hangs() {
    let stack = Stack::start_with(&[("GATEWAY_RPC__TIMEOUT_MS", "1500")]).await;
    let mut worker = stack.worker("auth-worker");
    stack.wait_for_copies("auth-worker", 1).await;
    let credentials =
        serde_json::json!({"email": "ada@example.com", "password": "correct horse battery"});
    let signup = stack
        .http
        .post(format!("{}/api/auth/signup", stack.base))
        .json(&credentials)
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), 201);

    // Logins queue for the worker's argon2 slots; kill it while they do.
    let mut logins = Vec::new();
    for _ in 0..24 {
        let (http, base, body) = (stack.http.clone(), stack.base.clone(), credentials.clone());
        logins.push(tokio::spawn(async move {
            let started = std::time::Instant::now();
            let status = http
                .post(format!("{base}/api/auth/login"))
                .json(&body)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0);
            (status, started.elapsed())
        }));
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    worker.kill_hard().await;

    let mut results = Vec::new();
    for login in logins {
        results.push(login.await.unwrap());
    }
    let statuses: Vec<u16> = results.iter().map(|(s, _)| *s).collect();
    assert!(
        statuses.iter().all(|s| [200, 503, 504].contains(s)),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&504),
        "nobody was in flight at the kill: {statuses:?}"
    );
    // Failing fast: nothing waits much past the 1.5 s NATS timeout.
    let slowest = results.iter().map(|(_, d)| *d).max().unwrap();
    assert!(
        slowest < Duration::from_secs(5),
        "a request hung for {slowest:?}"
    );
    // With no auth-worker left, a new call is a 503 at once.
    let after = stack
        .http
        .post(format!("{}/api/auth/login", stack.base))
        .json(&credentials)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 503);
}
