//! `report.md`: the machine and settings, the table of every scenario, CPU
//! per request, the figures derived from pairs of scenarios, overload, and
//! the targets met or missed.

use std::fmt::Write as _;

use super::{
    Report, ScenarioResult, proxy_overhead,
    targets::{Outcome, Target},
};

/// The whole Markdown report. Writing to a `String` cannot fail, so the
/// sections ignore `writeln!`'s result.
pub fn render(report: &Report, targets: &[Target]) -> String {
    let mut md = String::new();
    header(&mut md, report);
    results(&mut md, report);
    rounds(&mut md, report);
    cpu_per_request(&mut md, report);
    let _ = writeln!(md, "\nDerived:\n");
    through_nats(&mut md, report);
    browser(&mut md, report);
    proxy(&mut md, report);
    deep_pages(&mut md, report);
    argon2(&mut md, report);
    login_flood(&mut md, report);
    overload(&mut md, report);
    target_table(&mut md, report, targets);
    let seed = &report.seed;
    let _ = writeln!(
        md,
        "* Seeding {} users and {} posts in SQL took {:.1} s",
        seed.users, seed.posts, seed.seconds
    );
    md
}

/// A figure as JSON writes it (`4.0`, not `4`).
fn plain(x: f64) -> String {
    format!("{x:?}")
}

/// One decimal, or a dash for a process not sampled.
fn tenths(x: Option<&f64>) -> String {
    x.map_or("–".to_owned(), |x| format!("{x:.1}"))
}

fn header(md: &mut String, report: &Report) {
    let (m, s) = (&report.machine, &report.settings);
    let commit = report
        .commit
        .as_ref()
        .map_or(String::new(), |c| format!(", commit `{c}`"));
    let _ = writeln!(
        md,
        "Machine: {} cores ({}), {} GiB, Linux {}; {}{commit}. Load generator on the same machine, \
         {} connections, {} s measured after {} s warm-up.\n",
        m.cores,
        m.cpu,
        plain(m.memory_gib),
        m.kernel,
        m.date,
        s.connections,
        plain(s.seconds),
        plain(s.warmup_seconds),
    );
    if !s.note.is_empty() {
        let _ = writeln!(md, "{}\n", s.note);
    }
}

/// One row per scenario. Whose CPU and memory come first: the front that
/// served the requests (nats-server's monitor, sampled as `nats`, has its
/// own column).
fn results(md: &mut String, report: &Report) {
    let _ = writeln!(
        md,
        "| scenario | through | req/s | p50 ms | p90 ms | p99 ms | max ms | errors | CPU % gateway (floor) / auth / user / nats / pg / loadgen | peak RSS MiB gateway (floor) / auth / user / nats |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---|---|");
    for r in &report.results {
        let front = r.through.front_process();
        let (cpu, rss) = (&r.usage.cpu_percent, &r.usage.peak_rss_mib);
        let (l, load) = (&r.load.latency_ms, &r.load);
        let _ = writeln!(
            md,
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.1} | {} | {} / {} / {} / {} / {} / {} | {} / {} / {} / {} |",
            r.label,
            r.through.name(),
            load.rps,
            l.p50,
            l.p90,
            l.p99,
            l.max,
            load.errors,
            tenths(cpu.get(front)),
            tenths(cpu.get("auth-worker")),
            tenths(cpu.get("user-worker")),
            tenths(cpu.get("nats-server")),
            tenths(cpu.get("postgres")),
            tenths(cpu.get("loadgen")),
            tenths(rss.get(front)),
            tenths(rss.get("auth-worker")),
            tenths(rss.get("user-worker")),
            tenths(rss.get("nats-server")),
        );
    }
}

/// With `--rounds`, every round's successful req/s per scenario; the table
/// above shows each scenario's median round.
fn rounds(md: &mut String, report: &Report) {
    let lines: Vec<String> = report
        .results
        .iter()
        .filter_map(|r| {
            let figures: Vec<String> = r
                .rounds_ok_rps
                .as_ref()?
                .iter()
                .map(|v| format!("{v:.0}"))
                .collect();
            Some(format!("* {}: {}", r.label, figures.join(" / ")))
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

/// CPU µs per request per process: what each request costs where, rather
/// than how busy each process was.
fn cpu_per_request(md: &mut String, report: &Report) {
    let _ = writeln!(
        md,
        "\nCPU µs per request:\n\n| scenario | gateway (floor) | auth | user | nats | pg | loadgen | all |\n|---|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in &report.results {
        let cell = |p: &str| r.micros(p).map_or("–".to_owned(), |x| format!("{x:.0}"));
        let all: f64 = r.cpu_micros_per_request.values().sum();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {all:.0} |",
            r.label,
            cell(r.through.front_process()),
            cell("auth-worker"),
            cell("user-worker"),
            cell("nats-server"),
            cell("postgres"),
            cell("loadgen"),
        );
    }
}

fn rps(report: &Report, label: &str) -> Option<f64> {
    report.find(label).map(|r| r.load.rps)
}

fn p99(report: &Report, label: &str) -> Option<f64> {
    report.find(label).map(|r| r.load.latency_ms.p99)
}

/// `/me` through NATS against both floors.
fn through_nats(md: &mut String, report: &Report) {
    if let (Some(hop), Some(floor)) = (rps(report, "me"), rps(report, "me-floor")) {
        let _ = writeln!(
            md,
            "* `/me` through NATS / without NATS: **{:.2}×** the throughput ({hop:.0} / {floor:.0} req/s)",
            hop / floor
        );
    }
    if let (Some(hop), Some(floor)) = (p99(report, "me"), p99(report, "me-floor")) {
        let _ = writeln!(
            md,
            "* `/me` p99 through NATS / without NATS: **{:.2}×** ({hop:.2} / {floor:.2} ms)",
            hop / floor
        );
    }
    // The same code as the stack with only the hop taken away: what the
    // broker itself costs, the workers coalescing caller checks.
    if let (Some(hop), Some(floor)) = (rps(report, "me"), rps(report, "me-floor-coalesced")) {
        let p99s = p99(report, "me").zip(p99(report, "me-floor-coalesced"));
        let _ = writeln!(
            md,
            "* `/me` through NATS / without NATS, both with coalesced caller checks: **{:.2}×** \
             the throughput ({hop:.0} / {floor:.0} req/s){}",
            hop / floor,
            p99s.map_or(String::new(), |(a, b)| format!(", p99 **{:.2}×**", a / b)),
        );
    }
}

/// The browser's routes: the session cookie, the pages.
fn browser(md: &mut String, report: &Report) {
    if let (Some(session), Some(me)) = (rps(report, "session"), rps(report, "me")) {
        let _ = writeln!(
            md,
            "* `GET /api/session` (cookie) / `GET /api/users/me` (bearer): **{:.2}×** the throughput \
             ({session:.0} / {me:.0} req/s): the cookie is opened (AES-GCM) before the same token check \
             and `user.get`",
            session / me
        );
    }
    if let (Some(page), Some(office)) = (rps(report, "login-page"), rps(report, "back-office")) {
        let _ = writeln!(
            md,
            "* pages: `GET /login` {page:.0} req/s (no NATS), `GET /dashboard/` as an ADMIN \
             {office:.0} req/s (the cookie and token checked, then `index.html`)"
        );
    }
}

fn proxy(md: &mut String, report: &Report) {
    let Some(p) = proxy_overhead(&report.results) else {
        return;
    };
    let (t, d) = (&p.through, &p.direct);
    let _ = writeln!(
        md,
        "* the reverse proxy: `GET /proxy/nats/varz` through the gateway as an ADMIN (cookie) / \
         `GET /varz` straight to nats-server's monitor, same run: added latency p50 **{:+.2} ms** \
         ({:.2} / {:.2} ms), p99 **{:+.2} ms** ({:.2} / {:.2} ms); throughput **{:.2}×** \
         ({:.0} / {:.0} req/s)",
        p.added_ms.p50,
        t.p50_ms,
        d.p50_ms,
        p.added_ms.p99,
        t.p99_ms,
        d.p99_ms,
        p.throughput_ratio,
        t.rps,
        d.rps,
    );
}

fn deep_pages(md: &mut String, report: &Report) {
    let p50 = |label: &str| report.find(label).map(|r| r.load.latency_ms.p50);
    for (deep, first, what) in [
        ("users-deep", "users-first", "`GET /api/users`"),
        ("posts-deep", "posts-first", "`GET /api/posts`"),
    ] {
        if let (Some(d), Some(f)) = (p50(deep), p50(first)) {
            let _ = writeln!(
                md,
                "* {what} deep page (about row {}) / first page, p50 latency: **{:.2}×** ({d:.2} / {f:.2} ms)",
                report.seed.users,
                d / f
            );
        }
    }
}

fn argon2(md: &mut String, report: &Report) {
    let a = &report.argon2;
    let _ = writeln!(
        md,
        "* argon2id m={} t={} p={}: {:.1} ms per hash on one core with `argon2-rust` (the auth-worker's engine, {} backend), {:.1} ms with `argon2` 0.5 (RustCrypto); \
         the auth-worker's hasher ({} at once) does **{:.0} hashes/s**, the ceiling for sign-ups and logins",
        a.params.memory_kib,
        a.params.iterations,
        a.params.parallelism,
        a.ms_per_hash.argon2_rust,
        a.backend,
        a.ms_per_hash.argon2,
        a.max_concurrent_hashes,
        a.hasher_per_second,
    );
}

fn login_flood(md: &mut String, report: &Report) {
    let Some(r) = report.find("me-during-login-flood") else {
        return;
    };
    let Some(flood) = &r.flood else {
        return;
    };
    let _ = writeln!(
        md,
        "* During a login flood ({:.0} logins/s, {} errors): `/me` did {:.0} req/s, p99 {:.2} ms, {} errors",
        flood.rps, flood.errors, r.load.rps, r.load.latency_ms.p99, r.load.errors,
    );
}

/// Overload: goodput with 8× the clients, and what a refusal costs.
fn overload(md: &mut String, report: &Report) {
    let labels = [
        "me-c64",
        "me-c512",
        "login",
        "login-c256",
        "me-during-login-flood",
        "me-during-login-flood-c256",
        "login-one-client",
    ];
    let rows: Vec<&ScenarioResult> = labels.iter().filter_map(|l| report.find(l)).collect();
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
        overload_row(md, r);
    }
    let _ = writeln!(md);
    refusal_cost(md, report);
}

fn overload_row(md: &mut String, r: &ScenarioResult) {
    let load = &r.load;
    let addresses = match load.addresses {
        0 => "each".to_owned(),
        n => n.to_string(),
    };
    let (f_ok, f_503, f_429) = match &r.flood {
        Some(flood) => (
            format!("{:.0}", flood.ok_rps),
            format!("{:.0}", flood.status_rate("503")),
            format!("{:.0}", flood.status_rate("429")),
        ),
        None => ("–".to_owned(), "–".to_owned(), "–".to_owned()),
    };
    let _ = writeln!(
        md,
        "| {} | {} | {addresses} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} | {f_ok} | {f_503} | {f_429} | {:.1} |",
        r.label,
        load.connections,
        load.ok_rps,
        load.status_rate("503"),
        load.status_rate("429"),
        load.other_errors(),
        load.latency_ms.p50,
        load.latency_ms.p99,
        r.usage.peak_rss_mib.get("gateway").copied().unwrap_or(0.0),
    );
}

/// A refusal reaches neither NATS nor a worker: its cost is the gateway's
/// CPU per reply where nearly every reply is one (`login-one-client`; the
/// one client's share of logins that go through is counted in too),
/// against the whole stack's for an accepted request and the gateway's
/// cheapest reply (`healthz`: every layer, no NATS).
fn refusal_cost(md: &mut String, report: &Report) {
    let refusal = report
        .find("login-one-client")
        .and_then(|r| r.micros("gateway"));
    let accepted_me = report.find("me").and_then(ScenarioResult::server_micros);
    let accepted_login = report.find("login").and_then(ScenarioResult::server_micros);
    let healthz = report.find("healthz").and_then(|r| r.micros("gateway"));
    if let (Some(r), Some(a)) = (refusal, accepted_me) {
        let login = accepted_login.map_or(String::new(), |l| {
            format!("; an accepted login {l:.0} µs: **{:.4}×**", r / l)
        });
        let _ = writeln!(
            md,
            "* A refusal costs the gateway **{r:.1} µs** of CPU (nothing elsewhere); an accepted \
             `/me` costs the stack {a:.0} µs: **{:.3}×**{login}",
            r / a,
        );
    }
    if let (Some(r), Some(h)) = (refusal, healthz) {
        let _ = writeln!(
            md,
            "* The gateway's cheapest reply, `GET /healthz` (every layer, no NATS), costs it \
             {h:.1} µs: a refusal is **{:.2}×** that",
            r / h
        );
    }
}

/// Every target of `targets.toml` met or missed, then why each missed one
/// matters.
fn target_table(md: &mut String, report: &Report, targets: &[Target]) {
    let _ = writeln!(
        md,
        "\nTargets:\n\n| target | measured | met |\n|---|---:|:---:|"
    );
    let outcomes: Vec<(&Target, Outcome)> = targets.iter().map(|t| (t, t.check(report))).collect();
    for (target, outcome) in &outcomes {
        let mark = match outcome.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "–",
        };
        let value = outcome.value.map_or("not measured".to_owned(), |v| {
            format!("{v:.2}{}", target.unit)
        });
        let _ = writeln!(md, "| {} | {value} | {mark} |", outcome.says);
    }
    let _ = writeln!(md);
    for (target, outcome) in &outcomes {
        if outcome.met == Some(false) {
            let _ = writeln!(md, "* Missed `{}`: {}", target.id, target.why);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::render;
    use crate::{
        report::{
            Machine, Report, Settings, Through, proxy_overhead,
            targets::Target,
            tests::{latency, row},
        },
        run,
        seed::Seeded,
    };

    fn markdown(report: &Report) -> String {
        render(
            report,
            &Target::builtin(&run::labels()).expect("targets.toml is sound"),
        )
    }

    #[test]
    fn a_result_is_a_row_of_the_table_and_each_target_says_whether_it_was_met() {
        let report = Report {
            machine: Machine {
                cpu: "Test CPU".into(),
                cores: 2,
                memory_gib: 4.0,
                kernel: "6.1".into(),
                date: "2025-01-01 00:00 UTC".into(),
            },
            settings: Settings {
                connections: 32,
                warmup_seconds: 2.0,
                seconds: 10.0,
                note: String::new(),
            },
            seed: Seeded {
                users: 10,
                posts: 20,
                seconds: 1.5,
                ..Seeded::default()
            },
            results: vec![row(
                "me",
                Through::Gateway,
                3500.4,
                latency(1.0, 2.0, 3.0, 4.0),
                &[("gateway", 50.0)],
                &[("gateway", 12.0)],
            )],
            ..Report::default()
        };
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
        let row = |label: &str, through: Through, rps: f64, p50: f64, p99: f64| {
            row(
                label,
                through,
                rps,
                latency(p50, p99, p99, p99),
                &[("gateway", 40.0), ("nats-server", 30.0)],
                &[("gateway", 12.0), ("nats-server", 20.0)],
            )
        };
        let report = Report {
            results: vec![
                row("proxy", Through::Gateway, 4000.0, 7.5, 12.25),
                row("proxy-direct", Through::NatsMonitor, 10000.0, 3.0, 6.0),
            ],
            ..Report::default()
        };
        let overhead = proxy_overhead(&report.results).expect("both cases ran");
        let overhead = serde_json::to_value(overhead).expect("serializes");
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

        let without = vec![row("proxy", Through::Gateway, 1.0, 1.0, 1.0)];
        assert!(proxy_overhead(&without).is_none());
    }

    #[test]
    fn a_missed_target_says_why_it_matters() {
        let report = Report {
            results: vec![row(
                "me",
                Through::Gateway,
                10.0,
                latency(1.0, 1.0, 1.0, 1.0),
                &[],
                &[],
            )],
            ..Report::default()
        };
        let md = markdown(&report);
        assert!(
            md.contains("| `/me` ≥ 3,000 req/s | 10.00 req/s | **no** |\n"),
            "{md}"
        );
        assert!(md.contains("* Missed `me-throughput`: "), "{md}");
    }
}
