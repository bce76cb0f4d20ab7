//! A closed-loop load generator: `--connections` HTTP/1.1 keep-alive
//! connections, each sending its next request as soon as the last one's body
//! has arrived. Latency is recorded from sending the request to the end of
//! the response body, in an HDR histogram (µs, 3 significant digits), for
//! replies that arrived in the measured window after `--warmup`.

use std::{
    collections::BTreeMap,
    io::Write,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode, client::conn::http1};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shared::paging::Cursor;

use crate::seed::Seeded;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    Signup,
    Login,
    Me,
    UsersFirst,
    UsersDeep,
    PostsFirst,
    PostsDeep,
    Mix,
    /// `GET /login`: the web app's page, anonymous.
    LoginPage,
    /// `GET /dashboard/` with an ADMIN's session cookie: the page after the
    /// gateway's ADMIN check.
    BackOffice,
    /// `GET /api/session` with a user's session cookie.
    Session,
    /// `GET /proxy/nats/varz` with an ADMIN's session cookie: nats-server's
    /// monitoring through the gateway's reverse proxy.
    Proxy,
    /// `GET /varz`, anonymous, sent straight to nats-server's monitoring
    /// port (`--addr` is that port): what `proxy` is measured against.
    ProxyDirect,
    /// `GET /healthz`, anonymous: the gateway's cheapest answer (every
    /// layer, a small JSON body, no NATS), what any reply costs at least.
    Healthz,
    /// `POST /api/auth/recover` for seeded accounts: a reset token and an
    /// event written per request (and relayed, and mailed, behind it).
    RecoverKnown,
    /// `POST /api/auth/recover` for addresses of no account: it must cost
    /// what `recover-known` costs, or the timing tells who has an account.
    RecoverUnknown,
}

/// How a scenario is driven and measured; `run` passes its own on to each
/// `load`.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Shape {
    /// Concurrent connections, one request in flight on each.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Seconds before measuring.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// How many client addresses the connections appear to come from (sent
    /// as `X-Forwarded-For`, which the bench's gateway trusts): connection
    /// `c` is address `c % addresses`. 0: one per connection.
    #[arg(long, default_value_t = 0)]
    pub addresses: usize,
}

#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// The gateway (or floor, or for `proxy-direct` nats-server's
    /// monitoring port), e.g. 127.0.0.1:8080.
    #[arg(long)]
    addr: SocketAddr,
    #[arg(long, value_enum)]
    scenario: Scenario,
    #[command(flatten)]
    shape: Shape,
    /// The seeded users' password.
    #[arg(long)]
    password: String,
    /// The seeded id ranges (`seed`'s JSON output).
    #[arg(long, value_parser = seeded)]
    seed: Seeded,
    /// How many distinct seeded users log in (login, mix) or hold the
    /// tokens (me).
    #[arg(long, default_value_t = 1000)]
    users: i64,
}

fn seeded(json: &str) -> Result<Seeded, serde_json::Error> {
    serde_json::from_str(json)
}

/// What a scenario needs before it starts: tokens, cursors.
struct Plan {
    scenario: Scenario,
    run: String,
    password: String,
    users: i64,
    post_min: i64,
    post_max: i64,
    tokens: Vec<String>,
    admin: String,
    /// Session cookies (`name=value`) of users, and of the ADMIN.
    cookies: Vec<String>,
    admin_cookie: String,
    deep_users: String,
    deep_posts: String,
}

struct Call {
    method: Method,
    path: String,
    token: Option<String>,
    /// A `Cookie` header (the browser session).
    cookie: Option<String>,
    body: Option<Value>,
    expect: StatusCode,
}

impl Plan {
    /// Logs in the users and the ADMIN the scenario sends requests as.
    async fn prepare(args: &LoadArgs) -> anyhow::Result<Self> {
        let (addr, password) = (args.addr, args.password.as_str());
        // At most 64 distinct callers: more connections share them.
        let callers = 1..=args.shape.connections.min(64);
        let mut tokens = Vec::new();
        if matches!(args.scenario, Scenario::Me | Scenario::Mix) {
            for n in callers.clone() {
                tokens.push(access_token(addr, &format!("user{n}@bench.example"), password).await?);
            }
        }
        let admin = if matches!(
            args.scenario,
            Scenario::UsersFirst | Scenario::UsersDeep | Scenario::Mix
        ) {
            access_token(addr, "admin@bench.example", password).await?
        } else {
            String::new()
        };
        let mut cookies = Vec::new();
        if args.scenario == Scenario::Session {
            for n in callers {
                cookies
                    .push(session_cookie(addr, &format!("user{n}@bench.example"), password).await?);
            }
        }
        let admin_cookie = if matches!(args.scenario, Scenario::BackOffice | Scenario::Proxy) {
            session_cookie(addr, "admin@bench.example", password).await?
        } else {
            String::new()
        };
        let seed = &args.seed;
        Ok(Self {
            scenario: args.scenario,
            run: format!(
                "{}{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() % 1_000_000)
            ),
            password: password.to_owned(),
            users: args.users.min(seed.user_max - seed.user_min + 1).max(1),
            post_min: seed.post_min,
            post_max: seed.post_max,
            tokens,
            admin,
            cookies,
            admin_cookie,
            // About row 1,000,000: the last page of each table.
            deep_users: Cursor::after(seed.user_max - 20).encode(),
            deep_posts: Cursor::after(seed.post_max - 30).encode(),
        })
    }

    /// Request `i` of connection `conn`.
    fn call(&self, conn: usize, i: u64) -> Call {
        let token = || Some(self.tokens[conn % self.tokens.len()].clone());
        let get = |path: String, token: Option<String>| Call {
            method: Method::GET,
            path,
            token,
            cookie: None,
            body: None,
            expect: StatusCode::OK,
        };
        let browse = |path: &str, cookie: Option<String>| Call {
            cookie,
            ..get(path.into(), None)
        };
        match self.scenario {
            Scenario::Signup => Call {
                method: Method::POST,
                path: "/api/auth/signup".into(),
                token: None,
                cookie: None,
                body: Some(json!({
                    "email": format!("new-{}-{conn}-{i}@bench.example", self.run),
                    "password": self.password,
                })),
                expect: StatusCode::CREATED,
            },
            Scenario::Login => self.login(conn, i),
            Scenario::Me => get("/api/users/me".into(), token()),
            Scenario::UsersFirst => get("/api/users?limit=20".into(), Some(self.admin.clone())),
            Scenario::UsersDeep => get(
                format!("/api/users?limit=20&cursor={}", self.deep_users),
                Some(self.admin.clone()),
            ),
            Scenario::PostsFirst => get("/api/posts?limit=20".into(), None),
            Scenario::PostsDeep => get(
                format!("/api/posts?limit=20&cursor={}", self.deep_posts),
                None,
            ),
            // 80 % profile reads, 10 % the first page of posts, 5 % one post,
            // 4 % the ADMIN's user list, 1 % logins.
            Scenario::Mix => match (i + conn as u64 * 7) % 100 {
                0 => self.login(conn, i),
                1..=4 => get("/api/users?limit=20".into(), Some(self.admin.clone())),
                5..=14 => get("/api/posts?limit=20".into(), None),
                15..=19 => {
                    // Published posts are those whose number is not a multiple
                    // of ten (see `seed`).
                    let span = (self.post_max - self.post_min + 1).max(1) as u64;
                    let mut id = self.post_min + ((i * 7919 + conn as u64 * 104_729) % span) as i64;
                    if (id - self.post_min + 1) % 10 == 0 {
                        id = (id - 1).max(self.post_min);
                    }
                    get(format!("/api/posts/{id}"), None)
                }
                _ => get("/api/users/me".into(), token()),
            },
            Scenario::LoginPage => browse("/login", None),
            Scenario::BackOffice => browse("/dashboard/", Some(self.admin_cookie.clone())),
            Scenario::Session => browse(
                "/api/session",
                Some(self.cookies[conn % self.cookies.len()].clone()),
            ),
            Scenario::Proxy => browse("/proxy/nats/varz", Some(self.admin_cookie.clone())),
            Scenario::ProxyDirect => browse("/varz", None),
            Scenario::Healthz => get("/healthz".into(), None),
            Scenario::RecoverKnown | Scenario::RecoverUnknown => {
                let n = (conn as u64 * 31 + i) % self.users as u64 + 1;
                let email = if self.scenario == Scenario::RecoverKnown {
                    format!("user{n}@bench.example")
                } else {
                    format!("nobody{n}@bench.example")
                };
                Call {
                    method: Method::POST,
                    path: "/api/auth/recover".into(),
                    token: None,
                    cookie: None,
                    body: Some(json!({ "email": email })),
                    expect: StatusCode::ACCEPTED,
                }
            }
        }
    }

    fn login(&self, conn: usize, i: u64) -> Call {
        let n = (conn as u64 * 31 + i) % self.users as u64 + 1;
        Call {
            method: Method::POST,
            path: "/api/auth/login".into(),
            token: None,
            cookie: None,
            body: Some(json!({
                "email": format!("user{n}@bench.example"),
                "password": self.password,
            })),
            expect: StatusCode::OK,
        }
    }
}

/// Connection `conn`'s client address: 10.x.y.z, distinct for each `n`.
fn client_address(conn: usize, addresses: usize) -> String {
    let n = if addresses == 0 {
        conn
    } else {
        conn % addresses
    };
    format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255)
}

fn request(
    addr: SocketAddr,
    call: &Call,
    client: Option<&str>,
) -> anyhow::Result<Request<Full<Bytes>>> {
    let mut builder = Request::builder()
        .method(call.method.clone())
        .uri(&call.path)
        .header("host", addr.to_string());
    if let Some(client) = client {
        builder = builder.header("x-forwarded-for", client);
    }
    if let Some(token) = &call.token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    if let Some(cookie) = &call.cookie {
        builder = builder.header("cookie", cookie);
    }
    let body = match &call.body {
        Some(body) => {
            builder = builder.header("content-type", "application/json");
            Bytes::from(serde_json::to_vec(body)?)
        }
        None => Bytes::new(),
    };
    Ok(builder.body(Full::new(body))?)
}

type Sender = http1::SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> anyhow::Result<Sender> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

/// Sends `call` and reads the whole body.
async fn send(
    sender: &mut Sender,
    addr: SocketAddr,
    call: &Call,
    client: Option<&str>,
) -> anyhow::Result<(StatusCode, Bytes)> {
    sender.ready().await?;
    let response = sender.send_request(request(addr, call, client)?).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// One setup request on its own connection; fails unless `expect` comes back.
async fn setup(addr: SocketAddr, call: Call) -> anyhow::Result<Value> {
    let mut sender = connect(addr).await?;
    let (status, body) = send(&mut sender, addr, &call, None).await?;
    if status != call.expect {
        bail!(
            "{} {} answered {status}: {}",
            call.method,
            call.path,
            String::from_utf8_lossy(&body)
        );
    }
    Ok(serde_json::from_slice(&body)?)
}

async fn access_token(addr: SocketAddr, email: &str, password: &str) -> anyhow::Result<String> {
    let reply = setup(
        addr,
        Call {
            method: Method::POST,
            path: "/api/auth/login".into(),
            token: None,
            cookie: None,
            body: Some(json!({"email": email, "password": password})),
            expect: StatusCode::OK,
        },
    )
    .await
    .with_context(|| format!("logging in as {email}"))?;
    reply["accessToken"]
        .as_str()
        .map(str::to_owned)
        .context("the login reply has no accessToken")
}

/// A browser session's cookie (`name=value`), from `POST /api/session` as a
/// page of the app sends it.
async fn session_cookie(addr: SocketAddr, email: &str, password: &str) -> anyhow::Result<String> {
    let mut sender = connect(addr).await?;
    sender.ready().await?;
    let body = serde_json::to_vec(&json!({"email": email, "password": password}))?;
    let request = Request::builder()
        .method(Method::POST)
        .uri("/api/session")
        .header("host", addr.to_string())
        .header("content-type", "application/json")
        .header("sec-fetch-site", "same-origin")
        .body(Full::new(Bytes::from(body)))?;
    let response = sender.send_request(request).await?;
    if response.status() != StatusCode::OK {
        bail!("session login as {email} answered {}", response.status());
    }
    response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
        .with_context(|| format!("the session login as {email} set no cookie"))
}

/// What `load` prints as its last line on stdout: the measured window's
/// figures. `run` reads it, and a scenario's row in the report is one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadResult {
    /// The `--scenario` driven.
    pub scenario: String,
    pub connections: usize,
    /// The measured window.
    pub seconds: f64,
    /// Replies in the window, whatever their status.
    pub requests: u64,
    pub rps: f64,
    /// Replies with the expected status per second.
    pub ok_rps: f64,
    /// `--addresses` (0: one per connection).
    pub addresses: usize,
    /// Replies with another status, and failed connections.
    pub errors: u64,
    /// Replies per HTTP status (`io`: the connection failed).
    pub statuses: BTreeMap<String, u64>,
    pub latency_ms: Latency,
    /// The load generator's own CPU time over the window.
    pub loadgen_cpu_seconds: f64,
}

impl LoadResult {
    /// Replies of `status` (e.g. `"429"`) per second.
    pub fn status_rate(&self, status: &str) -> f64 {
        let n = self.statuses.get(status).copied().unwrap_or(0);
        n as f64 / self.window_seconds()
    }

    /// Errors that were not refusals (503 or 429): what went wrong.
    pub fn other_errors(&self) -> f64 {
        let refused = self.status_rate("503") + self.status_rate("429");
        (self.errors as f64 - refused * self.window_seconds()).max(0.0)
    }

    fn window_seconds(&self) -> f64 {
        if self.seconds > 0.0 {
            self.seconds
        } else {
            1.0
        }
    }
}

/// Latency percentiles, from sending a request to the end of its reply's
/// body, in ms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

/// What one connection saw in the measured window.
struct Tally {
    latency: Histogram<u64>,
    statuses: BTreeMap<String, u64>,
    errors: u64,
}

impl Tally {
    fn new() -> Self {
        Self {
            latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
            statuses: BTreeMap::new(),
            errors: 0,
        }
    }

    fn record(&mut self, took: Duration, reply: &anyhow::Result<(StatusCode, Bytes)>, ok: bool) {
        let micros = took.as_micros().max(1) as u64;
        let _ = self.latency.record(micros.min(60_000_000));
        let key = match reply {
            Ok((status, _)) => status.as_u16().to_string(),
            Err(_) => "io".to_owned(),
        };
        *self.statuses.entry(key).or_default() += 1;
        if !ok {
            self.errors += 1;
        }
    }

    fn add(&mut self, other: Tally) -> anyhow::Result<()> {
        self.latency.add(&other.latency)?;
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
        self.errors += other.errors;
        Ok(())
    }

    fn result(&self, scenario: String, shape: Shape, loadgen_cpu_seconds: f64) -> LoadResult {
        let requests = self.latency.len();
        let ok = requests.saturating_sub(self.errors);
        let ms = |q: f64| self.latency.value_at_quantile(q) as f64 / 1000.0;
        LoadResult {
            scenario,
            connections: shape.connections,
            seconds: shape.duration,
            requests,
            rps: requests as f64 / shape.duration,
            ok_rps: ok as f64 / shape.duration,
            addresses: shape.addresses,
            errors: self.errors,
            statuses: self.statuses.clone(),
            latency_ms: Latency {
                p50: ms(0.50),
                p90: ms(0.90),
                p99: ms(0.99),
                max: self.latency.max() as f64 / 1000.0,
                mean: self.latency.mean() / 1000.0,
            },
            loadgen_cpu_seconds,
        }
    }
}

/// The warm-up and the measured window, from when the connections start.
#[derive(Clone, Copy)]
struct Window {
    started: Instant,
    measure_from: Instant,
    measure_to: Instant,
}

impl Window {
    fn starting_now(shape: Shape) -> Self {
        let started = Instant::now();
        let measure_from = started + Duration::from_secs_f64(shape.warmup);
        Self {
            started,
            measure_from,
            measure_to: measure_from + Duration::from_secs_f64(shape.duration),
        }
    }

    /// Every reply that came in the window counts (as wrk counts): with a
    /// queue of a second or more, "started and ended in it" would leave out
    /// the replies of the window's edges.
    fn counts(&self, ended: Instant) -> bool {
        ended >= self.measure_from && ended <= self.measure_to
    }
}

/// Replies so far, warm-up included, for the progress lines.
#[derive(Default)]
struct Progress {
    done: AtomicU64,
    failed: AtomicU64,
}

pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    let plan = Arc::new(Plan::prepare(&args).await?);
    // Set up (tokens): the caller may start other load now.
    marker("@ready")?;
    let (addr, shape) = (args.addr, args.shape);
    let window = Window::starting_now(shape);
    let progress = Arc::new(Progress::default());
    let connections: Vec<_> = (0..shape.connections)
        .map(|conn| {
            let client = client_address(conn, shape.addresses);
            let (plan, progress) = (Arc::clone(&plan), Arc::clone(&progress));
            tokio::spawn(async move { drive(conn, addr, &client, &plan, window, &progress).await })
        })
        .collect();
    let name = clap::ValueEnum::to_possible_value(&args.scenario).map_or_else(
        || format!("{:?}", args.scenario),
        |v| v.get_name().to_owned(),
    );
    let loadgen_cpu = watch(&name, window, shape, &progress).await?;
    let mut tally = Tally::new();
    for connection in connections {
        tally.add(connection.await?)?;
    }
    let result = tally.result(name, shape, loadgen_cpu);
    println!("{}", serde_json::to_string(&result)?);
    Ok(())
}

/// One connection's requests until the window ends, each sent as soon as
/// the last reply's body has arrived.
async fn drive(
    conn: usize,
    addr: SocketAddr,
    client: &str,
    plan: &Plan,
    window: Window,
    progress: &Progress,
) -> Tally {
    let mut tally = Tally::new();
    let mut sender: Option<Sender> = None;
    let mut i = 0u64;
    while Instant::now() < window.measure_to {
        let call = plan.call(conn, i);
        i += 1;
        let begun = Instant::now();
        let reply = async {
            if sender.is_none() {
                sender = Some(connect(addr).await?);
            }
            let s = sender.as_mut().expect("connected above");
            send(s, addr, &call, Some(client)).await
        }
        .await;
        let ended = Instant::now();
        let ok = matches!(&reply, Ok((status, _)) if *status == call.expect);
        if reply.is_err() {
            // Start over on a fresh connection.
            sender = None;
        }
        if window.counts(ended) {
            tally.record(ended - begun, &reply, ok);
        }
        let counter = if ok { &progress.done } else { &progress.failed };
        counter.fetch_add(1, Ordering::Relaxed);
    }
    tally
}

/// Marks the measured window on stdout (`@start`, `@end`) and prints
/// progress once a second on stderr until it ends; returns this process's
/// CPU seconds over the window.
async fn watch(
    name: &str,
    window: Window,
    shape: Shape,
    progress: &Progress,
) -> anyhow::Result<f64> {
    let total = shape.warmup + shape.duration;
    let mut cpu_start = None;
    let mut last = (Instant::now(), 0u64);
    loop {
        let now = Instant::now();
        if cpu_start.is_none() && now >= window.measure_from {
            cpu_start = Some(own_cpu_seconds());
            marker("@start")?;
        }
        if now >= window.measure_to {
            break;
        }
        let next = [
            window.measure_from,
            window.measure_to,
            last.0 + Duration::from_secs(1),
        ]
        .into_iter()
        .filter(|t| *t > now)
        .min()
        .unwrap_or(window.measure_to);
        tokio::time::sleep_until(next.into()).await;
        if Instant::now() >= last.0 + Duration::from_secs(1) {
            let count = progress.done.load(Ordering::Relaxed);
            let rate = (count - last.1) as f64 / last.0.elapsed().as_secs_f64();
            eprintln!(
                "    {name:<12} {:>4.0}/{total:.0} s {:>8.0} req/s   {} failed",
                window.started.elapsed().as_secs_f64(),
                rate,
                progress.failed.load(Ordering::Relaxed)
            );
            last = (Instant::now(), count);
        }
    }
    let cpu = own_cpu_seconds() - cpu_start.unwrap_or(0.0);
    marker("@end")?;
    Ok(cpu)
}

/// One line on stdout, at once: `run` acts on each marker as it comes.
fn marker(line: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{line}")?;
    stdout.flush()?;
    Ok(())
}

/// This process's user + system CPU time, from /proc (Linux).
fn own_cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            // Fields after the command name, which is in parentheses.
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            Some((utime + stime) / 100.0)
        })
        .unwrap_or(0.0)
}
