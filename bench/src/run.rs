//! `run`: the whole benchmark against a stack `cargo xtask bench` started:
//! seed, argon2 costs, every scenario through the gateway, `/me` through the
//! no-hop floor, nats-server's `/varz` straight from its monitoring port (the
//! proxy's baseline), `/me` during a login flood; then the Markdown and JSON
//! reports (rendered by `report`). Each measurement is a child process of
//! this binary (`load`, `seed`, `hash`, `floor`), so its CPU is its own.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use crate::{
    hash::Argon2Costs,
    load::{self, LoadResult},
    report::{self, Machine, Report, ScenarioResult, Settings, Through, Usage, targets::Target},
    seed::{self, Seeded},
};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The gateway of the stack.
    #[arg(long)]
    gateway: SocketAddr,
    /// Where the floor listens.
    #[arg(long)]
    floor: SocketAddr,
    /// nats-server's HTTP monitoring endpoint: the upstream of the
    /// gateway's proxy route `nats`, which `proxy-direct` calls directly.
    #[arg(long, value_name = "ADDR")]
    nats_monitor: SocketAddr,
    /// `name=pid` of each process of the stack (gateway, auth-worker,
    /// user-worker, nats-server).
    #[arg(long, value_delimiter = ',')]
    pids: Vec<String>,
    /// Each scenario's load (every `load` gets the same).
    #[command(flatten)]
    shape: load::Shape,
    #[command(flatten)]
    size: seed::Size,
    /// Only these scenarios (by label prefix), e.g. `me,login`.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Where report.md and report.json go.
    #[arg(long)]
    out: PathBuf,
    /// A note for the report (e.g. what the stack's settings are).
    #[arg(long, default_value = "")]
    note: String,
    /// Runs of the whole selection, one after the other (interleaved, so a
    /// slow spell of the machine touches every scenario alike); each
    /// scenario's reported run is its median by successful req/s.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
}

const PASSWORD: &str = "bench password 1";

/// One measured scenario.
struct Case {
    label: &'static str,
    scenario: &'static str,
    front: Front,
    /// Connections; 0: the run's `--connections`.
    connections: usize,
    /// Client addresses the connections come from (`load --addresses`);
    /// 0: one per connection.
    addresses: usize,
    /// Connections of a login flood beside it; 0: none.
    flood: usize,
    /// Distinct users who log in (`load --users`); 0: the load's default.
    users: usize,
}

impl Case {
    const fn gateway(label: &'static str, scenario: &'static str) -> Self {
        Self {
            label,
            scenario,
            front: Front::Gateway,
            connections: 0,
            addresses: 0,
            flood: 0,
            users: 0,
        }
    }

    const fn users(self, users: usize) -> Self {
        Self { users, ..self }
    }

    const fn connections(self, connections: usize) -> Self {
        Self {
            connections,
            ..self
        }
    }

    const fn front(self, front: Front) -> Self {
        Self { front, ..self }
    }

    const fn flood(self, flood: usize) -> Self {
        Self { flood, ..self }
    }

    const fn addresses(self, addresses: usize) -> Self {
        Self { addresses, ..self }
    }
}

/// What a case's load is sent to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Front {
    /// The stack's gateway.
    Gateway,
    /// The no-hop floor, started for the case: one caller query per
    /// request, as a monolith.
    Floor,
    /// The no-hop floor with the workers' coalesced caller checks.
    FloorCoalesced,
    /// nats-server's monitoring port, bypassing the gateway.
    NatsMonitor,
}

impl Front {
    /// The report's `through`.
    fn through(self) -> Through {
        match self {
            Front::Gateway => Through::Gateway,
            Front::Floor | Front::FloorCoalesced => Through::Floor,
            Front::NatsMonitor => Through::NatsMonitor,
        }
    }
}

/// Every scenario's label, in the order they run.
pub fn labels() -> Vec<&'static str> {
    CASES.iter().map(|case| case.label).collect()
}

const CASES: &[Case] = &[
    Case::gateway("signup", "signup"),
    Case::gateway("login", "login"),
    Case::gateway("me", "me"),
    Case::gateway("me-floor", "me").front(Front::Floor),
    Case::gateway("me-floor-coalesced", "me").front(Front::FloorCoalesced),
    Case::gateway("users-first", "users-first"),
    Case::gateway("users-deep", "users-deep"),
    Case::gateway("posts-first", "posts-first"),
    Case::gateway("posts-deep", "posts-deep"),
    Case::gateway("mix", "mix"),
    Case::gateway("session", "session"),
    Case::gateway("login-page", "login-page"),
    Case::gateway("back-office", "back-office"),
    Case::gateway("proxy", "proxy"),
    Case::gateway("proxy-direct", "proxy-direct").front(Front::NatsMonitor),
    Case::gateway("me-during-login-flood", "me").flood(32),
    // Overload: the same routes with 8× the clients.
    Case::gateway("me-c64", "me").connections(64),
    Case::gateway("me-c512", "me").connections(512),
    Case::gateway("login-c256", "login").connections(256),
    Case::gateway("me-during-login-flood-c256", "me").flood(256),
    // One address with 256 connections: its share of the hashing lane
    // goes through, the rest is refused (429) before NATS; what a refusal
    // costs.
    Case::gateway("login-one-client", "login")
        .connections(256)
        .addresses(1),
    // Logins of one account at once (each connection its own address):
    // against `login`'s thousand accounts, what contention on one
    // account's rows costs.
    Case::gateway("login-one-account", "login").users(1),
    // One address flooding: what its refused requests cost the others,
    // with 32 connections and with 256 (measured against each other).
    Case::gateway("login-one-client-c32", "login").addresses(1),
    Case::gateway("me-during-one-client-flood", "me")
        .flood(32)
        .addresses(1),
    Case::gateway("me-during-one-client-flood-c256", "me")
        .flood(256)
        .addresses(1),
    // The cheapest reply the gateway gives, to price a refusal against.
    Case::gateway("healthz", "healthz"),
    // Asking for a reset mail, for accounts and for addresses of none: the
    // two must cost the same (nothing to learn from the timing).
    Case::gateway("recover-known", "recover-known"),
    Case::gateway("recover-unknown", "recover-unknown"),
];

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    // Read before the first scenario: a mistake in the file fails at once,
    // not after the whole run.
    let targets = Target::builtin(&labels())?;
    let started = Instant::now();
    let exe = std::env::current_exe()?;
    let pids = parse_pids(&args.pids)?;
    let seed = seed_database(&exe, &args)?;
    step("argon2id per hash");
    let argon2: Argon2Costs = serde_json::from_str(capture(Command::new(&exe).arg("hash"))?.trim())
        .context("hash's output")?;
    println!("  {}", serde_json::to_string(&argon2)?);
    let results = run_selected(&args, &exe, &pids, &seed)?;
    let proxy = report::proxy_overhead(&results);
    let report = Report {
        machine: machine(),
        commit: commit(),
        settings: Settings {
            connections: args.shape.connections,
            warmup_seconds: args.shape.warmup,
            seconds: args.shape.duration,
            note: args.note.clone(),
        },
        seed,
        argon2,
        results,
        elapsed_seconds: started.elapsed().as_secs_f64(),
        proxy,
    };
    let markdown = report::write(&report, &targets, &args.out)?;
    println!("\n{markdown}");
    println!(
        "Written: {} and {}",
        args.out.join("report.md").display(),
        args.out.join("report.json").display()
    );
    Ok(())
}

/// `--pids`: `name=pid` pairs.
fn parse_pids(entries: &[String]) -> anyhow::Result<Vec<(String, u32)>> {
    entries
        .iter()
        .map(|entry| {
            let (name, pid) = entry
                .split_once('=')
                .with_context(|| format!("--pids entry {entry:?} is not name=pid"))?;
            Ok((name.to_owned(), pid.parse()?))
        })
        .collect()
}

fn seed_database(exe: &Path, args: &RunArgs) -> anyhow::Result<Seeded> {
    step("Seed");
    let out = capture(Command::new(exe).args([
        "seed",
        "--password",
        PASSWORD,
        "--users",
        &args.size.users.to_string(),
        "--posts",
        &args.size.posts.to_string(),
    ]))?;
    let seed: Seeded = serde_json::from_str(out.trim()).context("seed's output")?;
    println!(
        "  {} users and {} posts in {:.1} s",
        args.size.users, args.size.posts, seed.seconds
    );
    Ok(seed)
}

/// Every selected scenario, `--rounds` times over; each one's median round.
fn run_selected(
    args: &RunArgs,
    exe: &Path,
    pids: &[(String, u32)],
    seed: &Seeded,
) -> anyhow::Result<Vec<ScenarioResult>> {
    let selected: Vec<&Case> = CASES
        .iter()
        .filter(|case| args.only.is_empty() || args.only.iter().any(|o| selects(o, case.label)))
        .collect();
    let mut runs: Vec<Vec<ScenarioResult>> = vec![Vec::new(); selected.len()];
    for round in 1..=args.rounds {
        for (case, runs) in selected.iter().zip(&mut runs) {
            let label = if args.rounds > 1 {
                format!("Scenario {} (round {round} of {})", case.label, args.rounds)
            } else {
                format!("Scenario {}", case.label)
            };
            step(&label);
            runs.push(run_case(case, args, exe, pids, seed)?);
        }
    }
    Ok(runs.into_iter().map(median_run).collect())
}

/// The run of a scenario with the median successful req/s (the upper one
/// of an even count), with every run's figure beside it (`roundsOkRps`,
/// in the order they ran).
fn median_run(mut runs: Vec<ScenarioResult>) -> ScenarioResult {
    let all: Vec<f64> = runs.iter().map(|r| r.load.ok_rps).collect();
    runs.sort_by(|a, b| a.load.ok_rps.total_cmp(&b.load.ok_rps));
    let middle = runs.len() / 2;
    let mut chosen = runs.swap_remove(middle);
    if all.len() > 1 {
        chosen.rounds_ok_rps = Some(all);
    }
    chosen
}

/// Runs one scenario once: its own load generator (and the floor, or a
/// login flood, when it has one), sampled over the measured window.
fn run_case(
    case: &Case,
    args: &RunArgs,
    exe: &Path,
    pids: &[(String, u32)],
    seed: &Seeded,
) -> anyhow::Result<ScenarioResult> {
    let mut floor = None;
    let (addr, mut procs) = match case.front {
        Front::Gateway => (args.gateway, pids.to_vec()),
        // The stack's processes are sampled too: nats-server serves it.
        Front::NatsMonitor => (args.nats_monitor, pids.to_vec()),
        Front::Floor | Front::FloorCoalesced => {
            let child = start_floor(exe, args, case.front == Front::FloorCoalesced)?;
            let procs = vec![("floor".to_owned(), child.id())];
            floor = Some(child);
            (args.floor, procs)
        }
    };
    let seed = serde_json::to_string(seed)?;
    let load = |job: Job| {
        load_command(exe, args, case, addr, &seed, job)
            .spawn()
            .context("starting the load generator")
    };
    // The flood starts once the measured load has its tokens (logging
    // in behind a flood would take longer than the flood), and lasts a
    // second longer than the other's warm-up and window.
    let mut flood = None;
    let connections = match case.connections {
        0 => args.shape.connections,
        n => n,
    };
    let measured = Job {
        scenario: case.scenario,
        connections,
        longer: 0.0,
    };
    let (load_result, usage) = measure(load(measured)?, &mut procs, || {
        if case.flood == 0 {
            return Ok(None);
        }
        let child = load(Job {
            scenario: "login",
            connections: case.flood,
            longer: 1.0,
        })?;
        let pid = child.id();
        flood = Some(child);
        Ok(Some(("flood-loadgen".to_owned(), pid)))
    })?;
    let flood = flood.map(last_result).transpose()?.flatten();
    if let Some(mut child) = floor {
        stop(&mut child)?;
    }
    let mut result = ScenarioResult::new(case.label, case.front.through(), load_result, usage);
    result.flood = flood;
    print_line(&result)?;
    Ok(result)
}

/// The no-hop floor, healthy, its logs in a file as the gateway's are.
fn start_floor(exe: &Path, args: &RunArgs, coalesced: bool) -> anyhow::Result<Child> {
    let log_path = std::env::var_os("NATSAUTH_BENCH_LOG")
        .map_or_else(|| args.out.join("floor.log"), PathBuf::from);
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let child = Command::new(exe)
        .arg("floor")
        .args(coalesced.then_some("--coalesced"))
        .env("GATEWAY_HTTP__ADDR", args.floor.to_string())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting the floor")?;
    wait_healthy(args.floor)?;
    Ok(child)
}

/// One load generator of a case: the measured one, or a flood beside it.
#[derive(Debug, Clone, Copy)]
struct Job {
    scenario: &'static str,
    connections: usize,
    /// Seconds measured beyond the run's `--duration`.
    longer: f64,
}

/// The `load` command of `job` against `addr`, with the case's addresses
/// and users.
fn load_command(
    exe: &Path,
    args: &RunArgs,
    case: &Case,
    addr: SocketAddr,
    seed: &str,
    job: Job,
) -> Command {
    let users = match case.users {
        0 => 1000,
        n => n,
    };
    let mut cmd = Command::new(exe);
    cmd.args([
        "load",
        "--addr",
        &addr.to_string(),
        "--scenario",
        job.scenario,
        "--connections",
        &job.connections.to_string(),
        "--addresses",
        &case.addresses.to_string(),
        "--users",
        &users.to_string(),
        "--warmup",
        &args.shape.warmup.to_string(),
        "--duration",
        &(args.shape.duration + job.longer).to_string(),
        "--password",
        PASSWORD,
        "--seed",
        seed,
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped());
    cmd
}

/// Waits for a load generator whose stdout nobody read; its result line.
fn last_result(mut child: Child) -> anyhow::Result<Option<LoadResult>> {
    let mut out = String::new();
    child
        .stdout
        .take()
        .context("no stdout")?
        .read_to_string(&mut out)?;
    child.wait()?;
    Ok(out
        .lines()
        .filter_map(|l| serde_json::from_str::<LoadResult>(l).ok())
        .next_back())
}

/// Runs one load generator to its end, sampling `procs` over its measured
/// window; returns its result and what the processes used (the load
/// generator's own CPU as `loadgen`). `on_ready` runs when the generator is
/// set up, before its warm-up, and may start another process to sample too.
fn measure(
    mut child: Child,
    procs: &mut Vec<(String, u32)>,
    mut on_ready: impl FnMut() -> anyhow::Result<Option<(String, u32)>>,
) -> anyhow::Result<(LoadResult, Usage)> {
    let stdout = child.stdout.take().context("no stdout")?;
    let mut sampler = Sampler::default();
    let mut result = None;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        match line.as_str() {
            "@ready" => {
                if let Some(proc) = on_ready()? {
                    procs.push(proc);
                }
            }
            "@start" => sampler.start(procs),
            "@end" => sampler.end(procs),
            json => result = serde_json::from_str::<LoadResult>(json).ok(),
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("the load generator failed ({status})");
    }
    let result = result.context("the load generator printed no result")?;
    let mut usage = sampler.usage;
    usage.cpu_percent.insert(
        "loadgen".to_owned(),
        (result.loadgen_cpu_seconds / result.seconds * 1000.0).round() / 10.0,
    );
    Ok((result, usage))
}

/// CPU and peak memory of the sampled processes over a measured window.
struct Sampler {
    window_start: Instant,
    ticks_before: BTreeMap<String, u64>,
    usage: Usage,
}

impl Default for Sampler {
    fn default() -> Self {
        Self {
            window_start: Instant::now(),
            ticks_before: BTreeMap::new(),
            usage: Usage::default(),
        }
    }
}

impl Sampler {
    fn start(&mut self, procs: &[(String, u32)]) {
        self.window_start = Instant::now();
        for (name, pid) in procs {
            self.ticks_before.insert(name.clone(), ticks(&[*pid]));
            reset_peak(*pid);
        }
        self.ticks_before
            .insert("postgres".to_owned(), ticks(&postgres_pids()));
    }

    fn end(&mut self, procs: &[(String, u32)]) {
        let seconds = self.window_start.elapsed().as_secs_f64();
        let mut spent = |name: &str, now: u64| {
            let before = self.ticks_before.get(name).copied().unwrap_or(0);
            let cpu = percent(now.saturating_sub(before), seconds);
            self.usage.cpu_percent.insert(name.to_owned(), cpu);
        };
        for (name, pid) in procs {
            spent(name, ticks(&[*pid]));
        }
        spent("postgres", ticks(&postgres_pids()));
        for (name, pid) in procs {
            if let Some(kib) = peak_kib(*pid) {
                let mib = (kib as f64 / 1024.0 * 10.0).round() / 10.0;
                self.usage.peak_rss_mib.insert(name.clone(), mib);
            }
        }
    }
}

fn percent(ticks: u64, seconds: f64) -> f64 {
    // USER_HZ is 100 on Linux.
    (ticks as f64 / 100.0 / seconds * 1000.0).round() / 10.0
}

/// User + system CPU ticks of `pids` (those still running).
fn ticks(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        })
        .sum()
}

/// Starts a new peak-RSS window for `pid` (writing 5 to clear_refs resets
/// VmHWM).
fn reset_peak(pid: u32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

fn peak_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Every PostgreSQL process on the machine (the server and its backends).
fn postgres_pids() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .collect()
}

fn capture(cmd: &mut Command) -> anyhow::Result<String> {
    let output = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {cmd:?}"))?;
    if !output.status.success() {
        bail!("{cmd:?} failed ({})", output.status);
    }
    Ok(String::from_utf8(output.stdout)?)
}

fn wait_healthy(addr: SocketAddr) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(mut stream) = TcpStream::connect(addr) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let ok = stream
                .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                .is_ok();
            let mut reply = String::new();
            if ok && stream.read_to_string(&mut reply).is_ok() && reply.starts_with("HTTP/1.1 200")
            {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("{addr} did not answer GET /healthz within 30 s")
}

fn stop(child: &mut Child) -> anyhow::Result<()> {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    child.wait()?;
    Ok(())
}

/// `--only`: `me` selects every scenario whose label starts with it, `me$`
/// that one scenario alone.
fn selects(selector: &str, label: &str) -> bool {
    match selector.strip_suffix('$') {
        Some(exact) => label == exact,
        None => label.starts_with(selector),
    }
}

fn step(text: &str) {
    println!("\n==> {text}");
}

fn print_line(result: &ScenarioResult) -> anyhow::Result<()> {
    let load = &result.load;
    println!(
        "  {}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} errors; CPU % {}; peak RSS MiB {}",
        result.label,
        load.rps,
        load.latency_ms.p50,
        load.latency_ms.p99,
        load.errors,
        serde_json::to_string(&result.usage.cpu_percent)?,
        serde_json::to_string(&result.usage.peak_rss_mib)?,
    );
    Ok(())
}

fn machine() -> Machine {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_default();
    let memory_gib = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| (kib / 1024.0 / 1024.0).round());
    Machine {
        cpu,
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        memory_gib,
        kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
        date: output_of(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))
            .unwrap_or_default(),
    }
}

/// The commit the binaries were built from, when run inside the
/// repository (`cargo xtask bench` is); `-dirty` when files had changed.
fn commit() -> Option<String> {
    output_of(Command::new("git").args(["describe", "--always", "--dirty", "--exclude", "*"]))
        .filter(|c| !c.is_empty())
}

/// A command's trimmed stdout, if it ran and succeeded.
fn output_of(cmd: &mut Command) -> Option<String> {
    let output = cmd.stderr(Stdio::null()).output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::selects;

    #[test]
    fn a_prefix_selects_every_scenario_it_starts_and_a_dollar_one_alone() {
        assert!(selects("me", "me"));
        assert!(selects("me", "me-floor"));
        assert!(selects("me$", "me"));
        assert!(!selects("me$", "me-floor"));
        assert!(!selects("me-floor$", "me"));
        assert!(!selects("login", "me"));
    }
}
