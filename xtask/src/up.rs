//! `cargo xtask up`: the whole stack on this machine, until Ctrl-C.
//!
//! Order: nats-server and PostgreSQL found or provided, secrets generated,
//! binaries built, JWT key made; then nats-server started (with its HTTP
//! monitoring endpoint on loopback, which the gateway proxies to ADMINs at
//! `/proxy/nats/`) and awaited,
//! `auth-worker provision` (the PostgreSQL roles, their passwords from
//! `.dev/secrets`, the database) and `auth-worker migrate` (as the migrator)
//! run, the mail catcher (aiosmtpd, mail kept in `.dev/mail/`), the workers
//! (each as its own role; the mail-worker sends to the catcher) and the
//! gateway started, and the
//! gateway's `/healthz` awaited. Ctrl-C or SIGTERM stops the gateway, the
//! workers, nats-server (each awaited) and a private PostgreSQL, and exits 0;
//! a child that dies on its own stops the rest and exits non-zero.

use std::{
    net::{Ipv4Addr, SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use crate::{
    mail, nats,
    pg::{self, PgArgs, Postgres},
    secrets::{self, NATS_ENV, NatsPasswords, PG_AUTH_WORKER, PG_MIGRATOR, PG_USER_WORKER},
    signals,
    supervise::{Stage, Supervisor},
    term, util,
};

const DEFAULT_NATS_PORT: u16 = 14222;
const DEFAULT_NATS_MONITOR_PORT: u16 = 18222;
/// Where the gateway serves nats-server's monitoring endpoint (its proxy
/// route `nats`, ADMIN only).
const NATS_MONITOR_PREFIX: &str = "/proxy/nats";
const DEFAULT_HTTP_PORT: u16 = 8080;
const LOG_DIR: &str = ".dev/logs";
/// nats-server's JetStream store (`NATS_JETSTREAM_DIR`): the streams
/// AUTH_EVENTS and MAIL_DEAD outlive a restart of the stack.
const JETSTREAM_DIR: &str = ".dev/jetstream";

/// Options of `cargo xtask up`.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Where the gateway listens [default: 127.0.0.1:8080, or a free port if
    /// 8080 is taken]
    #[arg(long, value_name = "ADDR")]
    http_addr: Option<SocketAddr>,
    /// nats-server's client port on 127.0.0.1 [default: 14222, or a free port
    /// if 14222 is taken]
    #[arg(long, value_name = "PORT")]
    nats_port: Option<u16>,
    /// nats-server's HTTP monitoring port on 127.0.0.1, which the gateway
    /// proxies at /proxy/nats/ [default: 18222, or a free port if 18222 is
    /// taken]
    #[arg(long, value_name = "PORT")]
    nats_monitor_port: Option<u16>,
    /// The mail catcher's SMTP port on 127.0.0.1, where the mail-worker
    /// sends [default: 1025, or a free port if 1025 is taken]
    #[arg(long, value_name = "PORT")]
    smtp_port: Option<u16>,
    /// How many copies of each worker to run
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=16))]
    workers: u16,
    /// Build and run the release binaries
    #[arg(long)]
    release: bool,
    #[command(flatten)]
    pg: PgArgs,
}

/// The project's binaries that `up` runs.
#[derive(Debug, Clone, Copy)]
pub enum Binary {
    AuthWorker,
    UserWorker,
    MailWorker,
    Gateway,
}

impl Binary {
    /// The binary's name, which is also its NATS user in `nats.conf`.
    pub fn name(self) -> &'static str {
        match self {
            Binary::AuthWorker => "auth-worker",
            Binary::UserWorker => "user-worker",
            Binary::MailWorker => "mail-worker",
            Binary::Gateway => "gateway",
        }
    }

    /// The prefix of its configuration environment variables.
    fn env_prefix(self) -> &'static str {
        match self {
            Binary::AuthWorker => "AUTH_WORKER",
            Binary::UserWorker => "USER_WORKER",
            Binary::MailWorker => "MAIL_WORKER",
            Binary::Gateway => "GATEWAY",
        }
    }
}

/// Everything the children's environment is made of.
#[derive(Debug)]
pub struct Stack<'a> {
    pub bin_dir: PathBuf,
    pub passwords: &'a NatsPasswords,
    pub nats_port: u16,
    pub nats_url: String,
    /// nats-server's HTTP monitoring endpoint (`-m`; on loopback, the host
    /// of `nats.conf`), the upstream of the gateway's proxy route `nats`.
    pub nats_monitor: SocketAddr,
    /// A superuser's URL (PostgreSQL's admin role), for provisioning.
    pub pg_admin_url: String,
    /// The stack's database, as the admin role (for psql); the processes
    /// get the same URL with their own role.
    pub database_url: String,
    /// The PostgreSQL password files (`pg-<who>-password`).
    pub pg_secrets: PathBuf,
    pub jwt_key: PathBuf,
    pub http_addr: SocketAddr,
    /// nats-server's JetStream store directory (made if missing).
    pub jetstream_dir: PathBuf,
    /// The mail catcher's SMTP port on 127.0.0.1, and its maildir.
    pub smtp_port: u16,
    pub maildir: PathBuf,
    /// Settings every process of this stack gets besides its own.
    pub extra_env: &'static [(&'static str, &'static str)],
}

/// A private stack's load (benchmark, fuzzer) all comes from loopback,
/// which the sign-up limit per address would soon refuse, as would the
/// address's login limit (it counts attempts in flight: 32 connections
/// logging in at once are 32). The gateway trusts `X-Forwarded-For` there:
/// the benchmark's load generator gives each connection its own client
/// address, as clients on a network have (the hashing lane's share per
/// address is then what it is for real clients), or all the same one.
const PRIVATE_STACK_ENV: &[(&str, &str)] = &[
    ("AUTH_WORKER_THROTTLE__SIGNUP_MAX_PER_ADDRESS", "1000000000"),
    ("AUTH_WORKER_THROTTLE__ADDRESS_MAX_FAILURES", "1000000000"),
    // The benchmark asks for reset mails of the same accounts again and
    // again.
    ("AUTH_WORKER_RECOVERY__RECOVER_MAX_PER_EMAIL", "1000000000"),
    (
        "AUTH_WORKER_RECOVERY__RECOVER_MAX_PER_ADDRESS",
        "1000000000",
    ),
    ("GATEWAY_HTTP__TRUST_FORWARDED_FOR", "true"),
    // The load generator and the fuzzer act as an ADMIN that signed in with
    // a password; that an ADMIN needs a second factor is the API tests'
    // to prove (`gateway/tests/api/mfa/`), not theirs.
    ("GATEWAY_MFA__REQUIRE_FOR_ADMIN", "false"),
];

impl Stack<'_> {
    /// A command running `binary` configured for this stack. The user's own
    /// `<PREFIX>_…` variables pass through, so `AUTH_WORKER_LOG__LEVEL=debug`
    /// works; the ones set here win.
    pub fn command(&self, binary: Binary) -> anyhow::Result<Command> {
        let mut cmd = Command::new(self.bin_dir.join(binary.name()));
        let p = binary.env_prefix();
        cmd.env(format!("{p}_NATS__URL"), &self.nats_url)
            .env(
                format!("{p}_NATS__PASSWORD"),
                self.passwords.for_user(binary.name())?,
            )
            // The log files should not hold colour codes.
            .env("NO_COLOR", "1")
            .envs(self.extra_env.iter().copied());
        match binary {
            Binary::AuthWorker => {
                self.database_env(&mut cmd, &format!("{p}_DATABASE"), PG_AUTH_WORKER);
                self.database_env(&mut cmd, &format!("{p}_MIGRATOR"), PG_MIGRATOR);
                cmd.env(format!("{p}_JWT__PRIVATE_KEY_FILE"), &self.jwt_key)
                    .env(format!("{p}_MFA__KEY_FILE"), secrets::ensure_mfa_key()?);
            }
            Binary::UserWorker => {
                self.database_env(&mut cmd, &format!("{p}_DATABASE"), PG_USER_WORKER);
            }
            Binary::MailWorker => {
                cmd.env(format!("{p}_SMTP__HOST"), "127.0.0.1")
                    .env(format!("{p}_SMTP__PORT"), self.smtp_port.to_string())
                    .env(format!("{p}_SMTP__TLS"), "none")
                    .env(format!("{p}_MAIL__PUBLIC_ORIGIN"), self.public_origin());
            }
            Binary::Gateway => {
                cmd.env(format!("{p}_HTTP__ADDR"), self.http_addr.to_string())
                    // Passkeys need an origin with a domain name (WebAuthn
                    // takes no IP address as its RP ID).
                    .env(format!("{p}_SESSION__PUBLIC_ORIGIN"), self.public_origin())
                    .env(
                        format!("{p}_SESSION__KEY_FILE"),
                        secrets::ensure_session_key()?,
                    )
                    .env(
                        format!("{p}_WEB__DIR"),
                        util::workspace_root().join(crate::web::DIST),
                    )
                    // nats-server's monitoring behind the login, for ADMINs.
                    .env(
                        format!("{p}_PROXY__ROUTES__NATS__PREFIX"),
                        NATS_MONITOR_PREFIX,
                    )
                    .env(
                        format!("{p}_PROXY__ROUTES__NATS__UPSTREAM"),
                        format!("http://{}", self.nats_monitor),
                    )
                    .env(format!("{p}_PROXY__ROUTES__NATS__ROLES"), "ADMIN");
            }
        }
        Ok(cmd)
    }

    /// Where a browser opens the stack: `http://localhost:<port>` for a
    /// loopback address, so passkeys work (a browser treats localhost as a
    /// secure context, and WebAuthn needs a domain name).
    pub fn public_origin(&self) -> String {
        let addr = util::connectable(self.http_addr);
        if addr.ip().is_loopback() {
            format!("http://localhost:{}", addr.port())
        } else {
            format!("http://{addr}")
        }
    }

    /// `<section>__URL` (the database as `role`, no password in it) and
    /// `<section>__PASSWORD_FILE`.
    fn database_env(&self, cmd: &mut Command, section: &str, (role, file): (&str, &str)) {
        cmd.env(
            format!("{section}__URL"),
            testkit::with_user(&self.database_url, role),
        )
        .env(
            format!("{section}__PASSWORD_FILE"),
            self.pg_secrets.join(file),
        );
    }
}

/// `cargo xtask up`.
pub fn run(args: &UpArgs) -> anyhow::Result<()> {
    signals::install()?;
    term::header("nats-server and PostgreSQL");
    let nats_server = nats::ensure_server()?;
    let mut pg = Postgres::ensure(args.pg.private_pg)?;
    let result = build_and_run(args, &nats_server, &pg);
    let pg_stopped = pg.stop();
    result?;
    pg_stopped
}

fn build_and_run(args: &UpArgs, nats_server: &Path, pg: &Postgres) -> anyhow::Result<()> {
    // Before the build, so that a port asked for and taken fails at once.
    let nats_port = choose_port(
        args.nats_port,
        DEFAULT_NATS_PORT,
        &[],
        "nats-server",
        "--nats-port",
    )?;
    let nats_monitor_port = choose_port(
        args.nats_monitor_port,
        DEFAULT_NATS_MONITOR_PORT,
        &[nats_port],
        "nats-server's monitoring",
        "--nats-monitor-port",
    )?;
    let http_addr = choose_http_addr(args.http_addr)?;
    let smtp_port = choose_port(
        args.smtp_port,
        mail::DEFAULT_SMTP_PORT,
        &[nats_port, nats_monitor_port, http_addr.port()],
        "the mail catcher",
        "--smtp-port",
    )?;

    term::header("Secrets");
    let passwords = NatsPasswords::ensure()?;
    passwords.write_process_files()?;
    term::step(&format!("NATS passwords: {NATS_ENV}"));
    let pg_secrets = secrets::ensure_pg_passwords()?;
    term::step(&format!(
        "PostgreSQL passwords: {}/pg-<role>-password",
        secrets::SECRETS_DIR
    ));

    let session_key = secrets::ensure_session_key()?;
    term::step(&format!(
        "session-cookie key: {}",
        util::shown(&session_key)
    ));
    let mfa_key = secrets::ensure_mfa_key()?;
    term::step(&format!(
        "second-factor key: {} (seals authenticator-app secrets)",
        util::shown(&mfa_key)
    ));

    term::header("Build");
    let bin_dir = build(args.release)?;
    let jwt_key = secrets::ensure_jwt_key(&bin_dir.join(Binary::AuthWorker.name()))?;
    term::step(&format!("JWT signing key: {}", util::shown(&jwt_key)));
    // The API runs without the pages: a failed web build is reported, and
    // the gateway's pages then say how to build them.
    term::header("Web app");
    if let Err(e) = crate::web::run(&crate::web::WebArgs::default()) {
        term::warn(&format!(
            "the web app was not built ({e:#}); the API works, the pages say how to build them"
        ));
    }

    let stack = Stack {
        bin_dir,
        passwords: &passwords,
        nats_port,
        nats_url: format!("nats://127.0.0.1:{nats_port}"),
        nats_monitor: SocketAddr::from((Ipv4Addr::LOCALHOST, nats_monitor_port)),
        pg_admin_url: pg.admin_url().to_owned(),
        database_url: pg.database_url(pg::APP_DATABASE),
        pg_secrets,
        jwt_key,
        http_addr,
        jetstream_dir: util::workspace_root().join(JETSTREAM_DIR),
        smtp_port,
        maildir: util::workspace_root().join(mail::MAILDIR),
        extra_env: &[],
    };

    term::header("Start");
    let mut sup = Supervisor::new(Path::new(LOG_DIR), name_width(args.workers))?;
    let readiness = start(&stack, nats_server, args.workers, &mut sup)?;

    print_banner(&stack, pg, args.workers, &readiness);
    supervise(&mut sup)
}

/// `cargo build --workspace --bins` (with `--release` if asked); returns
/// the directory of the binaries.
pub fn build(release: bool) -> anyhow::Result<PathBuf> {
    util::ensure_build_deps()?;
    let mut build = util::cargo();
    build.args(["build", "--workspace", "--bins"]);
    if release {
        build.arg("--release");
    }
    util::run(&mut build)?;
    Ok(util::target_dir().join(if release { "release" } else { "debug" }))
}

/// `cargo build --workspace --bins --tests` (debug): the binaries with the
/// same dependency features as `cargo test --workspace` resolves, so a build
/// after (or before) the tests compiles only the binaries themselves, not
/// every dependency again with other features. The fuzz step and the process
/// tests build this way.
pub fn build_for_tests() -> anyhow::Result<PathBuf> {
    let mut build = util::cargo();
    build.args(["build", "--workspace", "--bins", "--tests"]);
    util::run(&mut build)?;
    Ok(util::target_dir().join("debug"))
}

/// Runs `body` against a stack of this run's own, started under `sup`: free
/// ports, fresh NATS passwords, the database `natsauth_<kind>_<pid>`, a JWT
/// key in `.dev/<kind>/<pid>/`. The PostgreSQL roles are the cluster's, so
/// their passwords are `.dev/secrets`' (a fresh one would lock out a
/// `cargo xtask up` running on the same cluster). Afterwards everything is stopped, the
/// database dropped and the directory removed, whatever `body` returned.
pub fn private_stack<T>(
    kind: &str,
    bin_dir: PathBuf,
    nats_server: &Path,
    pg: &Postgres,
    mut sup: Supervisor,
    body: impl FnOnce(&Stack<'_>, &mut Supervisor) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let tag = std::process::id();
    let work_dir = util::workspace_root().join(format!(".dev/{kind}/{tag}"));
    std::fs::create_dir_all(&work_dir)
        .with_context(|| format!("creating {}", work_dir.display()))?;
    let database = format!("natsauth_{kind}_{tag}");
    let passwords = NatsPasswords::fresh();
    let pg_secrets = secrets::ensure_pg_passwords()?;
    let nats_port = testkit::free_port();
    let nats_monitor = SocketAddr::from((Ipv4Addr::LOCALHOST, testkit::free_port()));
    let http_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, testkit::free_port()));
    let stack = Stack {
        bin_dir,
        passwords: &passwords,
        nats_port,
        nats_url: format!("nats://127.0.0.1:{nats_port}"),
        nats_monitor,
        pg_admin_url: pg.admin_url().to_owned(),
        database_url: pg.database_url(&database),
        pg_secrets,
        jwt_key: work_dir.join("jwt-ed25519.pem"),
        http_addr,
        jetstream_dir: work_dir.join("jetstream"),
        smtp_port: testkit::free_port(),
        maildir: work_dir.join("mail"),
        extra_env: PRIVATE_STACK_ENV,
    };
    term::header(&format!(
        "A private stack: gateway on {http_addr}, NATS on {nats_port} (monitoring on {}), \
         database {database}",
        nats_monitor.port()
    ));
    term::step(&format!("the processes log to {LOG_DIR}/<name>.log"));
    let result = (|| {
        let mut gen_key = Command::new(stack.bin_dir.join(Binary::AuthWorker.name()));
        gen_key.arg("gen-key").arg("--out").arg(&stack.jwt_key);
        util::run(&mut gen_key).context("generating the JWT signing key")?;
        start(&stack, nats_server, 1, &mut sup)?;
        body(&stack, &mut sup)
    })();

    term::header("Stop the private stack");
    let killed = sup.shutdown();
    if killed.is_empty() {
        term::step("everything stopped");
    } else {
        term::warn(&format!("had to kill: {}", killed.join(", ")));
    }
    let dropped = pg::drop_database(pg, &database);
    let _ = std::fs::remove_dir_all(&work_dir);
    let value = result?;
    dropped?;
    Ok(value)
}

/// The width of the process-name column for `copies` of each worker.
pub fn name_width(copies: u16) -> usize {
    worker_names(copies)
        .iter()
        .map(|(_, n)| n.len())
        .chain(["nats-server".len()])
        .max()
        .unwrap_or(0)
}

/// Starts the stack under `sup`: nats-server with `nats.conf` on
/// `stack.nats_port` and its monitoring on `stack.nats_monitor` (awaited:
/// the client port accepts and the monitor's `/healthz` answers 200),
/// `auth-worker provision` and `migrate`,
/// `copies` of each
/// worker and the gateway; waits for the gateway's `/healthz`, then (up to
/// 20 s) for `/readyz`. Returns what `/readyz` said.
pub fn start(
    stack: &Stack<'_>,
    nats_server: &Path,
    copies: u16,
    sup: &mut Supervisor,
) -> anyhow::Result<String> {
    // An empty password variable would be a NATS user without a password.
    stack.passwords.check()?;
    let python = mail::ensure_catcher()?;
    std::fs::create_dir_all(&stack.jetstream_dir)
        .with_context(|| format!("creating {}", stack.jetstream_dir.display()))?;
    let nats_port = stack.nats_port;
    let mut nats = Command::new(nats_server);
    // `-m` listens on nats.conf's `host` (loopback), as the clients' port.
    nats.args([
        "-c",
        "nats.conf",
        "-p",
        &nats_port.to_string(),
        "-m",
        &stack.nats_monitor.port().to_string(),
    ])
    .envs(stack.passwords.env())
    .env("NATS_JETSTREAM_DIR", &stack.jetstream_dir);
    // One Go scheduler thread (P) unless the caller sets its own. This stack
    // shares a few cores with the gateway, the workers and PostgreSQL; with
    // one P per core, nats-server's idle Ps spin, park and wake on futexes
    // around every message (a third of its CPU in the profile), and the
    // bench measured 5–12 µs less of its CPU per request with one (README,
    // Optimizations kept). It uses about a third of a core at full load here.
    if std::env::var_os("GOMAXPROCS").is_none() {
        nats.env("GOMAXPROCS", "1");
    }
    sup.spawn("nats-server", Stage::Nats, nats)?;
    util::wait_until(
        "nats-server (its client port, and GET /healthz on its monitoring port)",
        Duration::from_secs(15),
        || sup.check_alive(),
        || {
            util::accepts(("127.0.0.1", nats_port), Duration::from_millis(200))
                && matches!(
                    util::http_get(stack.nats_monitor, "/healthz", Duration::from_secs(2)),
                    Ok((200, _))
                )
        },
    )?;

    // The admin URL goes in the environment: it may hold a password, and
    // commands are shown.
    let mut provision = stack.command(Binary::AuthWorker)?;
    provision
        .arg("provision")
        .arg("--passwords-dir")
        .arg(&stack.pg_secrets)
        .env("NATSAUTH_PG_ADMIN_URL", &stack.pg_admin_url);
    util::run(&mut provision).context(
        "provisioning PostgreSQL (roles, passwords, database); its output is above \
         (is PostgreSQL reachable, and is its admin role a superuser?)",
    )?;
    let mut migrate = stack.command(Binary::AuthWorker)?;
    migrate.arg("migrate");
    util::run(&mut migrate)
        .context("migrating the database as natsauth_migrator; its output is above")?;

    sup.spawn(
        "mail-catcher",
        Stage::Nats,
        mail::catcher_command(&python, stack.smtp_port, &stack.maildir),
    )?;
    util::wait_until(
        "the mail catcher's SMTP port",
        Duration::from_secs(15),
        || sup.check_alive(),
        || util::accepts(("127.0.0.1", stack.smtp_port), Duration::from_millis(200)),
    )?;

    for (binary, name) in &worker_names(copies) {
        sup.spawn(name, Stage::Worker, stack.command(*binary)?)?;
    }
    sup.spawn("gateway", Stage::Gateway, stack.command(Binary::Gateway)?)?;

    let gateway = util::connectable(stack.http_addr);
    util::wait_until(
        "the gateway's GET /healthz",
        Duration::from_secs(60),
        || sup.check_alive(),
        || {
            matches!(
                util::http_get(gateway, "/healthz", Duration::from_secs(2)),
                Ok((200, _))
            )
        },
    )?;
    wait_ready(gateway, sup)
}

/// `(binary, process name)` for every worker copy: `auth-worker` alone, or
/// `auth-worker-1`, `auth-worker-2`, … when there are several.
fn worker_names(copies: u16) -> Vec<(Binary, String)> {
    [Binary::AuthWorker, Binary::UserWorker, Binary::MailWorker]
        .into_iter()
        .flat_map(|binary| {
            (1..=copies).map(move |i| {
                let name = if copies == 1 {
                    binary.name().to_owned()
                } else {
                    format!("{}-{i}", binary.name())
                };
                (binary, name)
            })
        })
        .collect()
}

/// The port `option` asked for, else `default`, else a free one (with a
/// warning); ports in `taken` (chosen already, not yet bound) count as taken.
fn choose_port(
    asked: Option<u16>,
    default: u16,
    taken: &[u16],
    who: &str,
    option: &str,
) -> anyhow::Result<u16> {
    let free = |port: u16| !taken.contains(&port) && testkit::port_is_free(port);
    match asked {
        Some(port) if free(port) => Ok(port),
        Some(port) => bail!("port {port} is taken; choose another {option}"),
        None if free(default) => Ok(default),
        None => {
            let port = loop {
                let port = testkit::free_port();
                if !taken.contains(&port) {
                    break port;
                }
            };
            term::warn(&format!(
                "port {default} is taken; {who} listens on {port} instead ({option} chooses)"
            ));
            Ok(port)
        }
    }
}

fn choose_http_addr(asked: Option<SocketAddr>) -> anyhow::Result<SocketAddr> {
    let default = SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_HTTP_PORT));
    match asked {
        Some(addr) if TcpListener::bind(addr).is_ok() => Ok(addr),
        Some(addr) => bail!("{addr} is taken or not ours to bind; choose another --http-addr"),
        None if TcpListener::bind(default).is_ok() => Ok(default),
        None => {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, testkit::free_port()));
            term::warn(&format!(
                "{default} is taken; the gateway listens on {addr} instead (--http-addr chooses)"
            ));
            Ok(addr)
        }
    }
}

/// Polls `GET /readyz` twice a second for up to 20 s: the workers register
/// with NATS a moment after they start. Not being ready is reported, not
/// fatal; a gateway without the route (404) is not asked again.
fn wait_ready(gateway: SocketAddr, sup: &mut Supervisor) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let last = loop {
        sup.check_alive()?;
        if signals::requested() {
            bail!("interrupted while waiting for the gateway's GET /readyz");
        }
        let last = match util::http_get(gateway, "/readyz", Duration::from_secs(5)) {
            Ok((200, _)) => return Ok("ready (GET /readyz answers 200)".to_owned()),
            Ok((404, _)) => break "404, the gateway has no /readyz route".to_owned(),
            Ok((status, body)) => format!("{status} {}", error_message(&body)),
            Err(e) => e.to_string(),
        };
        if Instant::now() > deadline {
            break last;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    term::warn(&format!("GET /readyz does not answer 200: {last}"));
    Ok(format!("NOT ready (GET /readyz: {last})"))
}

/// The `message` of the contract's JSON error body, else the body's start.
fn error_message(body: &str) -> String {
    const KEY: &str = r#""message":""#;
    body.find(KEY)
        .map(|i| &body[i + KEY.len()..])
        .and_then(|rest| rest.split_once('"').map(|(message, _)| message))
        .unwrap_or(body)
        .chars()
        .take(200)
        .collect()
}

fn print_banner(stack: &Stack<'_>, pg: &Postgres, copies: u16, readiness: &str) {
    let nats_port = stack.nats_port;
    let smtp_port = stack.smtp_port;
    let maildir = util::shown(&stack.maildir);
    let http = stack.public_origin();
    let nats = &stack.nats_url;
    let monitor = format!("http://{}", stack.nats_monitor);
    let db = testkit::with_user(&stack.database_url, "<role>");
    let pg_from = pg.describe();
    let secrets_dir = secrets::SECRETS_DIR;
    let json = "-H 'content-type: application/json'";
    let creds = r#"'{"email":"a@example.com","password":"correct horse battery"}'"#;
    let migrator_url = testkit::with_user(&stack.database_url, PG_MIGRATOR.0);
    let auth_worker = util::shown(&stack.bin_dir.join(Binary::AuthWorker.name()));
    let banner = format!(
        "
natsauth is up: {readiness}

  web app      {http}/login   (sign up there; make an ADMIN with the command below)
  NATS monitor {http}{NATS_MONITOR_PREFIX}/   (nats-server's monitoring through the gateway, ADMIN only)
  gateway      {http}   (GET /healthz, /readyz, /api/openapi.json)
  NATS         {nats}   (users and permissions in nats.conf; monitoring on {monitor}, loopback)
  PostgreSQL   {db}   ({pg_from})
               roles natsauth_migrator, natsauth_auth_worker, natsauth_user_worker;
               passwords in {secrets_dir}/pg-<migrator|auth-worker|user-worker>-password
  workers      {copies} x auth-worker, {copies} x user-worker (NATS queue groups share the load),
               {copies} x mail-worker (one durable consumer of AUTH_EVENTS shared by its copies)
  mail         SMTP catcher on 127.0.0.1:{smtp_port}
  Caught mail: {maildir}/new/ — `cargo xtask mail` lists it with its links
  passwords    {NATS_ENV} (NATS, mode 0600; delete it to make new ones)
  logs         here, prefixed with the process name, and in {LOG_DIR}/<name>.log (new each run)

Try the API:
  curl -si -X POST {http}/api/auth/signup {json} -d {creds}
  TOKEN=$(curl -s -X POST {http}/api/auth/login {json} -d {creds} \\
          | sed -E 's/.*\"accessToken\":\"([^\"]+)\".*/\\1/')
  curl -s {http}/api/users/me -H \"authorization: Bearer $TOKEN\"

Make an account an ADMIN (then log in again: its back-office is {http}/dashboard/):
  AUTH_WORKER_MIGRATOR__URL={migrator_url} \\
  AUTH_WORKER_MIGRATOR__PASSWORD_FILE={secrets_dir}/pg-migrator-password \\
      {auth_worker} set-role --email a@example.com --role ADMIN

Look inside with the nats CLI, as the ops user:
  nats context save natsauth --server nats://127.0.0.1:{nats_port} --user ops \\
      --password \"$(sed -n 's/^NATS_OPS_PASSWORD=//p' {NATS_ENV})\" --inbox-prefix _INBOX_ops
  nats --context natsauth micro ls
  nats --context natsauth stream info AUTH_EVENTS
  nats --context natsauth consumer info AUTH_EVENTS mail-worker
  nats --context natsauth stream info MAIL_DEAD   (mail that failed every try)
  nats --context natsauth req auth.get_user '{{\"email\":\"a@example.com\"}}'

Press Ctrl-C to stop everything.
"
    );
    println!("{}", term::paint("1", &banner));
}

/// Waits for Ctrl-C/SIGTERM (clean stop, Ok) or a child's death (the rest
/// stopped, Err).
fn supervise(sup: &mut Supervisor) -> anyhow::Result<()> {
    loop {
        if signals::requested() {
            let killed = sup.shutdown();
            if killed.is_empty() {
                term::step("everything stopped");
            } else {
                term::warn(&format!("had to kill: {}", killed.join(", ")));
            }
            return Ok(());
        }
        if let Some((name, status)) = sup.first_exit() {
            term::warn(&format!(
                "{name} exited unexpectedly ({status}); stopping the rest"
            ));
            sup.shutdown();
            bail!(
                "{name} exited unexpectedly ({status}); see its output above or in {LOG_DIR}/{name}.log"
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_copy_of_a_worker_is_named_after_its_binary() {
        let names: Vec<String> = worker_names(1).into_iter().map(|(_, n)| n).collect();
        assert_eq!(names, ["auth-worker", "user-worker", "mail-worker"]);
    }

    #[test]
    fn the_message_of_an_error_body_is_shown() {
        let body = r#"{"statusCode":503,"error":"Service Unavailable","message":"no user-worker answers","path":"/readyz"}"#;
        assert_eq!(error_message(body), "no user-worker answers");
        assert_eq!(error_message("plain text"), "plain text");
    }

    #[test]
    fn a_port_chosen_already_or_in_use_is_not_chosen_again() {
        let held = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let in_use = held.local_addr().expect("addr").port();
        let port = choose_port(None, in_use, &[], "x", "--x").expect("a free port");
        assert_ne!(port, in_use);
        let other = choose_port(None, port, &[port], "y", "--y").expect("a free port");
        assert_ne!(other, port);
        assert!(choose_port(Some(port), 1, &[port], "y", "--y").is_err());
    }

    #[test]
    fn several_copies_are_numbered() {
        let names: Vec<String> = worker_names(2).into_iter().map(|(_, n)| n).collect();
        assert_eq!(
            names,
            [
                "auth-worker-1",
                "auth-worker-2",
                "user-worker-1",
                "user-worker-2",
                "mail-worker-1",
                "mail-worker-2"
            ]
        );
    }
}
