//! The report of a `run`: `report.json` (every figure, the machine and the
//! date) and `report.md` (the table, the derived ratios, the issue's
//! targets met or missed), both rendered from the same JSON.

use std::{fmt::Write as _, path::Path};

use serde_json::{Value, json};

/// Writes `report.json` and `report.md` into `out` (made if missing);
/// returns the Markdown. Each result gains `cpuMicrosPerRequest`.
pub fn write(report: &Value, out: &Path) -> anyhow::Result<String> {
    std::fs::create_dir_all(out)?;
    let mut report = report.clone();
    for result in report["results"].as_array_mut().into_iter().flatten() {
        result["cpuMicrosPerRequest"] = cpu_micros_per_request(result);
    }
    let report = &report;
    let markdown = markdown(report);
    std::fs::write(
        out.join("report.json"),
        serde_json::to_string_pretty(report)?,
    )?;
    std::fs::write(out.join("report.md"), &markdown)?;
    Ok(markdown)
}

/// CPU time per request of each process sampled, in µs: its share of a core
/// over the measured window, divided by the requests per second.
pub fn cpu_micros_per_request(result: &Value) -> Value {
    let rps = result["rps"].as_f64().filter(|r| *r > 0.0);
    let mut out = serde_json::Map::new();
    if let (Some(rps), Some(cpu)) = (rps, result["cpuPercent"].as_object()) {
        for (process, percent) in cpu {
            if let Some(percent) = percent.as_f64() {
                let micros = percent / 100.0 * 1e6 / rps;
                out.insert(process.clone(), json!((micros * 10.0).round() / 10.0));
            }
        }
    }
    Value::Object(out)
}

/// With `--rounds`, every round's successful req/s per scenario; the table
/// above shows each scenario's median round.
fn rounds(md: &mut String, report: &Value) {
    let results = report["results"].as_array().into_iter().flatten();
    let lines: Vec<String> = results
        .filter_map(|r| {
            let all = r["roundsOkRps"].as_array()?;
            let figures: Vec<String> = all
                .iter()
                .map(|v| format!("{:.0}", v.as_f64().unwrap_or(0.0)))
                .collect();
            Some(format!(
                "* {}: {}",
                r["label"].as_str().unwrap_or(""),
                figures.join(" / ")
            ))
        })
        .collect();
    if !lines.is_empty() {
        let _ = writeln!(
            md,
            "\nSuccessful req/s of each round, in the order they ran (the table shows the median round):\n\n{}",
            lines.join("\n")
        );
    }
}

fn find<'a>(report: &'a Value, label: &str) -> Option<&'a Value> {
    report["results"]
        .as_array()?
        .iter()
        .find(|r| r["label"] == label)
}

/// The reverse proxy's cost, when both of its cases ran: `proxy`
/// (`GET /proxy/nats/varz` through the gateway) against `proxy-direct` (the
/// same request straight to nats-server's monitor), measured in one run. The
/// added latency is through minus direct, per percentile; the throughput
/// ratio through / direct.
pub fn proxy_overhead(report: &Value) -> Option<Value> {
    let through = find(report, "proxy")?;
    let direct = find(report, "proxy-direct")?;
    let figures = |r: &Value| {
        Some((
            r["rps"].as_f64()?,
            r["latencyMs"]["p50"].as_f64()?,
            r["latencyMs"]["p99"].as_f64()?,
        ))
    };
    let (t_rps, t_p50, t_p99) = figures(through)?;
    let (d_rps, d_p50, d_p99) = figures(direct)?;
    // Differences to the microsecond (the histogram's unit), the ratio to
    // four places.
    let micros = |ms: f64| (ms * 1000.0).round() / 1000.0;
    Some(json!({
        "through": {"rps": t_rps, "p50Ms": t_p50, "p99Ms": t_p99, "errors": through["errors"]},
        "direct": {"rps": d_rps, "p50Ms": d_p50, "p99Ms": d_p99, "errors": direct["errors"]},
        "addedMs": {"p50": micros(t_p50 - d_p50), "p99": micros(t_p99 - d_p99)},
        "throughputRatio": (t_rps / d_rps * 10_000.0).round() / 10_000.0,
    }))
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
        // Whose CPU and memory come first: the front that served the
        // requests (nats-server's monitor, sampled as `nats`, has its own
        // column).
        let front = if r["through"] == "floor" {
            "floor"
        } else {
            "gateway"
        };
        let through = match r["through"].as_str() {
            Some("nats-monitor") => "nats-monitor",
            _ => front,
        };
        let l = &r["latencyMs"];
        let _ = writeln!(
            md,
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.1} | {} | {} / {} / {} / {} / {} / {} | {} / {} / {} / {} |",
            r["label"].as_str().unwrap_or(""),
            through,
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
    rounds(&mut md, report);

    cpu_per_request(&mut md, report);

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
    // The same code as the stack with only the hop taken away: what the
    // broker itself costs, now that the workers coalesce caller checks.
    if let (Some(hop), Some(floor)) = (rps("me"), rps("me-floor-coalesced")) {
        let p99s = p99("me").zip(p99("me-floor-coalesced"));
        let _ = writeln!(
            md,
            "* `/me` through NATS / without NATS, both with coalesced caller checks: **{:.2}×** \
             the throughput ({hop:.0} / {floor:.0} req/s){}",
            hop / floor,
            p99s.map_or(String::new(), |(a, b)| format!(", p99 **{:.2}×**", a / b)),
        );
    }
    if let (Some(session), Some(me)) = (rps("session"), rps("me")) {
        let _ = writeln!(
            md,
            "* `GET /api/session` (cookie) / `GET /api/users/me` (bearer): **{:.2}×** the throughput \
             ({session:.0} / {me:.0} req/s): the cookie is opened (AES-GCM) before the same token check \
             and `user.get`",
            session / me
        );
    }
    if let (Some(page), Some(office)) = (rps("login-page"), rps("back-office")) {
        let _ = writeln!(
            md,
            "* pages: `GET /login` {page:.0} req/s (no NATS), `GET /dashboard/` as an ADMIN \
             {office:.0} req/s (the cookie and token checked, then `index.html`)"
        );
    }
    if let Some(p) = proxy_overhead(report) {
        let (t, d, added) = (&p["through"], &p["direct"], &p["addedMs"]);
        let f = |v: &Value| v.as_f64().unwrap_or(0.0);
        let _ = writeln!(
            md,
            "* the reverse proxy: `GET /proxy/nats/varz` through the gateway as an ADMIN (cookie) / \
             `GET /varz` straight to nats-server's monitor, same run: added latency p50 **{:+.2} ms** \
             ({:.2} / {:.2} ms), p99 **{:+.2} ms** ({:.2} / {:.2} ms); throughput **{:.2}×** \
             ({:.0} / {:.0} req/s)",
            f(&added["p50"]),
            f(&t["p50Ms"]),
            f(&d["p50Ms"]),
            f(&added["p99"]),
            f(&t["p99Ms"]),
            f(&d["p99Ms"]),
            f(&p["throughputRatio"]),
            f(&t["rps"]),
            f(&d["rps"]),
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
            "* argon2id m={} t={} p={}: {:.1} ms per hash on one core with `argon2-rust` (the auth-worker's engine, {} backend), {:.1} ms with `argon2` 0.5 (RustCrypto); \
             the auth-worker's hasher ({} at once) does **{per_second:.0} hashes/s**, the ceiling for sign-ups and logins",
            a["params"]["memoryKib"],
            a["params"]["iterations"],
            a["params"]["parallelism"],
            a["msPerHash"]["argon2-rust"].as_f64().unwrap_or(0.0),
            a["backend"].as_str().unwrap_or("?"),
            a["msPerHash"]["argon2 0.5"].as_f64().unwrap_or(0.0),
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
    overload(&mut md, report);
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
/// The table of CPU µs per request per process (what each request costs
/// where, rather than how busy each process was).
/// Successful requests per second (`okRps`; from `rps` and `errors` in a
/// report written before it existed).
fn ok_rps(r: &Value) -> Option<f64> {
    r["okRps"].as_f64().or_else(|| {
        let seconds = r["seconds"].as_f64().filter(|s| *s > 0.0)?;
        Some(r["rps"].as_f64()? - r["errors"].as_f64()? / seconds)
    })
}

/// Replies of `status` per second.
fn status_rate(r: &Value, status: &str) -> f64 {
    let seconds = r["seconds"].as_f64().filter(|s| *s > 0.0).unwrap_or(1.0);
    r["statuses"][status].as_f64().unwrap_or(0.0) / seconds
}

/// The server side's CPU per request, µs: every process of the stack but
/// the load generators.
fn server_micros(r: &Value) -> Option<f64> {
    let per = cpu_micros_per_request(r);
    let sum: f64 = per
        .as_object()?
        .iter()
        .filter(|(p, _)| !p.contains("loadgen"))
        .filter_map(|(_, v)| v.as_f64())
        .sum();
    (sum > 0.0).then_some(sum)
}

/// Overload: goodput with 8× the clients, and what a refusal
/// costs.
pub fn overload_figures(report: &Value) -> Value {
    let ok = |label: &str| find(report, label).and_then(ok_rps);
    let ratio = |a: Option<f64>, b: Option<f64>| {
        a.zip(b)
            .filter(|(_, b)| *b > 0.0)
            .map(|(a, b)| (a / b * 1000.0).round() / 1000.0)
    };
    // A refusal reaches neither NATS nor a worker: its cost is the
    // gateway's CPU per reply where nearly every reply is one (the one
    // client's share of logins that go through is counted in too).
    let refusal = find(report, "login-one-client")
        .and_then(|r| cpu_micros_per_request(r)["gateway"].as_f64());
    let accepted = find(report, "me").and_then(server_micros);
    let login = find(report, "login").and_then(server_micros);
    // The cheapest reply: every layer, no NATS; what any answer costs.
    let healthz =
        find(report, "healthz").and_then(|r| cpu_micros_per_request(r)["gateway"].as_f64());
    json!({
        "acceptedLoginMicros": login,
        "refusalOverAcceptedLogin": ratio(refusal, login),
        "me512Over64": ratio(ok("me-c512"), ok("me-c64")),
        "login256Over32": ratio(ok("login-c256"), ok("login")),
        "meDuringFlood256Over32": ratio(ok("me-during-login-flood-c256"), ok("me-during-login-flood")),
        "oneAccountOverMany": ratio(ok("login-one-account"), ok("login")),
        "oneClientLogin256Over32": ratio(ok("login-one-client"), ok("login-one-client-c32")),
        "meDuringOneClientFlood256Over32": ratio(
            ok("me-during-one-client-flood-c256"),
            ok("me-during-one-client-flood")
        ),
        "refusalMicros": refusal,
        "healthzMicros": healthz,
        "refusalOverHealthz": ratio(refusal, healthz),
        "acceptedMeMicros": accepted,
        "refusalOverAccepted": ratio(refusal, accepted),
    })
}

fn overload(md: &mut String, report: &Value) {
    let labels = [
        "me-c64",
        "me-c512",
        "login",
        "login-c256",
        "me-during-login-flood",
        "me-during-login-flood-c256",
        "login-one-client",
    ];
    let rows: Vec<&Value> = labels.iter().filter_map(|l| find(report, l)).collect();
    if rows.len() < 2 {
        return;
    }
    let _ = writeln!(
        md,
        "\nOverload (successful and refused replies per second):\n\n\
         | scenario | connections | addresses | ok/s | 503/s | 429/s | other errors | p50 ms | p99 ms | flood ok/s | flood 503/s | flood 429/s | gateway peak RSS MiB |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in rows {
        let refused = status_rate(r, "503") + status_rate(r, "429");
        let seconds = r["seconds"].as_f64().filter(|s| *s > 0.0).unwrap_or(1.0);
        let other = (r["errors"].as_f64().unwrap_or(0.0) - refused * seconds).max(0.0);
        let addresses = match r["addresses"].as_u64() {
            Some(0) | None => "each".to_owned(),
            Some(n) => n.to_string(),
        };
        let flood = &r["flood"];
        let (f_ok, f_503, f_429) = if flood.is_object() {
            (
                format!("{:.0}", ok_rps(flood).unwrap_or(0.0)),
                format!("{:.0}", status_rate(flood, "503")),
                format!("{:.0}", status_rate(flood, "429")),
            )
        } else {
            ("–".to_owned(), "–".to_owned(), "–".to_owned())
        };
        let _ = writeln!(
            md,
            "| {} | {} | {addresses} | {:.0} | {:.0} | {:.0} | {other:.0} | {:.2} | {:.2} | {f_ok} | {f_503} | {f_429} | {:.1} |",
            r["label"].as_str().unwrap_or(""),
            r["connections"],
            ok_rps(r).unwrap_or(0.0),
            status_rate(r, "503"),
            status_rate(r, "429"),
            r["latencyMs"]["p50"].as_f64().unwrap_or(0.0),
            r["latencyMs"]["p99"].as_f64().unwrap_or(0.0),
            r["peakRssMib"]["gateway"].as_f64().unwrap_or(0.0),
        );
    }
    let o = overload_figures(report);
    let _ = writeln!(md);
    if let (Some(r), Some(a)) = (o["refusalMicros"].as_f64(), o["acceptedMeMicros"].as_f64()) {
        let _ = writeln!(
            md,
            "* A refusal costs the gateway **{r:.1} µs** of CPU (nothing elsewhere); an accepted \
             `/me` costs the stack {a:.0} µs: **{:.3}×**{}",
            r / a,
            o["acceptedLoginMicros"]
                .as_f64()
                .map_or(String::new(), |l| format!(
                    "; an accepted login {l:.0} µs: **{:.4}×**",
                    r / l
                )),
        );
    }
    if let (Some(r), Some(h)) = (o["refusalMicros"].as_f64(), o["healthzMicros"].as_f64()) {
        let _ = writeln!(
            md,
            "* The gateway's cheapest reply, `GET /healthz` (every layer, no NATS), costs it \
             {h:.1} µs: a refusal is **{:.2}×** that",
            r / h
        );
    }
}

fn cpu_per_request(md: &mut String, report: &Value) {
    let _ = writeln!(
        md,
        "\nCPU µs per request:\n\n| scenario | gateway (floor) | auth | user | nats | pg | loadgen | all |\n|---|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in report["results"].as_array().into_iter().flatten() {
        let per = cpu_micros_per_request(r);
        let front = if r["through"] == "floor" {
            "floor"
        } else {
            "gateway"
        };
        let cell = |p: &str| {
            per[p]
                .as_f64()
                .map_or("–".to_owned(), |x| format!("{x:.0}"))
        };
        let all: f64 = per
            .as_object()
            .map(|m| m.values().filter_map(Value::as_f64).sum())
            .unwrap_or(0.0);
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {all:.0} |",
            r["label"].as_str().unwrap_or(""),
            cell(front),
            cell("auth-worker"),
            cell("user-worker"),
            cell("nats-server"),
            cell("postgres"),
            cell("loadgen"),
        );
    }
}

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
    // Against the floor that makes one caller query per request, as a
    // monolith does.
    check(
        "`/me` ≥ 0.75× the no-hop floor (a monolith)",
        ratio,
        &|v| v >= 0.75,
        "×",
    );
    let p99 = get("me", &["latencyMs", "p99"]).zip(get("me-floor", &["latencyMs", "p99"]));
    check(
        "`/me` p99 ≤ 1.3× the floor's",
        p99.map(|(a, b)| a / b),
        &|v| v <= 1.3,
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
    // Memory targets hold at up to 64 connections; 512 open connections
    // take their own buffers (the overload table says how much).
    let peak = |process: &str| {
        report["results"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["connections"].as_u64().is_none_or(|c| c <= 64))
            .filter(|r| r["flood"]["connections"].as_u64().is_none_or(|c| c <= 64))
            .filter_map(|r| r["peakRssMib"][process].as_f64())
            .reduce(f64::max)
    };
    check(
        "gateway peak RSS ≤ 30 MiB (up to 64 connections)",
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
    let o = overload_figures(report);
    check(
        "`/me` with 512 connections ≥ 0.9× its successes with 64",
        o["me512Over64"].as_f64(),
        &|v| v >= 0.9,
        "×",
    );
    check(
        "login with 256 connections ≥ 0.9× its successes with 32",
        o["login256Over32"].as_f64(),
        &|v| v >= 0.9,
        "×",
    );
    check(
        "`/me` during a 256-connection login flood ≥ 0.8× during a 32-connection one",
        o["meDuringFlood256Over32"].as_f64(),
        &|v| v >= 0.8,
        "×",
    );
    check(
        "login of one account ≥ 0.9× logins of a thousand",
        o["oneAccountOverMany"].as_f64(),
        &|v| v >= 0.9,
        "×",
    );
    check(
        "one address: logins with 256 connections ≥ 0.9× with 32",
        o["oneClientLogin256Over32"].as_f64(),
        &|v| v >= 0.9,
        "×",
    );
    check(
        "`/me` beside one address's 256-connection login flood ≥ 0.8× beside its 32",
        o["meDuringOneClientFlood256Over32"].as_f64(),
        &|v| v >= 0.8,
        "×",
    );
    check(
        "`/me` errors during the 256-connection login flood = 0",
        get("me-during-login-flood-c256", &["errors"]),
        &|v| v == 0.0,
        "",
    );
    check(
        "a refused login < 0.1× an accepted login's CPU",
        o["refusalOverAcceptedLogin"].as_f64(),
        &|v| v < 0.1,
        "×",
    );
    check(
        "a refusal < 0.1× an accepted `/me`'s CPU (the cheapest route)",
        o["refusalOverAccepted"].as_f64(),
        &|v| v < 0.1,
        "×",
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{markdown, proxy_overhead};

    #[test]
    fn a_result_is_a_row_of_the_table_and_each_target_says_whether_it_was_met() {
        let report = json!({
            "machine": {
                "cpu": "Test CPU", "cores": 2, "memoryGib": 4.0, "kernel": "6.1",
                "date": "2025-01-01 00:00 UTC",
            },
            "settings": {"connections": 32, "warmupSeconds": 2.0, "seconds": 10.0, "note": ""},
            "seed": {"users": 10, "posts": 20, "seconds": 1.5},
            "argon2": {},
            "results": [{
                "label": "me", "through": "gateway", "rps": 3500.4, "errors": 0,
                "latencyMs": {"p50": 1.0, "p90": 2.0, "p99": 3.0, "max": 4.0},
                "cpuPercent": {"gateway": 50.0}, "peakRssMib": {"gateway": 12.0},
            }],
        });
        let md = markdown(&report);
        assert!(
            md.starts_with(
                "Machine: 2 cores (Test CPU), 4.0 GiB, Linux 6.1; 2025-01-01 00:00 UTC. \
                 Load generator on the same machine, 32 connections, 10.0 s measured \
                 after 2.0 s warm-up.\n\n| scenario |"
            ),
            "{md}"
        );
        let row = "| me | gateway | 3500 | 1.00 | 2.00 | 3.00 | 4.0 | 0 \
                   | 50.0 / – / – / – / – / – | 12.0 / – / – / – |\n";
        assert!(md.contains(row), "{md}");
        // 50 % of a core at 3,500.4 req/s: 142.8 µs a request.
        assert!(
            md.contains("| me | 143 | – | – | – | – | – | 143 |\n"),
            "{md}"
        );
        assert!(
            md.contains("| `/me` ≥ 3,000 req/s | 3500.40 req/s | yes |\n"),
            "{md}"
        );
        assert!(
            md.contains("| `/me` ≥ 0.75× the no-hop floor (a monolith) | not measured | – |\n"),
            "{md}"
        );
    }

    #[test]
    fn the_proxy_is_measured_against_the_same_request_sent_directly() {
        let row = |label: &str, through: &str, rps: f64, p50: f64, p99: f64| {
            json!({
                "label": label, "through": through, "rps": rps, "errors": 0,
                "latencyMs": {"p50": p50, "p90": p99, "p99": p99, "max": p99},
                "cpuPercent": {"gateway": 40.0, "nats-server": 30.0},
                "peakRssMib": {"gateway": 12.0, "nats-server": 20.0},
            })
        };
        let report = json!({
            "machine": {}, "settings": {}, "seed": {}, "argon2": {},
            "results": [
                row("proxy", "gateway", 4000.0, 7.5, 12.25),
                row("proxy-direct", "nats-monitor", 10000.0, 3.0, 6.0),
            ],
        });
        let overhead = proxy_overhead(&report).expect("both cases ran");
        assert_eq!(overhead["addedMs"], json!({"p50": 4.5, "p99": 6.25}));
        assert_eq!(overhead["throughputRatio"], json!(0.4));
        let md = markdown(&report);
        assert!(
            md.contains(
                "| proxy-direct | nats-monitor | 10000 | 3.00 | 6.00 | 6.00 | 6.0 | 0 \
                 | 40.0 / – / – / 30.0 / – / – | 12.0 / – / – / 20.0 |\n"
            ),
            "{md}"
        );
        assert!(
            md.contains(
                "added latency p50 **+4.50 ms** (7.50 / 3.00 ms), p99 **+6.25 ms** \
                 (12.25 / 6.00 ms); throughput **0.40×** (4000 / 10000 req/s)\n"
            ),
            "{md}"
        );

        let without = json!({"results": [row("proxy", "gateway", 1.0, 1.0, 1.0)]});
        assert!(proxy_overhead(&without).is_none());
    }
}
