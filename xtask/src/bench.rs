//! `cargo xtask bench`: builds the release binaries, starts a private stack
//! (nats-server from `nats.conf`, one copy of each worker, the gateway) on a
//! fresh database, and runs `natsauth-bench run` against it: seeding, argon2
//! costs, every scenario, the no-hop floor, the login flood. The report goes
//! to `target/bench/report.md` and `report.json`. The proxy's cases need
//! nats-server's monitoring address, which the stack passes on
//! (`--nats-monitor`): the gateway proxies it, and `proxy-direct` calls it.

use std::{
    net::{Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::Context;

use crate::{
    nats,
    pg::{PgArgs, Postgres},
    signals,
    supervise::Supervisor,
    term,
    up::{self, Binary, Stack},
    util,
};

const LOG_DIR: &str = ".dev/logs";

/// Options of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Concurrent connections of the load generator
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds measured per scenario
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of warm-up before each measurement
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Users seeded (the deep page is near the last)
    #[arg(long, default_value_t = 1_000_000)]
    users: i64,
    /// Posts seeded
    #[arg(long, default_value_t = 1_000_000)]
    posts: i64,
    /// Only the scenarios whose name starts with one of these (comma-separated),
    /// e.g. `me,login`; a name ending in `$` selects that scenario alone
    /// (`me$,me-floor`). The scenarios are `CASES` in bench/src/run.rs,
    /// described in docs/performance.md
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Run the selection this many times, interleaved; each scenario reports
    /// its median round (ratios between scenarios then come from medians)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
    #[command(flatten)]
    pg: PgArgs,
}

/// `cargo xtask bench`.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    signals::install()?;
    term::header("nats-server and PostgreSQL");
    let nats_server = nats::ensure_server()?;
    let mut pg = Postgres::ensure(args.pg.private_pg)?;
    let result = build_and_bench(args, &nats_server, &pg);
    let pg_stopped = pg.stop();
    result?;
    pg_stopped
}

fn build_and_bench(args: &BenchArgs, nats_server: &Path, pg: &Postgres) -> anyhow::Result<()> {
    term::header("Build (release)");
    let mut build = util::cargo();
    build.args([
        "build",
        "--release",
        "--bins",
        "-p",
        "gateway",
        "-p",
        "auth-worker",
        "-p",
        "user-worker",
        // The private stack runs a mail-worker too.
        "-p",
        "mail-worker",
        "-p",
        "bench",
    ]);
    util::run(&mut build)?;
    let bin_dir = util::target_dir().join("release");
    // The page scenarios measure the gateway serving the built app.
    term::header("Web app");
    crate::web::run(&crate::web::WebArgs::default())?;

    let floor_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, testkit::free_port()));
    // Logs straight into the files: a copying thread here would take CPU
    // from the processes measured (the floor, too, writes straight to its
    // file).
    up::private_stack(
        "bench",
        bin_dir,
        nats_server,
        pg,
        Supervisor::new(Path::new(LOG_DIR), up::name_width(1))?.direct_to_files(),
        |stack, sup| bench(args, stack, floor_addr, sup),
    )
}

fn bench(
    args: &BenchArgs,
    stack: &Stack<'_>,
    floor: SocketAddr,
    sup: &Supervisor,
) -> anyhow::Result<()> {
    let out = util::target_dir().join("bench");
    let pids: Vec<String> = sup
        .pids()
        .into_iter()
        .map(|(name, pid)| format!("{name}={pid}"))
        .collect();
    let mut run = Command::new(stack.bin_dir.join("natsauth-bench"));
    run.arg("run")
        .arg("--gateway")
        .arg(util::connectable(stack.http_addr).to_string())
        .arg("--floor")
        .arg(floor.to_string())
        .arg("--nats-monitor")
        .arg(stack.nats_monitor.to_string())
        .arg("--pids")
        .arg(pids.join(","))
        .args(["--connections", &args.connections.to_string()])
        .args(["--duration", &args.duration.to_string()])
        .args(["--warmup", &args.warmup.to_string()])
        .args(["--users", &args.users.to_string()])
        .args(["--posts", &args.posts.to_string()])
        .args(["--rounds", &args.rounds.to_string()])
        .arg("--out")
        .arg(&out)
        .args([
            "--note",
            "Default settings of every process (log level info, one copy of each worker), but \
             the gateway trusts X-Forwarded-For (each connection sends its own address) and \
             the auth-worker's sign-up, failure and reset-mail limits are lifted.",
        ]);
    if !args.only.is_empty() {
        run.args(["--only", &args.only.join(",")]);
    }
    // The floor and the seeder read the same configuration as the real
    // processes: copy the three processes' environment.
    for binary in [Binary::Gateway, Binary::AuthWorker, Binary::UserWorker] {
        let cmd = stack.command(binary)?;
        for (key, value) in cmd.get_envs() {
            if let Some(value) = value {
                run.env(key, value);
            }
        }
    }
    run.env("NATSAUTH_BENCH_LOG", Path::new(LOG_DIR).join("floor.log"));
    util::run(&mut run).context("the benchmark failed; its output is above")?;
    term::step(&format!(
        "report: {} and report.json",
        PathBuf::from(&out).join("report.md").display()
    ));
    Ok(())
}
