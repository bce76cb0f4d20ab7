//! `run`: the whole benchmark against a stack `cargo xtask bench` started:
//! seed, argon2 costs, every scenario through the gateway, `/me` through the
//! no-hop floor, nats-server's `/varz` straight from its monitoring port (the
//! proxy's baseline), `/me` during a login flood; then the Markdown and JSON
//! reports (rendered by `report`). Each measurement is a child process of this binary (`load`,
//! `seed`, `hash`, `floor`), so its CPU is its own.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::{load, report, seed};

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
    fn name(self) -> &'static str {
        match self {
            Front::Gateway => "gateway",
            Front::Floor | Front::FloorCoalesced => "floor",
            Front::NatsMonitor => "nats-monitor",
        }
    }
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
];

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let exe = std::env::current_exe()?;
    let mut pids: Vec<(String, u32)> = Vec::new();
    for entry in &args.pids {
        let (name, pid) = entry
            .split_once('=')
            .with_context(|| format!("--pids entry {entry:?} is not name=pid"))?;
        pids.push((name.to_owned(), pid.parse()?));
    }

    step("Seed");
    let seed = capture(Command::new(&exe).args([
        "seed",
        "--password",
        PASSWORD,
        "--users",
        &args.size.users.to_string(),
        "--posts",
        &args.size.posts.to_string(),
    ]))?;
    let seed: Value = serde_json::from_str(seed.trim()).context("seed's output")?;
    println!(
        "  {} users and {} posts in {:.1} s",
        args.size.users,
        args.size.posts,
        seed["seconds"].as_f64().unwrap_or(0.0)
    );

    step("argon2id per hash");
    let hash: Value = serde_json::from_str(capture(Command::new(&exe).arg("hash"))?.trim())?;
    println!("  {hash}");

    let selected: Vec<&Case> = CASES
        .iter()
        .filter(|case| args.only.is_empty() || args.only.iter().any(|o| selects(o, case.label)))
        .collect();
    let mut runs: Vec<Vec<Value>> = vec![Vec::new(); selected.len()];
    for round in 1..=args.rounds {
        for (case, runs) in selected.iter().zip(&mut runs) {
            let label = if args.rounds > 1 {
                format!("Scenario {} (round {round} of {})", case.label, args.rounds)
            } else {
                format!("Scenario {}", case.label)
            };
            step(&label);
            runs.push(run_case(case, &args, &exe, &pids, &seed)?);
        }
    }
    let results: Vec<Value> = runs.into_iter().map(median_run).collect();

    let mut report = json!({
        "machine": machine(),
        "settings": {
            "connections": args.shape.connections, "warmupSeconds": args.shape.warmup,
            "seconds": args.shape.duration, "note": args.note,
        },
        "seed": seed,
        "argon2": hash,
        "results": results,
        "elapsedSeconds": started.elapsed().as_secs_f64(),
    });
    if let Some(proxy) = report::proxy_overhead(&report) {
        report["proxy"] = proxy;
    }
    let markdown = report::write(&report, &args.out)?;
    println!("\n{markdown}");
    println!(
        "Written: {} and {}",
        args.out.join("report.md").display(),
        args.out.join("report.json").display()
    );
    Ok(())
}

/// The run of a scenario with the median successful req/s (the upper one
/// of an even count), with every run's figure beside it (`roundsOkRps`,
/// in the order they ran).
fn median_run(mut runs: Vec<Value>) -> Value {
    let ok = |r: &Value| r["okRps"].as_f64().unwrap_or(0.0);
    let all: Vec<f64> = runs.iter().map(ok).collect();
    runs.sort_by(|a, b| ok(a).total_cmp(&ok(b)));
    let middle = runs.len() / 2;
    let mut chosen = runs.swap_remove(middle);
    if all.len() > 1 {
        chosen["roundsOkRps"] = json!(all);
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
    seed: &Value,
) -> anyhow::Result<Value> {
    let mut floor = None;
    let (addr, mut procs) = match case.front {
        Front::Gateway => (args.gateway, pids.to_vec()),
        // The stack's processes are sampled too: nats-server serves it.
        Front::NatsMonitor => (args.nats_monitor, pids.to_vec()),
        Front::Floor | Front::FloorCoalesced => {
            // Its logs go to a file, as the gateway's do.
            let log_path = std::env::var_os("NATSAUTH_BENCH_LOG")
                .map_or_else(|| args.out.join("floor.log"), PathBuf::from);
            let log = std::fs::File::create(&log_path)
                .with_context(|| format!("creating {}", log_path.display()))?;
            let child = Command::new(exe)
                .arg("floor")
                .args((case.front == Front::FloorCoalesced).then_some("--coalesced"))
                .env("GATEWAY_HTTP__ADDR", args.floor.to_string())
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .context("starting the floor")?;
            let pid = child.id();
            floor = Some(child);
            wait_healthy(args.floor)?;
            let procs = vec![("floor".to_owned(), pid)];
            (args.floor, procs)
        }
    };
    let load = |scenario: &str, longer: f64, connections: usize| {
        let mut cmd = Command::new(exe);
        cmd.args([
            "load",
            "--addr",
            &addr.to_string(),
            "--scenario",
            scenario,
            "--connections",
            &connections.to_string(),
            "--addresses",
            &case.addresses.to_string(),
            "--users",
            &match case.users {
                0 => 1000,
                n => n,
            }
            .to_string(),
            "--warmup",
            &args.shape.warmup.to_string(),
            "--duration",
            &(args.shape.duration + longer).to_string(),
            "--password",
            PASSWORD,
            "--seed",
            &seed.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
        cmd.spawn().context("starting the load generator")
    };
    // The flood starts once the measured load has its tokens (logging
    // in behind a flood would take longer than the flood), and lasts a
    // second longer than the other's warm-up and window.
    let mut flood = None;
    let connections = match case.connections {
        0 => args.shape.connections,
        n => n,
    };
    let measured = measure(load(case.scenario, 0.0, connections)?, &mut procs, || {
        if case.flood == 0 {
            return Ok(None);
        }
        let child = load("login", 1.0, case.flood)?;
        let pid = child.id();
        flood = Some(child);
        Ok(Some(("flood-loadgen".to_owned(), pid)))
    })?;
    let flood = match flood {
        Some(mut child) => {
            let mut out = String::new();
            child
                .stdout
                .take()
                .context("no stdout")?
                .read_to_string(&mut out)?;
            child.wait()?;
            out.lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .next_back()
        }
        None => None,
    };
    if let Some(mut child) = floor {
        stop(&mut child)?;
    }
    let mut result = measured;
    result["label"] = json!(case.label);
    result["through"] = json!(case.front.name());
    if let Some(flood) = flood {
        result["flood"] = flood;
    }
    print_line(&result);
    Ok(result)
}

/// Runs one load generator to its end, sampling `procs` over its measured
/// window; returns its result with `cpuPercent` and `peakRssMib` added.
/// `on_ready` runs when the generator is set up, before its warm-up, and may
/// start another process to sample too.
fn measure(
    mut child: Child,
    procs: &mut Vec<(String, u32)>,
    mut on_ready: impl FnMut() -> anyhow::Result<Option<(String, u32)>>,
) -> anyhow::Result<Value> {
    let stdout = child.stdout.take().context("no stdout")?;
    let mut before = BTreeMap::new();
    let mut window_start = Instant::now();
    let mut result = None;
    let mut cpu = BTreeMap::new();
    let mut rss = BTreeMap::new();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        match line.as_str() {
            "@ready" => {
                if let Some(proc) = on_ready()? {
                    procs.push(proc);
                }
            }
            "@start" => {
                window_start = Instant::now();
                for (name, pid) in procs.iter() {
                    before.insert(name.clone(), ticks(&[*pid]));
                    reset_peak(*pid);
                }
                before.insert("postgres".to_owned(), ticks(&postgres_pids()));
            }
            "@end" => {
                let seconds = window_start.elapsed().as_secs_f64();
                for (name, pid) in procs.iter() {
                    let spent = ticks(&[*pid]).saturating_sub(before[name]);
                    cpu.insert(name.clone(), percent(spent, seconds));
                    if let Some(kib) = peak_kib(*pid) {
                        rss.insert(name.clone(), (kib as f64 / 1024.0 * 10.0).round() / 10.0);
                    }
                }
                let spent = ticks(&postgres_pids()).saturating_sub(before["postgres"]);
                cpu.insert("postgres".to_owned(), percent(spent, seconds));
            }
            json => result = serde_json::from_str::<Value>(json).ok(),
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("the load generator failed ({status})");
    }
    let mut result = result.context("the load generator printed no result")?;
    let seconds = result["seconds"].as_f64().unwrap_or(1.0);
    cpu.insert(
        "loadgen".to_owned(),
        (result["loadgenCpuSeconds"].as_f64().unwrap_or(0.0) / seconds * 1000.0).round() / 10.0,
    );
    result["cpuPercent"] = json!(cpu);
    result["peakRssMib"] = json!(rss);
    Ok(result)
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

fn print_line(result: &Value) {
    println!(
        "  {}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} errors; CPU % {}; peak RSS MiB {}",
        result["label"].as_str().unwrap_or(""),
        result["rps"].as_f64().unwrap_or(0.0),
        result["latencyMs"]["p50"].as_f64().unwrap_or(0.0),
        result["latencyMs"]["p99"].as_f64().unwrap_or(0.0),
        result["errors"],
        result["cpuPercent"],
        result["peakRssMib"],
    );
}

fn machine() -> Value {
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
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    json!({
        "cpu": cpu,
        "cores": std::thread::available_parallelism().map_or(1, usize::from),
        "memoryGib": memory_gib,
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
        "date": date,
    })
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
