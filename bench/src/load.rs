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
use serde_json::{Value, json};
use shared::paging::Cursor;

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
    #[arg(long)]
    seed: String,
    /// How many distinct seeded users log in (login, mix) or hold the
    /// tokens (me).
    #[arg(long, default_value_t = 1000)]
    users: i64,
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

/// What one connection saw in the measured window.
struct Tally {
    latency: Histogram<u64>,
    statuses: BTreeMap<String, u64>,
    errors: u64,
}

pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    let seed: Value = serde_json::from_str(&args.seed).context("--seed is not JSON")?;
    let number = |key: &str| {
        seed[key]
            .as_i64()
            .with_context(|| format!("--seed has no {key}"))
    };
    let (user_min, user_max) = (number("userMin")?, number("userMax")?);
    let (post_min, post_max) = (number("postMin")?, number("postMax")?);
    let addr = args.addr;
    let shape = args.shape;

    // Tokens for the scenarios that read as a user or as the ADMIN.
    let needs_users = matches!(args.scenario, Scenario::Me | Scenario::Mix);
    let needs_admin = matches!(
        args.scenario,
        Scenario::UsersFirst | Scenario::UsersDeep | Scenario::Mix
    );
    let mut tokens = Vec::new();
    if needs_users {
        for n in 1..=shape.connections.min(64) {
            tokens
                .push(access_token(addr, &format!("user{n}@bench.example"), &args.password).await?);
        }
    }
    let admin = if needs_admin {
        access_token(addr, "admin@bench.example", &args.password).await?
    } else {
        String::new()
    };
    let mut cookies = Vec::new();
    if args.scenario == Scenario::Session {
        for n in 1..=shape.connections.min(64) {
            cookies.push(
                session_cookie(addr, &format!("user{n}@bench.example"), &args.password).await?,
            );
        }
    }
    let admin_cookie = if matches!(args.scenario, Scenario::BackOffice | Scenario::Proxy) {
        session_cookie(addr, "admin@bench.example", &args.password).await?
    } else {
        String::new()
    };
    let plan = Arc::new(Plan {
        scenario: args.scenario,
        run: format!(
            "{}{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() % 1_000_000)
        ),
        password: args.password.clone(),
        users: args.users.min(user_max - user_min + 1).max(1),
        post_min,
        post_max,
        tokens,
        admin,
        cookies,
        admin_cookie,
        // About row 1,000,000: the last page of each table.
        deep_users: Cursor::after(user_max - 20).encode(),
        deep_posts: Cursor::after(post_max - 30).encode(),
    });

    // Set up (tokens): the caller may start other load now.
    {
        let mut stdout = std::io::stdout();
        writeln!(stdout, "@ready")?;
        stdout.flush()?;
    }
    let started = Instant::now();
    let measure_from = started + Duration::from_secs_f64(shape.warmup);
    let measure_to = measure_from + Duration::from_secs_f64(shape.duration);
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));

    let mut connections = Vec::new();
    for conn in 0..shape.connections {
        let (plan, done, failed) = (Arc::clone(&plan), Arc::clone(&done), Arc::clone(&failed));
        let client = client_address(conn, shape.addresses);
        connections.push(tokio::spawn(async move {
            let mut tally = Tally {
                latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
                statuses: BTreeMap::new(),
                errors: 0,
            };
            let mut sender: Option<Sender> = None;
            let mut i = 0u64;
            loop {
                let now = Instant::now();
                if now >= measure_to {
                    break;
                }
                let call = plan.call(conn, i);
                i += 1;
                let begun = Instant::now();
                let result = async {
                    if sender.is_none() {
                        sender = Some(connect(addr).await?);
                    }
                    let s = sender.as_mut().expect("connected above");
                    send(s, addr, &call, Some(&client)).await
                }
                .await;
                let ended = Instant::now();
                let ok = matches!(&result, Ok((status, _)) if *status == call.expect);
                if result.is_err() {
                    // Start over on a fresh connection.
                    sender = None;
                }
                // Every reply that came in the window counts (as wrk counts):
                // with a queue of a second or more, "started and ended in
                // it" would leave out the replies of the window's edges.
                if ended >= measure_from && ended <= measure_to {
                    let micros = (ended - begun).as_micros().max(1) as u64;
                    let _ = tally.latency.record(micros.min(60_000_000));
                    let key = match &result {
                        Ok((status, _)) => status.as_u16().to_string(),
                        Err(_) => "io".to_owned(),
                    };
                    *tally.statuses.entry(key).or_default() += 1;
                    if !ok {
                        tally.errors += 1;
                    }
                }
                if ok {
                    done.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            tally
        }));
    }

    // Progress once a second on stderr; the markers on stdout.
    let name = clap::ValueEnum::to_possible_value(&args.scenario).map_or_else(
        || format!("{:?}", args.scenario),
        |v| v.get_name().to_owned(),
    );
    let total = shape.warmup + shape.duration;
    let mut marked_start = false;
    let mut cpu_start = 0.0;
    let mut last = (Instant::now(), 0u64);
    let mut stdout = std::io::stdout();
    loop {
        let now = Instant::now();
        if !marked_start && now >= measure_from {
            marked_start = true;
            cpu_start = own_cpu_seconds();
            writeln!(stdout, "@start")?;
            stdout.flush()?;
        }
        if now >= measure_to {
            break;
        }
        let next = [measure_from, measure_to, last.0 + Duration::from_secs(1)]
            .into_iter()
            .filter(|t| *t > now)
            .min()
            .unwrap_or(measure_to);
        tokio::time::sleep_until(next.into()).await;
        if Instant::now() >= last.0 + Duration::from_secs(1) {
            let count = done.load(Ordering::Relaxed);
            let rate = (count - last.1) as f64 / last.0.elapsed().as_secs_f64();
            eprintln!(
                "    {name:<12} {:>4.0}/{total:.0} s {:>8.0} req/s   {} failed",
                started.elapsed().as_secs_f64(),
                rate,
                failed.load(Ordering::Relaxed)
            );
            last = (Instant::now(), count);
        }
    }
    let cpu = own_cpu_seconds() - cpu_start;
    writeln!(stdout, "@end")?;
    stdout.flush()?;

    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut statuses = BTreeMap::<String, u64>::new();
    let mut errors = 0;
    for connection in connections {
        let tally = connection.await?;
        latency.add(&tally.latency)?;
        for (status, n) in tally.statuses {
            *statuses.entry(status).or_default() += n;
        }
        errors += tally.errors;
    }
    let requests = latency.len();
    let ok = requests.saturating_sub(errors);
    let ms = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
    let result = json!({
        "scenario": name,
        "connections": shape.connections,
        "seconds": shape.duration,
        "requests": requests,
        "rps": requests as f64 / shape.duration,
        "okRps": ok as f64 / shape.duration,
        "addresses": shape.addresses,
        "errors": errors,
        "statuses": statuses,
        "latencyMs": {
            "p50": ms(0.50), "p90": ms(0.90), "p99": ms(0.99),
            "max": latency.max() as f64 / 1000.0, "mean": latency.mean() / 1000.0,
        },
        "loadgenCpuSeconds": cpu,
    });
    writeln!(stdout, "{result}")?;
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
