//! `run`: the whole benchmark against a stack `cargo xtask bench` started:
//! seed, argon2 costs, every scenario through the gateway, `/me` through the
//! no-hop floor, `/me` during a login flood; then the Markdown and JSON
//! reports. Each measurement is a child process of this binary (`load`,
//! `seed`, `hash`, `floor`), so its CPU is its own.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::{load, seed};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The gateway of the stack.
    #[arg(long)]
    gateway: SocketAddr,
    /// Where the floor listens.
    #[arg(long)]
    floor: SocketAddr,
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
}

const PASSWORD: &str = "bench password 1";

/// One measured scenario.
struct Case {
    label: &'static str,
    scenario: &'static str,
    floor: bool,
    /// A login flood runs beside it.
    flood: bool,
}

const CASES: &[Case] = &[
    Case {
        label: "signup",
        scenario: "signup",
        floor: false,
        flood: false,
    },
    Case {
        label: "login",
        scenario: "login",
        floor: false,
        flood: false,
    },
    Case {
        label: "me",
        scenario: "me",
        floor: false,
        flood: false,
    },
    Case {
        label: "me-floor",
        scenario: "me",
        floor: true,
        flood: false,
    },
    Case {
        label: "users-first",
        scenario: "users-first",
        floor: false,
        flood: false,
    },
    Case {
        label: "users-deep",
        scenario: "users-deep",
        floor: false,
        flood: false,
    },
    Case {
        label: "posts-first",
        scenario: "posts-first",
        floor: false,
        flood: false,
    },
    Case {
        label: "posts-deep",
        scenario: "posts-deep",
        floor: false,
        flood: false,
    },
    Case {
        label: "mix",
        scenario: "mix",
        floor: false,
        flood: false,
    },
    Case {
        label: "me-during-login-flood",
        scenario: "me",
        floor: false,
        flood: true,
    },
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

    let mut results = Vec::new();
    for case in CASES {
        if !args.only.is_empty() && !args.only.iter().any(|o| case.label.starts_with(o.as_str())) {
            continue;
        }
        step(&format!("Scenario {}", case.label));
        let mut floor = None;
        let (addr, mut procs) = if case.floor {
            // Its logs go to a file, as the gateway's do.
            let log_path = std::env::var_os("NATSAUTH_BENCH_LOG")
                .map_or_else(|| args.out.join("floor.log"), PathBuf::from);
            let log = std::fs::File::create(&log_path)
                .with_context(|| format!("creating {}", log_path.display()))?;
            let child = Command::new(&exe)
                .arg("floor")
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
        } else {
            (args.gateway, pids.clone())
        };
        let load = |scenario: &str, longer: f64| {
            let mut cmd = Command::new(&exe);
            cmd.args([
                "load",
                "--addr",
                &addr.to_string(),
                "--scenario",
                scenario,
                "--connections",
                &args.shape.connections.to_string(),
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
        let measured = measure(load(case.scenario, 0.0)?, &mut procs, || {
            if !case.flood {
                return Ok(None);
            }
            let child = load("login", 1.0)?;
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
        result["through"] = json!(if case.floor { "floor" } else { "gateway" });
        if let Some(flood) = flood {
            result["flood"] = flood;
        }
        print_line(&result);
        results.push(result);
    }

    let report = json!({
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
    std::fs::create_dir_all(&args.out)?;
    let markdown = markdown(&report);
    std::fs::write(
        args.out.join("report.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    std::fs::write(args.out.join("report.md"), &markdown)?;
    println!("\n{markdown}");
    println!(
        "Written: {} and {}",
        args.out.join("report.md").display(),
        args.out.join("report.json").display()
    );
    Ok(())
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

fn find<'a>(report: &'a Value, label: &str) -> Option<&'a Value> {
    report["results"]
        .as_array()?
        .iter()
        .find(|r| r["label"] == label)
}

fn markdown(report: &Value) -> String {
    let mut md = String::new();
    let m = &report["machine"];
    let s = &report["settings"];
    let _ = writeln!(
        md,
        "Machine: {} cores ({}), {} GiB, Linux {}; {}. Load generator on the same machine, \
         {} connections, {} s measured after {} s warm-up.\n",
        m["cores"],
        m["cpu"].as_str().unwrap_or(""),
        m["memoryGib"],
        m["kernel"].as_str().unwrap_or(""),
        m["date"].as_str().unwrap_or(""),
        s["connections"],
        s["seconds"],
        s["warmupSeconds"],
    );
    if let Some(note) = s["note"].as_str().filter(|n| !n.is_empty()) {
        let _ = writeln!(md, "{note}\n");
    }
    let _ = writeln!(
        md,
        "| scenario | through | req/s | p50 ms | p90 ms | p99 ms | max ms | errors | CPU % gateway (floor) / auth / user / nats / pg / loadgen | peak RSS MiB gateway (floor) / auth / user / nats |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---|---|");
    let num = |v: &Value| v.as_f64().map_or("–".to_owned(), |x| format!("{x:.1}"));
    for r in report["results"].as_array().into_iter().flatten() {
        let cpu = &r["cpuPercent"];
        let rss = &r["peakRssMib"];
        let front = if r["through"] == "floor" {
            "floor"
        } else {
            "gateway"
        };
        let l = &r["latencyMs"];
        let _ = writeln!(
            md,
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.1} | {} | {} / {} / {} / {} / {} / {} | {} / {} / {} / {} |",
            r["label"].as_str().unwrap_or(""),
            front,
            r["rps"].as_f64().unwrap_or(0.0),
            l["p50"].as_f64().unwrap_or(0.0),
            l["p90"].as_f64().unwrap_or(0.0),
            l["p99"].as_f64().unwrap_or(0.0),
            l["max"].as_f64().unwrap_or(0.0),
            r["errors"],
            num(&cpu[front]),
            num(&cpu["auth-worker"]),
            num(&cpu["user-worker"]),
            num(&cpu["nats-server"]),
            num(&cpu["postgres"]),
            num(&cpu["loadgen"]),
            num(&rss[front]),
            num(&rss["auth-worker"]),
            num(&rss["user-worker"]),
            num(&rss["nats-server"]),
        );
    }

    let _ = writeln!(md, "\nDerived:\n");
    let rps = |label: &str| find(report, label).and_then(|r| r["rps"].as_f64());
    let p99 = |label: &str| find(report, label).and_then(|r| r["latencyMs"]["p99"].as_f64());
    let p50 = |label: &str| find(report, label).and_then(|r| r["latencyMs"]["p50"].as_f64());
    if let (Some(hop), Some(floor)) = (rps("me"), rps("me-floor")) {
        let _ = writeln!(
            md,
            "* `/me` through NATS / without NATS: **{:.2}×** the throughput ({hop:.0} / {floor:.0} req/s)",
            hop / floor
        );
    }
    if let (Some(hop), Some(floor)) = (p99("me"), p99("me-floor")) {
        let _ = writeln!(
            md,
            "* `/me` p99 through NATS / without NATS: **{:.2}×** ({hop:.2} / {floor:.2} ms)",
            hop / floor
        );
    }
    for (deep, first, what) in [
        ("users-deep", "users-first", "`GET /api/users`"),
        ("posts-deep", "posts-first", "`GET /api/posts`"),
    ] {
        if let (Some(d), Some(f)) = (p50(deep), p50(first)) {
            let _ = writeln!(
                md,
                "* {what} deep page (about row {}) / first page, p50 latency: **{:.2}×** ({d:.2} / {f:.2} ms)",
                report["seed"]["users"],
                d / f
            );
        }
    }
    let a = &report["argon2"];
    if let Some(per_second) = a["hasherPerSecond"].as_f64() {
        let _ = writeln!(
            md,
            "* argon2id m={} t={} p={}: {:.1} ms per hash on one core with `argon2` 0.5 (the auth-worker's), {:.1} ms with 0.6; \
             the auth-worker's hasher ({} at once) does **{per_second:.0} hashes/s**, the ceiling for sign-ups and logins",
            a["params"]["memoryKib"],
            a["params"]["iterations"],
            a["params"]["parallelism"],
            a["msPerHash"]["argon2 0.5"].as_f64().unwrap_or(0.0),
            a["msPerHash"]["argon2 0.6"].as_f64().unwrap_or(0.0),
            a["maxConcurrentHashes"],
        );
    }
    if let Some(r) = find(report, "me-during-login-flood") {
        let _ = writeln!(
            md,
            "* During a login flood ({:.0} logins/s, {} errors): `/me` did {:.0} req/s, p99 {:.2} ms, {} errors",
            r["flood"]["rps"].as_f64().unwrap_or(0.0),
            r["flood"]["errors"],
            r["rps"].as_f64().unwrap_or(0.0),
            r["latencyMs"]["p99"].as_f64().unwrap_or(0.0),
            r["errors"],
        );
    }
    targets(&mut md, report);
    if let Some(seconds) = report["seed"]["seconds"].as_f64() {
        let _ = writeln!(
            md,
            "* Seeding {} users and {} posts in SQL took {seconds:.1} s",
            report["seed"]["users"], report["seed"]["posts"]
        );
    }
    md
}

/// The targets, each with the figure that meets or misses it.
fn targets(md: &mut String, report: &Value) {
    let get = |label: &str, path: &[&str]| {
        let mut v = find(report, label)?;
        for key in path {
            v = v.get(*key)?;
        }
        v.as_f64()
    };
    let a = &report["argon2"];
    let hash_mib = a["params"]["memoryKib"].as_f64().unwrap_or(0.0) / 1024.0;
    let slots = a["maxConcurrentHashes"].as_f64().unwrap_or(1.0);
    let mut rows: Vec<(String, Option<bool>, String)> = Vec::new();
    let mut check = |what: &str, value: Option<f64>, ok: &dyn Fn(f64) -> bool, unit: &str| {
        rows.push((
            what.to_owned(),
            value.map(ok),
            value.map_or("not measured".to_owned(), |v| format!("{v:.2}{unit}")),
        ));
    };
    check(
        "`/me` ≥ 3,000 req/s",
        get("me", &["rps"]),
        &|v| v >= 3000.0,
        " req/s",
    );
    let ratio = get("me", &["rps"])
        .zip(get("me-floor", &["rps"]))
        .map(|(a, b)| a / b);
    check("`/me` ≥ 0.6× the no-hop floor", ratio, &|v| v >= 0.6, "×");
    let p99 = get("me", &["latencyMs", "p99"]).zip(get("me-floor", &["latencyMs", "p99"]));
    check(
        "`/me` p99 ≤ 2× the floor's",
        p99.map(|(a, b)| a / b),
        &|v| v <= 2.0,
        "×",
    );
    check(
        "sign-up ≥ 80/s",
        get("signup", &["rps"]),
        &|v| v >= 80.0,
        "/s",
    );
    check("login ≥ 80/s", get("login", &["rps"]), &|v| v >= 80.0, "/s");
    for (deep, first) in [("users-deep", "users-first"), ("posts-deep", "posts-first")] {
        let r = get(deep, &["latencyMs", "p50"])
            .zip(get(first, &["latencyMs", "p50"]))
            .map(|(d, f)| d / f);
        check(
            &format!("{deep} p50 about the first page's (≤ 1.5×)"),
            r,
            &|v| v <= 1.5,
            "×",
        );
    }
    let peak = |process: &str| {
        report["results"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["peakRssMib"][process].as_f64())
            .reduce(f64::max)
    };
    check(
        "gateway peak RSS ≤ 30 MiB",
        peak("gateway"),
        &|v| v <= 30.0,
        " MiB",
    );
    check(
        "user-worker peak RSS ≤ 30 MiB",
        peak("user-worker"),
        &|v| v <= 30.0,
        " MiB",
    );
    let auth_limit = 30.0 + hash_mib * slots;
    check(
        &format!(
            "auth-worker peak RSS ≤ 30 MiB + {slots:.0} hashes × {hash_mib:.0} MiB = {auth_limit:.0} MiB"
        ),
        peak("auth-worker"),
        &|v| v <= auth_limit,
        " MiB",
    );
    check(
        "`/me` errors during the login flood = 0",
        get("me-during-login-flood", &["errors"]),
        &|v| v == 0.0,
        "",
    );
    let _ = writeln!(
        md,
        "\nTargets:\n\n| target | measured | met |\n|---|---:|:---:|"
    );
    for (what, ok, value) in rows {
        let mark = match ok {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "–",
        };
        let _ = writeln!(md, "| {what} | {value} | {mark} |");
    }
    let _ = writeln!(md);
}
