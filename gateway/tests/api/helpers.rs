//! `spawn_app()`: a whole stack per test.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use async_nats::{Client, ConnectOptions, Event};
use secrecy::SecretString;
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
    sync::mpsc,
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;

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
    pub ops: String,
}

impl Passwords {
    fn random() -> Self {
        // A letter first: nats-server parses a variable's value as a config
        // token, and one starting with a digit is read as a (bad) number.
        let p = || format!("p{}", uuid::Uuid::new_v4().simple());
        Self {
            gateway: p(),
            auth_worker: p(),
            user_worker: p(),
            ops: p(),
        }
    }

    pub fn of(&self, user: &str) -> &str {
        match user {
            "gateway" => &self.gateway,
            "auth-worker" => &self.auth_worker,
            "user-worker" => &self.user_worker,
            "ops" => &self.ops,
            other => panic!("no NATS user {other}"),
        }
    }
}

/// A `nats-server` child process, killed on drop.
pub struct NatsServer {
    _child: Child,
    pub port: u16,
    pub passwords: Passwords,
}

impl NatsServer {
    pub async fn start() -> Self {
        Self::start_with_config(Path::new(NATS_CONF)).await
    }

    /// A server from another configuration file (one that includes
    /// `nats.conf`, say).
    pub async fn start_with_config(config: &Path) -> Self {
        let passwords = Passwords::random();
        let mut child = Command::new(nats_server_bin())
            .arg("-c")
            .arg(config)
            .args(["-a", "127.0.0.1", "-p", "-1"])
            .env("NATS_GATEWAY_PASSWORD", &passwords.gateway)
            .env("NATS_AUTH_WORKER_PASSWORD", &passwords.auth_worker)
            .env("NATS_USER_WORKER_PASSWORD", &passwords.user_worker)
            .env("NATS_OPS_PASSWORD", &passwords.ops)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start nats-server");
        // The server logs the port it picked; that line also means it is ready.
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let mut log = Vec::new();
        let port = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(line) = lines.next_line().await.expect("read nats-server log") {
                if let Some(rest) = line.split("Listening for client connections on ").nth(1) {
                    return rest.rsplit(':').next().and_then(|p| p.trim().parse().ok());
                }
                log.push(line);
            }
            None
        })
        .await
        .expect("nats-server did not start in 10 s");
        let port = port
            .unwrap_or_else(|| panic!("nats-server exited before listening:\n{}", log.join("\n")));
        // Keep draining the log so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            _child: child,
            port,
            passwords,
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Connects as `user` with that user's inbox prefix, and reports server
    /// errors (permission violations) on the returned channel.
    pub async fn connect_as(
        &self,
        user: &str,
    ) -> anyhow::Result<(Client, mpsc::UnboundedReceiver<String>)> {
        self.connect_with_inbox(user, &format!("_INBOX_{user}"))
            .await
    }

    /// Connects as the gateway does to call `service`: replies arrive under
    /// `_INBOX_gateway.<service>`, where only that service may publish.
    pub async fn connect_as_gateway_to(
        &self,
        service: &str,
    ) -> anyhow::Result<(Client, mpsc::UnboundedReceiver<String>)> {
        self.connect_with_inbox("gateway", &format!("_INBOX_gateway.{service}"))
            .await
    }

    async fn connect_with_inbox(
        &self,
        user: &str,
        inbox_prefix: &str,
    ) -> anyhow::Result<(Client, mpsc::UnboundedReceiver<String>)> {
        let (tx, rx) = mpsc::unbounded_channel();
        let client =
            ConnectOptions::with_user_and_password(user.into(), self.passwords.of(user).into())
                .custom_inbox_prefix(inbox_prefix)
                .event_callback(move |event| {
                    let tx = tx.clone();
                    async move {
                        if let Event::ServerError(e) = event {
                            let _ = tx.send(e.to_string());
                        }
                    }
                })
                .connect(self.url())
                .await?;
        Ok((client, rx))
    }
}

/// A fresh database, dropped when the test ends: provisioned (the roles, the
/// database owned by the migrator) and migrated as the migrator, as
/// operators do. The roles get no password here: they are cluster-wide, and
/// a test must not change a password a stack on the same cluster uses; the
/// test cluster lets them in from loopback (trust), as `cargo xtask`'s do.
pub struct TestDb {
    /// The database as the superuser of `TEST_DATABASE_URL`, for tests that
    /// set up or inspect rows behind the workers' backs.
    pub url: String,
    admin_url: String,
    name: String,
}

impl TestDb {
    pub async fn create() -> Self {
        let admin_url = std::env::var("TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("natsauth_test_{}", uuid::Uuid::new_v4().simple());
        let url = provision_and_migrate(&admin_url, &name, None).await;
        Self {
            url,
            admin_url,
            name,
        }
    }

    /// The database as one of the roles of `auth_worker::provision`.
    pub fn url_as(&self, role: &str) -> String {
        url_as(&self.url, role)
    }

    pub async fn pool(&self) -> sqlx::PgPool {
        sqlx::PgPool::connect(&self.url)
            .await
            .expect("connect to test db")
    }
}

/// Provisions `database` on the cluster of `admin_url` (a superuser's URL),
/// with the role passwords of `passwords_dir` if given, and migrates it as
/// the migrator; returns the database's URL as that superuser.
pub async fn provision_and_migrate(
    admin_url: &str,
    database: &str,
    passwords_dir: Option<&Path>,
) -> String {
    let admin: sqlx::postgres::PgConnectOptions = admin_url.parse().expect("an admin URL");
    let passwords = passwords_dir
        .map(|dir| auth_worker::provision::RolePasswords::from_dir(dir).expect("role passwords"));
    auth_worker::provision::provision(&admin, database, passwords.as_ref())
        .await
        .expect(
            "provision the test database (is PostgreSQL running? `cargo xtask test` starts one)",
        );
    let url = with_database(admin_url, database);
    let mut migrator = db_settings(&url_as(&url, auth_worker::provision::MIGRATOR_ROLE));
    migrator.password_file = passwords_dir.map(|dir| dir.join("pg-migrator-password"));
    auth_worker::migrate(&migrator)
        .await
        .expect("migrate the test database as the migrator");
    url
}

/// `url` with its database replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let server = base.rsplit_once('/').map_or(base, |(s, _)| s);
    format!("{server}/{database}{query}")
}

/// `url` with `user` and no password: `postgres://user@host:port/db`.
pub fn url_as(url: &str, user: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let host_on = match rest[..authority_end].rfind('@') {
        Some(at) => &rest[at + 1..],
        None => rest,
    };
    format!("{scheme}://{user}@{host_on}")
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime; use a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let pool = sqlx::PgPool::connect(&admin).await.ok()?;
                sqlx::query(&format!("drop database if exists \"{name}\" with (force)"))
                    .execute(&pool)
                    .await
                    .ok()
            })
        })
        .join();
    }
}

pub fn db_settings(url: &str) -> runtime::db::DatabaseSettings {
    runtime::db::DatabaseSettings {
        url: SecretString::from(url.to_owned()),
        password_file: None,
        max_connections: 8,
        acquire_timeout_ms: 3000,
    }
}

/// What a test may vary.
#[derive(Debug, Clone)]
pub struct Options {
    /// Start the workers (else only NATS and the gateway run).
    pub workers: bool,
    /// The gateway's NATS request timeout.
    pub rpc_timeout_ms: u64,
    /// Per-subject NATS timeouts.
    pub rpc_timeouts_ms: Vec<(&'static str, u64)>,
    /// The gateway's whole-request timeout.
    pub http_timeout_ms: u64,
    /// `http.cors_origins`.
    pub cors_origins: &'static str,
    /// Routes added to the gateway, behind every layer (to test the layers).
    pub extra_routes: axum::Router<gateway::AppState>,
    /// Changes to every auth-worker's settings.
    pub auth: fn(&mut auth_worker::Settings),
    /// `http.trust_forwarded_for`.
    pub trust_forwarded_for: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            workers: true,
            rpc_timeout_ms: 5000,
            rpc_timeouts_ms: Vec::new(),
            http_timeout_ms: 30_000,
            cors_origins: "",
            extra_routes: axum::Router::new(),
            auth: |_| {},
            trust_forwarded_for: false,
        }
    }
}

/// A running stack.
pub struct TestApp {
    pub address: String,
    pub http: reqwest::Client,
    pub nats: NatsServer,
    pub db: TestDb,
    pub key_file: PathBuf,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
    /// Each auth-worker's own stop (a child of `stop`) and task.
    auth_workers: Vec<(CancellationToken, JoinHandle<anyhow::Result<()>>)>,
    tweak_auth: fn(&mut auth_worker::Settings),
    /// The password hasher of every auth-worker started.
    hashers: std::sync::Arc<std::sync::Mutex<Vec<std::sync::Arc<auth_worker::password::Hasher>>>>,
    keys: TempDir,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub async fn spawn_app_with(options: Options) -> TestApp {
    init_logging();
    let nats = NatsServer::start().await;
    let db = TestDb::create().await;
    let keys = TempDir::new();
    let key_file = keys.path.join("jwt-ed25519.pem");
    auth_worker::tokens::generate_key_file(&key_file).expect("generate a signing key");
    let stop = CancellationToken::new();
    let mut app = TestApp {
        address: String::new(),
        http: reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("http client"),
        nats,
        db,
        key_file,
        stop,
        tasks: Vec::new(),
        auth_workers: Vec::new(),
        tweak_auth: options.auth,
        hashers: Default::default(),
        keys,
    };
    if options.workers {
        app.start_auth_worker();
        app.start_user_worker();
        app.wait_for_service("auth-worker").await;
        app.wait_for_service("user-worker").await;
    }

    let mut settings = gateway::Settings::load(None).expect("gateway defaults");
    settings.nats.url = app.nats.url();
    settings.nats.password = Some(app.nats.passwords.gateway.clone().into());
    settings.rpc.timeout_ms = options.rpc_timeout_ms;
    settings.rpc.timeouts_ms = options
        .rpc_timeouts_ms
        .iter()
        .map(|(s, ms)| ((*s).to_owned(), *ms))
        .collect();
    settings.http.request_timeout_ms = options.http_timeout_ms;
    settings.http.cors_origins = options.cors_origins.to_owned();
    settings.http.trust_forwarded_for = options.trust_forwarded_for;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    app.address = format!("http://{addr}");
    let stop = app.stop.clone();
    app.tasks.push(tokio::spawn(gateway::run_with(
        settings,
        listener,
        options.extra_routes,
        async move { stop.cancelled().await },
    )));
    app
}

impl TestApp {
    pub fn auth_worker_settings(&self) -> auth_worker::Settings {
        let mut s = auth_worker::Settings::load(None).expect("auth-worker defaults");
        s.nats.url = self.nats.url();
        s.nats.password = Some(self.nats.passwords.auth_worker.clone().into());
        s.database = db_settings(&self.db.url_as(auth_worker::provision::AUTH_WORKER_ROLE));
        s.migrator = db_settings(&self.db.url_as(auth_worker::provision::MIGRATOR_ROLE));
        s.jwt.private_key_file = self.key_file.clone();
        (self.tweak_auth)(&mut s);
        s
    }

    pub fn start_auth_worker(&mut self) {
        let settings = self.auth_worker_settings();
        let stop = self.stop.child_token();
        let hashers = std::sync::Arc::clone(&self.hashers);
        let shutdown = stop.clone().cancelled_owned();
        let task = tokio::spawn(async move {
            let worker = auth_worker::Worker::connect(settings).await?;
            hashers
                .lock()
                .unwrap()
                .push(std::sync::Arc::clone(worker.hasher()));
            worker.serve(shutdown).await
        });
        self.auth_workers.push((stop, task));
    }

    /// Stops every auth-worker (SIGTERM's drain) and waits until they exit.
    pub async fn stop_auth_workers(&mut self) {
        for (stop, task) in self.auth_workers.drain(..) {
            stop.cancel();
            task.await
                .expect("the auth-worker task")
                .expect("the auth-worker stops cleanly");
        }
    }

    /// A new signing key for the auth-workers started from now on; the old
    /// one is no longer in their key set. Returns its file.
    pub fn new_signing_key(&mut self) -> PathBuf {
        let file = self
            .keys
            .path
            .join(format!("jwt-{}.pem", uuid::Uuid::new_v4().simple()));
        auth_worker::tokens::generate_key_file(&file).expect("generate a signing key");
        self.key_file = file.clone();
        file
    }

    /// Password verifications run by every auth-worker of this stack.
    pub fn password_verifications(&self) -> u64 {
        self.hashers
            .lock()
            .unwrap()
            .iter()
            .map(|h| h.verifications())
            .sum()
    }

    pub fn user_worker_settings(&self) -> user_worker::Settings {
        let mut s = user_worker::Settings::load(None).expect("user-worker defaults");
        s.nats.url = self.nats.url();
        s.nats.password = Some(self.nats.passwords.user_worker.clone().into());
        s.database = db_settings(&self.db.url_as(auth_worker::provision::USER_WORKER_ROLE));
        s
    }

    pub fn start_user_worker(&mut self) {
        let s = self.user_worker_settings();
        let stop = self.stop.clone();
        self.tasks
            .push(tokio::spawn(user_worker::run(s, async move {
                stop.cancelled().await
            })));
    }

    /// Waits until `service` answers `$SRV.PING.<service>`.
    pub async fn wait_for_service(&self, service: &str) {
        let (ops, _) = self.nats.connect_as("ops").await.expect("ops connects");
        let subject = format!("$SRV.PING.{service}");
        tokio::time::timeout(Duration::from_secs(15), async {
            loop {
                let ping = ops.request(subject.clone(), "".into());
                if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(500), ping).await {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{service} did not come up"));
    }

    /// Waits until the server routes `subject` to `sub`. (A client's
    /// `flush` only means its SUB left the socket.) Publishes probes as the
    /// gateway until `sub` receives one; probes carry no request id.
    pub async fn wait_until_routed(&self, subject: &'static str, sub: &mut async_nats::Subscriber) {
        use futures::StreamExt;
        let (probe, _) = self
            .nats
            .connect_as("gateway")
            .await
            .expect("gateway connects");
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                probe
                    .publish(subject, "{}".into())
                    .await
                    .expect("publish a probe");
                if let Ok(Some(_)) =
                    tokio::time::timeout(Duration::from_millis(50), sub.next()).await
                {
                    return;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{subject} never reached the subscriber"));
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn get_with_token(&self, path: &str, token: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    pub async fn signup(&self, email: &str, password: &str) -> reqwest::Response {
        self.post(
            "/api/auth/signup",
            &serde_json::json!({ "email": email, "password": password }),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.post(
            "/api/auth/login",
            &serde_json::json!({ "email": email, "password": password }),
        )
        .await
    }

    /// Signs up and logs in; returns the access token.
    pub async fn user_token(&self, email: &str) -> String {
        assert_eq!(
            self.signup(email, "correct horse battery").await.status(),
            201
        );
        let body: Value = self
            .login(email, "correct horse battery")
            .await
            .json()
            .await
            .expect("json");
        body["accessToken"]
            .as_str()
            .expect("accessToken")
            .to_owned()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Asserts the contract's error body and returns it.
pub async fn assert_error(response: reqwest::Response, status: u16, path: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "status");
    let request_id = response
        .headers()
        .get("x-request-id")
        .expect("x-request-id on every reply")
        .to_str()
        .expect("ascii")
        .to_owned();
    let body: Value = response.json().await.expect("an error body is JSON");
    assert_eq!(body["statusCode"], status, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|s| !s.is_empty()),
        "{body}"
    );
    assert!(
        body["message"].as_str().is_some_and(|s| !s.is_empty()),
        "{body}"
    );
    assert_eq!(body["path"], path, "{body}");
    assert_eq!(body["requestId"], request_id.as_str(), "{body}");
    let ts = body["timestamp"].as_str().expect("timestamp");
    time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
        .expect("timestamp is RFC 3339");
    body
}

/// A temporary directory removed on drop.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new() -> Self {
        let path =
            std::env::temp_dir().join(format!("natsauth-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).expect("temp dir");
        Self { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn init_logging() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// Signs arbitrary claims with a key file, to forge or expire tokens.
pub fn sign(key_file: &Path, header: jsonwebtoken::Header, claims: &Value) -> String {
    let pem = std::fs::read(key_file).expect("read key");
    let key = jsonwebtoken::EncodingKey::from_ed_pem(&pem).expect("ed25519 key");
    jsonwebtoken::encode(&header, claims, &key).expect("sign")
}
