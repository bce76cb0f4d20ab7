//! The report of a `run`: `report.json` (every figure, the machine and the
//! date) and `report.md` (the tables, the derived ratios, the targets of
//! `bench/targets.toml` met or missed), both rendered from one [`Report`].
//!
//! `report.json` is the [`Report`] serialized: its field names are the
//! structs' in camelCase, and other tools and the README quote them.

pub mod markdown;
pub mod targets;

use std::{collections::BTreeMap, path::Path};

use serde::{Deserialize, Serialize};

use crate::{hash::Argon2Costs, load::LoadResult, seed::Seeded};

use self::targets::Target;

/// Everything a run measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub machine: Machine,
    /// `git describe` of the working tree the run started in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    pub settings: Settings,
    pub seed: Seeded,
    pub argon2: Argon2Costs,
    /// One per scenario run, in the order they ran (the median round of
    /// each with `--rounds`).
    pub results: Vec<ScenarioResult>,
    /// The whole run's wall-clock time, seeding included.
    pub elapsed_seconds: f64,
    /// The reverse proxy's cost, when both of its cases ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<ProxyOverhead>,
}

impl Report {
    /// The result of the scenario labelled `label`, if it ran.
    pub fn find(&self, label: &str) -> Option<&ScenarioResult> {
        self.results.iter().find(|r| r.label == label)
    }
}

/// The machine the run was on; the load generator shares it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Machine {
    /// `/proc/cpuinfo`'s model name.
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub kernel: String,
    /// When the run ended, `YYYY-MM-DD HH:MM UTC`.
    pub date: String,
}

/// How every scenario was driven, unless its case says otherwise.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    pub connections: usize,
    pub warmup_seconds: f64,
    pub seconds: f64,
    /// What the stack's settings were (`run --note`).
    pub note: String,
}

/// What a scenario's load was sent to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Through {
    /// The stack's gateway, which calls the workers over NATS.
    #[default]
    Gateway,
    /// The no-hop floor: the gateway's code with the workers' handlers in
    /// its own process.
    Floor,
    /// nats-server's monitoring port, bypassing the gateway.
    NatsMonitor,
}

impl Through {
    pub fn name(self) -> &'static str {
        match self {
            Through::Gateway => "gateway",
            Through::Floor => "floor",
            Through::NatsMonitor => "nats-monitor",
        }
    }

    /// The sampled process that served the requests' HTTP: the floor, or
    /// the gateway (nats-server's monitor is sampled as `nats-server`
    /// anyway).
    pub fn front_process(self) -> &'static str {
        match self {
            Through::Floor => "floor",
            Through::Gateway | Through::NatsMonitor => "gateway",
        }
    }
}

/// The processes sampled over a measured window, by name (`gateway`,
/// `auth-worker`, `user-worker`, `nats-server`, `floor`, `postgres`,
/// `loadgen`, `flood-loadgen`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// Each process's share of one core, %.
    pub cpu_percent: BTreeMap<String, f64>,
    /// Each process's peak resident memory in the window, MiB (the load
    /// generators' and PostgreSQL's are not sampled).
    pub peak_rss_mib: BTreeMap<String, f64>,
}

/// One scenario's row: the load generator's figures and what each process
/// used meanwhile.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScenarioResult {
    pub label: String,
    pub through: Through,
    #[serde(flatten)]
    pub load: LoadResult,
    #[serde(flatten)]
    pub usage: Usage,
    /// CPU time per request of each process, µs (see [`ScenarioResult::new`]).
    pub cpu_micros_per_request: BTreeMap<String, f64>,
    /// The login flood beside the measured load, when the case has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flood: Option<LoadResult>,
    /// With `--rounds`, every round's `okRps` in the order they ran; this
    /// row is the median round.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rounds_ok_rps: Option<Vec<f64>>,
}

impl ScenarioResult {
    /// The row of a measured load. CPU time per request is each process's
    /// share of a core over the window divided by the requests per second,
    /// to a tenth of a µs.
    pub fn new(label: &str, through: Through, load: LoadResult, usage: Usage) -> Self {
        let cpu_micros_per_request = if load.rps > 0.0 {
            usage
                .cpu_percent
                .iter()
                .map(|(process, percent)| {
                    let micros = percent / 100.0 * 1e6 / load.rps;
                    (process.clone(), (micros * 10.0).round() / 10.0)
                })
                .collect()
        } else {
            BTreeMap::new()
        };
        Self {
            label: label.to_owned(),
            through,
            load,
            usage,
            cpu_micros_per_request,
            flood: None,
            rounds_ok_rps: None,
        }
    }

    /// CPU µs per request of `process`, if it was sampled.
    pub fn micros(&self, process: &str) -> Option<f64> {
        self.cpu_micros_per_request.get(process).copied()
    }

    /// The server side's CPU per request, µs: every process of the stack
    /// but the load generators.
    pub fn server_micros(&self) -> Option<f64> {
        let sum: f64 = self
            .cpu_micros_per_request
            .iter()
            .filter(|(process, _)| !process.contains("loadgen"))
            .map(|(_, micros)| micros)
            .sum();
        (sum > 0.0).then_some(sum)
    }
}

/// The reverse proxy's cost: `proxy` (`GET /proxy/nats/varz` through the
/// gateway) against `proxy-direct` (the same request straight to
/// nats-server's monitor), measured in one run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyOverhead {
    pub through: ProxySide,
    pub direct: ProxySide,
    /// Through minus direct, per percentile, to the µs (the histogram's
    /// unit).
    pub added_ms: AddedMs,
    /// Through / direct req/s, to four places.
    pub throughput_ratio: f64,
}

/// One side of [`ProxyOverhead`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxySide {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AddedMs {
    pub p50: f64,
    pub p99: f64,
}

/// The reverse proxy's cost, when both of its cases ran.
pub fn proxy_overhead(results: &[ScenarioResult]) -> Option<ProxyOverhead> {
    let find = |label: &str| results.iter().find(|r| r.label == label);
    let side = |r: &ScenarioResult| ProxySide {
        rps: r.load.rps,
        p50_ms: r.load.latency_ms.p50,
        p99_ms: r.load.latency_ms.p99,
        errors: r.load.errors,
    };
    let through = side(find("proxy")?);
    let direct = side(find("proxy-direct")?);
    let micros = |ms: f64| (ms * 1000.0).round() / 1000.0;
    Some(ProxyOverhead {
        through,
        direct,
        added_ms: AddedMs {
            p50: micros(through.p50_ms - direct.p50_ms),
            p99: micros(through.p99_ms - direct.p99_ms),
        },
        throughput_ratio: (through.rps / direct.rps * 10_000.0).round() / 10_000.0,
    })
}

/// Writes `report.json` and `report.md` into `out` (made if missing);
/// returns the Markdown.
pub fn write(report: &Report, targets: &[Target], out: &Path) -> anyhow::Result<String> {
    std::fs::create_dir_all(out)?;
    let markdown = markdown::render(report, targets);
    std::fs::write(
        out.join("report.json"),
        serde_json::to_string_pretty(report)?,
    )?;
    std::fs::write(out.join("report.md"), &markdown)?;
    Ok(markdown)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use serde_json::Value;

    use super::{Report, ScenarioResult, Through, Usage, proxy_overhead};
    use crate::load::{Latency, LoadResult};

    pub(crate) fn latency(p50: f64, p90: f64, p99: f64, max: f64) -> Latency {
        Latency {
            p50,
            p90,
            p99,
            max,
            mean: p50,
        }
    }

    /// A scenario's row with the figures the report shows.
    pub(crate) fn row(
        label: &str,
        through: Through,
        rps: f64,
        latency_ms: Latency,
        cpu_percent: &[(&str, f64)],
        peak_rss_mib: &[(&str, f64)],
    ) -> ScenarioResult {
        let map = |pairs: &[(&str, f64)]| -> BTreeMap<String, f64> {
            pairs.iter().map(|(p, v)| ((*p).to_owned(), *v)).collect()
        };
        let load = LoadResult {
            rps,
            ok_rps: rps,
            latency_ms,
            ..LoadResult::default()
        };
        let usage = Usage {
            cpu_percent: map(cpu_percent),
            peak_rss_mib: map(peak_rss_mib),
        };
        ScenarioResult::new(label, through, load, usage)
    }

    /// Every key path of `value`, arrays as `[]`.
    fn paths(value: &Value, prefix: &str, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    let path = format!("{prefix}{key}");
                    out.push(path.clone());
                    paths(value, &format!("{path}."), out);
                }
            }
            Value::Array(items) => {
                for item in items.iter().take(1) {
                    paths(item, &format!("{}[].", prefix.trim_end_matches('.')), out);
                }
            }
            _ => {}
        }
    }

    /// Every field of `report.json`: what other tools and the README may
    /// quote.
    const REPORT_JSON_FIELDS: &[&str] = &[
        "argon2",
        "argon2.backend",
        "argon2.cores",
        "argon2.engine",
        "argon2.hasherPerSecond",
        "argon2.maxConcurrentHashes",
        "argon2.msPerHash",
        "argon2.msPerHash.argon2 0.5",
        "argon2.msPerHash.argon2-rust",
        "argon2.params",
        "argon2.params.iterations",
        "argon2.params.memoryKib",
        "argon2.params.parallelism",
        "commit",
        "elapsedSeconds",
        "machine",
        "machine.cores",
        "machine.cpu",
        "machine.date",
        "machine.kernel",
        "machine.memoryGib",
        "proxy",
        "proxy.addedMs",
        "proxy.addedMs.p50",
        "proxy.addedMs.p99",
        "proxy.direct",
        "proxy.direct.errors",
        "proxy.direct.p50Ms",
        "proxy.direct.p99Ms",
        "proxy.direct.rps",
        "proxy.through",
        "proxy.through.errors",
        "proxy.through.p50Ms",
        "proxy.through.p99Ms",
        "proxy.through.rps",
        "proxy.throughputRatio",
        "results",
        "results[].addresses",
        "results[].connections",
        "results[].cpuMicrosPerRequest",
        "results[].cpuMicrosPerRequest.gateway",
        "results[].cpuPercent",
        "results[].cpuPercent.gateway",
        "results[].errors",
        "results[].flood",
        "results[].flood.addresses",
        "results[].flood.connections",
        "results[].flood.errors",
        "results[].flood.latencyMs",
        "results[].flood.latencyMs.max",
        "results[].flood.latencyMs.mean",
        "results[].flood.latencyMs.p50",
        "results[].flood.latencyMs.p90",
        "results[].flood.latencyMs.p99",
        "results[].flood.loadgenCpuSeconds",
        "results[].flood.okRps",
        "results[].flood.requests",
        "results[].flood.rps",
        "results[].flood.scenario",
        "results[].flood.seconds",
        "results[].flood.statuses",
        "results[].label",
        "results[].latencyMs",
        "results[].latencyMs.max",
        "results[].latencyMs.mean",
        "results[].latencyMs.p50",
        "results[].latencyMs.p90",
        "results[].latencyMs.p99",
        "results[].loadgenCpuSeconds",
        "results[].okRps",
        "results[].peakRssMib",
        "results[].peakRssMib.gateway",
        "results[].requests",
        "results[].roundsOkRps",
        "results[].rps",
        "results[].scenario",
        "results[].seconds",
        "results[].statuses",
        "results[].statuses.200",
        "results[].through",
        "seed",
        "seed.postMax",
        "seed.postMin",
        "seed.posts",
        "seed.seconds",
        "seed.userMax",
        "seed.userMin",
        "seed.users",
        "settings",
        "settings.connections",
        "settings.note",
        "settings.seconds",
        "settings.warmupSeconds",
    ];

    #[test]
    fn report_json_keeps_its_field_names_and_reads_back() {
        let mut me = row(
            "me",
            Through::Gateway,
            100.0,
            latency(1.0, 2.0, 3.0, 4.0),
            &[("gateway", 50.0)],
            &[("gateway", 12.0)],
        );
        me.flood = Some(me.load.clone());
        me.rounds_ok_rps = Some(vec![90.0, 100.0]);
        me.load.statuses.insert("200".to_owned(), 1000);
        let results = vec![
            me,
            row(
                "proxy",
                Through::Gateway,
                1.0,
                latency(1.0, 1.0, 1.0, 1.0),
                &[],
                &[],
            ),
            row(
                "proxy-direct",
                Through::NatsMonitor,
                2.0,
                latency(1.0, 1.0, 1.0, 1.0),
                &[],
                &[],
            ),
        ];
        let report = Report {
            commit: Some("abc1234".to_owned()),
            proxy: proxy_overhead(&results),
            results,
            ..Report::default()
        };
        let json = serde_json::to_value(&report).expect("serializes");
        let mut found = Vec::new();
        paths(&json, "", &mut found);
        found.sort();
        found.dedup();
        let mut expected = REPORT_JSON_FIELDS.to_vec();
        expected.sort_unstable();
        assert_eq!(found, expected);
        assert_eq!(json["results"][2]["through"], "nats-monitor");
        let read: Report = serde_json::from_value(json).expect("reads back");
        assert_eq!(read, report);
    }
}
