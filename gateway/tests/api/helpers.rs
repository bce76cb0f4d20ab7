//! `spawn_app()`: a whole stack per test, in this process, on testkit's
//! servers.

use std::{
    net::SocketAddr,
    ops::Deref,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use reqwest::Method;
use serde_json::{Value, json};
use shared::{Caller, Role};
use testkit::{
    Account, Api, Bearer, MailCatcher, NatsServer, TempDir, TestDb, db_settings, eventually,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

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
    /// Changes to the gateway's settings (after the fields above).
    pub gateway: fn(&mut gateway::Settings),
    /// `session.public_origin` is `http://localhost:<the gateway's port>`
    /// (passkeys need an origin with a domain name).
    pub localhost_origin: bool,
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
            gateway: |_| {},
            localhost_origin: false,
        }
    }
}

impl Options {
    /// Only NATS, the database and the gateway: no worker.
    pub fn without_workers() -> Self {
        Self {
            workers: false,
            ..Self::default()
        }
    }

    /// A gateway behind a proxy it trusts: `X-Forwarded-For` names the
    /// client.
    pub fn trusting_forwarded_for() -> Self {
        Self {
            trust_forwarded_for: true,
            ..Self::default()
        }
    }
}

/// A running stack, called through its gateway's HTTP API
/// (`app.signup(…)`, `app.call(…)`: see [`Api`]).
pub struct TestApp {
    api: Api,
    pub nats: NatsServer,
    pub db: TestDb,
    pub key_file: PathBuf,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
    /// Each auth-worker's own stop (a child of `stop`) and task.
    auth_workers: Vec<(CancellationToken, JoinHandle<anyhow::Result<()>>)>,
    tweak_auth: fn(&mut auth_worker::Settings),
    /// The password hasher of every auth-worker started.
    hashers: Arc<Mutex<Vec<Arc<auth_worker::password::Hasher>>>>,
    keys: TempDir,
    /// The SMTP server the mail-workers send to, once one is started.
    mail: Option<MailCatcher>,
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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    let mut app = TestApp {
        api: Api::new(format!("http://{addr}")),
        nats,
        db,
        key_file,
        stop: CancellationToken::new(),
        tasks: Vec::new(),
        auth_workers: Vec::new(),
        tweak_auth: options.auth,
        hashers: Default::default(),
        keys,
        mail: None,
    };
    if options.workers {
        app.start_auth_worker();
        app.start_user_worker();
        app.wait_for_service("auth-worker").await;
        app.wait_for_service("user-worker").await;
    }

    let mut settings = app.gateway_settings();
    settings.rpc.timeout_ms = options.rpc_timeout_ms;
    settings.rpc.timeouts_ms = options
        .rpc_timeouts_ms
        .iter()
        .map(|(s, ms)| ((*s).to_owned(), *ms))
        .collect();
    settings.http.request_timeout_ms = options.http_timeout_ms;
    settings.http.cors_origins = options.cors_origins.to_owned();
    settings.http.trust_forwarded_for = options.trust_forwarded_for;
    if options.localhost_origin {
        settings.session.public_origin = format!("http://localhost:{}", addr.port());
    }
    (options.gateway)(&mut settings);
    app.serve_gateway(settings, listener, options.extra_routes);
    app
}

/// Waits until `api` answers `/healthz` (at most 15 s, else fails with
/// `what`).
async fn wait_until_up(api: &Api, what: &str) {
    let health = api.url("/healthz");
    let (http, health) = (&api.http, health.as_str());
    let up = eventually(
        Duration::from_secs(15),
        Duration::from_millis(20),
        || async move {
            http.get(health)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        },
    );
    assert!(up.await, "{what}");
}

impl Deref for TestApp {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl TestApp {
    /// The gateway's settings for this stack: its NATS, a session key made
    /// for this stack (every gateway of it reads the same file), and the
    /// repository's web build.
    pub fn gateway_settings(&self) -> gateway::Settings {
        let mut settings = gateway::Settings::load(None).expect("gateway defaults");
        settings.nats.url = self.nats.url();
        settings.nats.password = Some(self.nats.passwords.gateway.clone().into());
        settings.session.key_file = self.session_key_file().display().to_string();
        settings.web.dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/dist");
        // Most tests exercise what an ADMIN may do, not how an ADMIN signs
        // in; the tests of the second factor (`mfa`) turn the policy on.
        settings.mfa.require_for_admin = false;
        settings
    }

    /// Calls go to `api` (another gateway of this stack) from now on.
    pub fn set_api(&mut self, api: Api) {
        self.api = api;
    }

    /// This stack's session key file, made on first use.
    pub fn session_key_file(&self) -> PathBuf {
        let file = self.keys.path.join("session-key");
        if !file.exists() {
            let key = gateway::session::seal::generate().unwrap();
            std::fs::write(&file, gateway::session::seal::encode_key(&key)).unwrap();
        }
        file
    }

    /// Another gateway on this stack's NATS, with `settings`; its API.
    pub async fn start_gateway(&mut self, settings: gateway::Settings) -> Api {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        self.serve_gateway(settings, listener, axum::Router::new());
        let api = Api::new(format!("http://{addr}"));
        wait_until_up(&api, "the second gateway comes up").await;
        api
    }

    /// Another gateway on this stack's NATS, reached at
    /// `http://localhost:<port>` (its `session.public_origin`, which
    /// passkeys need); its API, at that origin. (The browser walks use it.)
    #[allow(dead_code)]
    pub async fn start_gateway_on_localhost(&mut self, mut settings: gateway::Settings) -> Api {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let origin = format!("http://localhost:{port}");
        settings.session.public_origin = origin.clone();
        self.serve_gateway(settings, listener, axum::Router::new());
        let api = Api::new(origin);
        wait_until_up(&api, "the gateway at localhost comes up").await;
        api
    }

    fn serve_gateway(
        &mut self,
        settings: gateway::Settings,
        listener: tokio::net::TcpListener,
        extra: axum::Router<gateway::AppState>,
    ) {
        let stop = self.stop.clone();
        self.tasks.push(tokio::spawn(gateway::run_with(
            settings,
            listener,
            extra,
            async move { stop.cancelled().await },
        )));
    }

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
        let hashers = Arc::clone(&self.hashers);
        let shutdown = stop.clone().cancelled_owned();
        let task = tokio::spawn(async move {
            let worker = auth_worker::Worker::connect(settings).await?;
            hashers.lock().unwrap().push(Arc::clone(worker.hasher()));
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

    /// The mail-worker's settings for this stack: its NATS, this stack's
    /// catcher (started by [`start_mail_worker`](Self::start_mail_worker)),
    /// links to this gateway, and quick retries.
    pub fn mail_worker_settings(&self) -> mail_worker::Settings {
        let mut s = mail_worker::Settings::load(None).expect("mail-worker defaults");
        s.nats.url = self.nats.url();
        s.nats.password = Some(self.nats.passwords.mail_worker.clone().into());
        s.smtp.port = self.mail().port();
        s.mail.public_origin = self.api.url("");
        s.consumer.backoff_secs = vec![1];
        s.consumer.retry_ms = 100;
        s
    }

    /// Starts a mail-worker in this process, sending to this stack's mail
    /// catcher (started with the first one), and waits until it is
    /// registered. Not part of `spawn_app()`: only the tests of mail start
    /// one.
    pub async fn start_mail_worker(&mut self) {
        self.start_mail_worker_with(|_| {}).await;
    }

    /// [`start_mail_worker`](Self::start_mail_worker) with changes to its
    /// settings.
    pub async fn start_mail_worker_with(&mut self, tweak: fn(&mut mail_worker::Settings)) {
        if self.mail.is_none() {
            self.mail = Some(MailCatcher::start().await);
        }
        let mut s = self.mail_worker_settings();
        tweak(&mut s);
        let stop = self.stop.clone();
        self.tasks
            .push(tokio::spawn(mail_worker::run(s, async move {
                stop.cancelled().await
            })));
        self.wait_for_service(mail_worker::NAME).await;
    }

    /// This stack's mail catcher: every mail the mail-workers sent.
    #[track_caller]
    pub fn mail(&self) -> &MailCatcher {
        self.mail
            .as_ref()
            .expect("no mail catcher: call `start_mail_worker()` first")
    }

    /// This stack's mail catcher, to stop or restart it.
    #[track_caller]
    pub fn mail_mut(&mut self) -> &mut MailCatcher {
        self.mail
            .as_mut()
            .expect("no mail catcher: call `start_mail_worker()` first")
    }

    /// Waits until `service` answers `$SRV.PING.<service>`.
    pub async fn wait_for_service(&self, service: &str) {
        let (ops, _) = self.nats.connect_as("ops").await.expect("ops connects");
        let subject = format!("$SRV.PING.{service}");
        let (ops, subject) = (&ops, subject.as_str());
        let up = eventually(
            Duration::from_secs(15),
            Duration::from_millis(20),
            || async move {
                let ping = ops.request(subject.to_owned(), "".into());
                matches!(
                    tokio::time::timeout(Duration::from_millis(500), ping).await,
                    Ok(Ok(_))
                )
            },
        );
        assert!(up.await, "{service} did not come up");
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

    /// A reply of the NATS service API (`$SRV.INFO.<service>`,
    /// `$SRV.STATS.…`, `$SRV.PING.…`), asked as `ops`.
    pub async fn service_api(&self, subject: &str) -> Value {
        let (ops, _) = self.nats.connect_as("ops").await.expect("ops connects");
        let reply = ops.request(subject.to_owned(), "".into()).await.unwrap();
        serde_json::from_slice(&reply.payload).unwrap()
    }

    /// Signs `email` up, makes it an ADMIN in the database (as the command
    /// line does), then logs in so the token carries the role.
    pub async fn admin_account(&self, email: &str) -> Account {
        let user = self.signup_ok(email).await;
        sqlx::query("update users set role = 'ADMIN' where lower(email) = lower($1)")
            .bind(email)
            .execute(&self.db.pool().await)
            .await
            .unwrap();
        Account {
            id: user["id"].as_i64().unwrap(),
            token: self.access_token(email).await,
        }
    }

    /// Creates a post as `author` through the API, asserting 201; the post.
    pub async fn create_post<'a>(
        &'a self,
        author: impl Into<Bearer<'a>>,
        title: &str,
        published: bool,
    ) -> Value {
        let post = json!({"title": title, "content": "Some text.", "published": published});
        let response = self
            .call(Method::POST, "/api/posts", author.into(), Some(&post))
            .send()
            .await;
        assert_eq!(response.status(), 201, "creating {post}");
        response.json().await.unwrap()
    }

    /// A user's role as the database holds it.
    pub async fn role_of(&self, id: i64) -> String {
        sqlx::query_scalar("select role::text from users where id = $1")
            .bind(id)
            .fetch_one(&self.db.pool().await)
            .await
            .unwrap()
    }

    /// A request published straight onto NATS as the `gateway` NATS user
    /// (which skips every HTTP check), with an `X-Caller` header or none. The
    /// caller names the user's newest live session, as a token of theirs
    /// would. Returns the error status (None for a success) and the body.
    pub async fn nats_request(
        &self,
        subject: &'static str,
        caller: Option<(i64, Role)>,
        body: &Value,
    ) -> (Option<u16>, Value) {
        let mut claimed = None;
        if let Some((id, role)) = caller {
            let session = sqlx::query_scalar(
                "select id from sessions where user_id = $1 and revoked_at is null \
                 order by created_at desc limit 1",
            )
            .bind(id)
            .fetch_optional(&self.db.pool().await)
            .await
            .unwrap();
            claimed = Some(Caller {
                id,
                role,
                session,
                mfa: false,
            });
        }
        self.nats_request_as(subject, claimed, body).await
    }

    /// [`TestApp::nats_request`] with exactly this caller header (or none).
    pub async fn nats_request_as(
        &self,
        subject: &'static str,
        caller: Option<Caller>,
        body: &Value,
    ) -> (Option<u16>, Value) {
        self.nats_request_from(subject, caller, None, body).await
    }

    /// [`TestApp::nats_request_as`] with the HTTP client's address and
    /// `User-Agent` as the gateway sends them (`client`), if any.
    pub async fn nats_request_from(
        &self,
        subject: &str,
        caller: Option<Caller>,
        client: Option<(&str, &str)>,
        body: &Value,
    ) -> (Option<u16>, Value) {
        let service = if subject.starts_with("auth.") {
            shared::auth::SERVICE
        } else {
            shared::user::SERVICE
        };
        let (nats, _) = self.nats.connect_as_gateway_to(service).await.unwrap();
        let mut headers = async_nats::HeaderMap::new();
        if let Some(caller) = caller {
            headers.insert(
                shared::headers::CALLER,
                serde_json::to_string(&caller).unwrap().as_str(),
            );
        }
        if let Some((address, user_agent)) = client {
            headers.insert(shared::headers::CLIENT_ADDRESS, address);
            headers.insert(shared::headers::CLIENT_USER_AGENT, user_agent);
        }
        let reply = nats
            .request_with_headers(subject.to_owned(), headers, body.to_string().into())
            .await
            .unwrap();
        let status = reply
            .headers
            .as_ref()
            .and_then(|h| h.get(shared::headers::NATS_SERVICE_ERROR_CODE))
            .map(|v| v.as_str().parse().unwrap());
        (status, serde_json::from_slice(&reply.payload).unwrap())
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The entry of `subject` among the `endpoints` of a service-API reply
/// (`$SRV.INFO.…`, `$SRV.STATS.…`).
pub fn endpoint<'a>(reply: &'a Value, subject: &str) -> &'a Value {
    reply["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["subject"] == subject)
        .unwrap_or_else(|| panic!("no endpoint {subject} in {reply}"))
}

/// The ids of a page's items (`GET /api/users`, `GET /api/posts`), in order.
pub fn ids(page: &Value) -> Vec<i64> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_i64().unwrap())
        .collect()
}

fn init_logging() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// The name of the browser session's cookie.
pub const COOKIE: &str = "__Host-natsauth";

/// A client that follows no redirect, to see the gateway's 302s.
pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A JWT's claims, read without checking the signature (the test made the
/// token or only reads what it says; `proxy::identity` checks that
/// assertions verify).
pub fn claims(jwt: &str) -> Value {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let payload = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// The `[proxy]` table of a TOML document (`[[proxy.routes]]` tables), read
/// as the gateway reads its configuration.
pub fn proxy_settings(toml: &str) -> gateway::proxy::ProxySettings {
    #[derive(serde::Deserialize)]
    struct Doc {
        proxy: gateway::proxy::ProxySettings,
    }
    runtime::settings::load::<Doc>(&[toml], None, "PROXY_TEST_UNUSED")
        .unwrap()
        .proxy
}

/// Signs arbitrary claims with a key file, to forge or expire tokens.
pub fn sign(key_file: &Path, header: jsonwebtoken::Header, claims: &Value) -> String {
    let pem = std::fs::read(key_file).expect("read key");
    let key = jsonwebtoken::EncodingKey::from_ed_pem(&pem).expect("ed25519 key");
    jsonwebtoken::encode(&header, claims, &key).expect("sign")
}
