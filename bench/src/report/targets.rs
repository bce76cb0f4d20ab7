//! The targets a run is checked against, from `bench/targets.toml` (compiled
//! in; the file's header describes its keys). Each bounds one scenario's
//! figure, the ratio of two scenarios' figures, or a process's peak memory.

use std::collections::BTreeSet;

use anyhow::{Context, bail};
use serde::Deserialize;

use super::{Report, ScenarioResult};

const FILE: &str = include_str!("../../targets.toml");

/// One target of `targets.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawTarget")]
pub struct Target {
    pub id: String,
    /// The report's wording.
    pub says: String,
    /// What the bound protects.
    pub why: String,
    pub measure: Measure,
    pub bound: Bound,
    /// Written after the measured figure.
    pub unit: String,
}

/// What a target bounds.
#[derive(Debug, Clone, PartialEq)]
pub enum Measure {
    /// One scenario's figure.
    One(Figure),
    /// One figure over another.
    Ratio { of: Figure, over: Figure },
    /// A process's largest peak RSS over the scenarios run with at most
    /// `up_to_connections` (their floods too), in MiB.
    PeakRss {
        process: String,
        up_to_connections: Option<usize>,
        /// The bound grows by the auth-worker's hashing memory: its
        /// concurrent hashes × argon2id's `m`.
        plus_hashing_memory: bool,
    },
}

/// `<scenario>.<quantity>`, e.g. `me.rps`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Figure {
    pub scenario: String,
    pub quantity: Quantity,
}

/// A figure of one scenario's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantity {
    Rps,
    /// Replies with the expected status per second.
    OkRps,
    P50Ms,
    P99Ms,
    Errors,
    /// The gateway's CPU per reply, µs.
    GatewayCpuUs,
    /// The CPU per reply of every process but the load generators, µs.
    ServerCpuUs,
}

/// The bound a measured figure must keep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    AtLeast(f64),
    AtMost(f64),
    Below(f64),
    Equals(f64),
}

/// A target checked against a report.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The target's wording, with its bound when the report decides it.
    pub says: String,
    /// `None`: a scenario it needs did not run.
    pub value: Option<f64>,
    pub met: Option<bool>,
}

impl Target {
    /// The targets of `bench/targets.toml`, in its order, each checked to
    /// read only scenarios among `scenarios` (those `run` can run): a
    /// renamed scenario would otherwise leave its target unmeasured for
    /// ever.
    pub fn builtin(scenarios: &[&str]) -> anyhow::Result<Vec<Target>> {
        let targets = parse(FILE).context("bench/targets.toml")?;
        for target in &targets {
            if let Some(unknown) = target.scenarios().find(|s| !scenarios.contains(s)) {
                bail!(
                    "bench/targets.toml: target {:?} reads scenario {unknown:?}, which `run` does not run",
                    target.id
                );
            }
        }
        Ok(targets)
    }

    /// Whether `report` meets this target, and by what figure.
    pub fn check(&self, report: &Report) -> Outcome {
        let (says, value, bound) = match &self.measure {
            Measure::One(figure) => (self.says.clone(), figure.value(report), self.bound),
            Measure::Ratio { of, over } => {
                let ratio = of
                    .value(report)
                    .zip(over.value(report))
                    .filter(|(_, over)| *over > 0.0)
                    .map(|(of, over)| of / over);
                (self.says.clone(), ratio, self.bound)
            }
            Measure::PeakRss {
                process,
                up_to_connections,
                plus_hashing_memory,
            } => {
                let peak = peak_rss(report, process, *up_to_connections);
                if *plus_hashing_memory {
                    let (says, bound) = self.plus_hashing_memory(report);
                    (says, peak, bound)
                } else {
                    (self.says.clone(), peak, self.bound)
                }
            }
        };
        Outcome {
            says,
            value,
            met: value.map(|v| bound.holds(v)),
        }
    }

    /// The bound raised by the auth-worker's hashing memory, and the
    /// wording that says by how much.
    fn plus_hashing_memory(&self, report: &Report) -> (String, Bound) {
        let hash_mib = f64::from(report.argon2.params.memory_kib) / 1024.0;
        let slots = report.argon2.max_concurrent_hashes as f64;
        let bound = self.bound.raised_by(hash_mib * slots);
        let says = format!(
            "{} + {slots:.0} hashes × {hash_mib:.0} MiB = {:.0} MiB",
            self.says,
            bound.limit()
        );
        (says, bound)
    }

    /// The scenarios whose results it reads (none: every scenario's).
    fn scenarios(&self) -> impl Iterator<Item = &str> {
        let (of, over) = match &self.measure {
            Measure::One(figure) => (Some(figure), None),
            Measure::Ratio { of, over } => (Some(of), Some(over)),
            Measure::PeakRss { .. } => (None, None),
        };
        of.into_iter().chain(over).map(|f| f.scenario.as_str())
    }
}

impl Figure {
    fn value(&self, report: &Report) -> Option<f64> {
        self.quantity.of(report.find(&self.scenario)?)
    }
}

impl TryFrom<String> for Figure {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let (scenario, quantity) = text
            .split_once('.')
            .ok_or_else(|| format!("{text:?} is not <scenario>.<figure>"))?;
        Ok(Figure {
            scenario: scenario.to_owned(),
            quantity: Quantity::parse(quantity)?,
        })
    }
}

impl Quantity {
    const NAMES: [(&'static str, Quantity); 7] = [
        ("rps", Quantity::Rps),
        ("ok-rps", Quantity::OkRps),
        ("p50-ms", Quantity::P50Ms),
        ("p99-ms", Quantity::P99Ms),
        ("errors", Quantity::Errors),
        ("gateway-cpu-us", Quantity::GatewayCpuUs),
        ("server-cpu-us", Quantity::ServerCpuUs),
    ];

    fn parse(name: &str) -> Result<Self, String> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, q)| *q)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::NAMES.iter().map(|(n, _)| *n).collect();
                format!("no figure {name:?} (one of {})", names.join(", "))
            })
    }

    fn of(self, r: &ScenarioResult) -> Option<f64> {
        match self {
            Quantity::Rps => Some(r.load.rps),
            Quantity::OkRps => Some(r.load.ok_rps),
            Quantity::P50Ms => Some(r.load.latency_ms.p50),
            Quantity::P99Ms => Some(r.load.latency_ms.p99),
            Quantity::Errors => Some(r.load.errors as f64),
            Quantity::GatewayCpuUs => r.micros("gateway"),
            Quantity::ServerCpuUs => r.server_micros(),
        }
    }
}

impl Bound {
    fn holds(self, value: f64) -> bool {
        match self {
            Bound::AtLeast(b) => value >= b,
            Bound::AtMost(b) => value <= b,
            Bound::Below(b) => value < b,
            Bound::Equals(b) => value == b,
        }
    }

    fn limit(self) -> f64 {
        match self {
            Bound::AtLeast(b) | Bound::AtMost(b) | Bound::Below(b) | Bound::Equals(b) => b,
        }
    }

    fn raised_by(self, extra: f64) -> Self {
        match self {
            Bound::AtLeast(b) => Bound::AtLeast(b + extra),
            Bound::AtMost(b) => Bound::AtMost(b + extra),
            Bound::Below(b) => Bound::Below(b + extra),
            Bound::Equals(b) => Bound::Equals(b + extra),
        }
    }
}

/// The largest peak RSS of `process` over the scenarios run with at most
/// `up_to` connections, floods included.
fn peak_rss(report: &Report, process: &str, up_to: Option<usize>) -> Option<f64> {
    let within = |connections: usize| up_to.is_none_or(|max| connections <= max);
    report
        .results
        .iter()
        .filter(|r| within(r.load.connections))
        .filter(|r| r.flood.as_ref().is_none_or(|f| within(f.connections)))
        .filter_map(|r| r.usage.peak_rss_mib.get(process).copied())
        .reduce(f64::max)
}

/// `targets.toml` as written, before its targets are checked for sense.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    target: Vec<Target>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawTarget {
    id: String,
    says: String,
    why: String,
    of: Option<Figure>,
    over: Option<Figure>,
    peak_rss: Option<String>,
    up_to_connections: Option<usize>,
    #[serde(default)]
    plus_hashing_memory: bool,
    at_least: Option<f64>,
    at_most: Option<f64>,
    below: Option<f64>,
    equals: Option<f64>,
    unit: Option<String>,
}

impl TryFrom<RawTarget> for Target {
    type Error = String;

    fn try_from(raw: RawTarget) -> Result<Self, String> {
        let why = |problem: &str| format!("target {:?}: {problem}", raw.id);
        let measure = match (raw.of, raw.over, raw.peak_rss) {
            (Some(of), None, None) => Measure::One(of),
            (Some(of), Some(over), None) => Measure::Ratio { of, over },
            (None, None, Some(process)) => Measure::PeakRss {
                process,
                up_to_connections: raw.up_to_connections,
                plus_hashing_memory: raw.plus_hashing_memory,
            },
            _ => return Err(why("needs `of`, `of` and `over`, or `peak-rss`")),
        };
        if !matches!(measure, Measure::PeakRss { .. })
            && (raw.up_to_connections.is_some() || raw.plus_hashing_memory)
        {
            return Err(why(
                "`up-to-connections` and `plus-hashing-memory` go with `peak-rss`",
            ));
        }
        let bound = match (raw.at_least, raw.at_most, raw.below, raw.equals) {
            (Some(b), None, None, None) => Bound::AtLeast(b),
            (None, Some(b), None, None) => Bound::AtMost(b),
            (None, None, Some(b), None) => Bound::Below(b),
            (None, None, None, Some(b)) => Bound::Equals(b),
            _ => return Err(why("needs one of `at-least`, `at-most`, `below`, `equals`")),
        };
        let unit = raw.unit.unwrap_or_else(|| match measure {
            Measure::Ratio { .. } => "×".to_owned(),
            _ => String::new(),
        });
        Ok(Target {
            id: raw.id,
            says: raw.says,
            why: raw.why,
            measure,
            bound,
            unit,
        })
    }
}

fn parse(text: &str) -> anyhow::Result<Vec<Target>> {
    let targets = toml::from_str::<RawFile>(text)?.target;
    let mut ids = BTreeSet::new();
    for target in &targets {
        if !ids.insert(&target.id) {
            bail!("two targets have the id {:?}", target.id);
        }
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::{Bound, Measure, Target, parse};
    use crate::run;

    #[test]
    fn every_target_names_a_scenario_the_benchmark_runs() {
        let targets = Target::builtin(&run::labels()).expect("targets.toml is sound");
        for target in targets {
            assert!(!target.why.trim().is_empty(), "{} says no why", target.id);
        }
    }

    #[test]
    fn a_target_reading_a_scenario_that_is_not_run_is_refused() {
        let error = Target::builtin(&["me"]).expect_err("me-floor is not among them");
        assert!(
            format!("{error:#}").contains("reads scenario \"me-floor\""),
            "{error:#}"
        );
    }

    #[test]
    fn a_ratio_target_is_measured_in_times_unless_it_says_otherwise() {
        let targets = parse(
            r#"
            [[target]]
            id = "a"
            says = "me ≥ 0.5× the floor"
            why = "because"
            of = "me.rps"
            over = "me-floor.rps"
            at-least = 0.5
            "#,
        )
        .expect("parses");
        assert_eq!(targets[0].unit, "×");
        assert_eq!(targets[0].bound, Bound::AtLeast(0.5));
        assert!(matches!(targets[0].measure, Measure::Ratio { .. }));
    }

    /// One valid target, `a`, of `me.rps`.
    const ONE: &str =
        "[[target]]\nid = \"a\"\nsays = \"x\"\nwhy = \"y\"\nof = \"me.rps\"\nat-least = 1\n";

    #[test]
    fn a_target_with_two_bounds_or_an_unknown_figure_is_refused() {
        let two_bounds = format!("{ONE}at-most = 2\n");
        let error = format!("{:#}", parse(&two_bounds).expect_err("two bounds"));
        assert!(error.contains("needs one of"), "{error}");
        let unknown = two_bounds
            .replace("me.rps", "me.speed")
            .replace("at-most = 2", "");
        let error = format!("{:#}", parse(&unknown).expect_err("unknown figure"));
        assert!(error.contains("no figure \"speed\""), "{error}");
    }

    #[test]
    fn two_targets_may_not_share_an_id() {
        let error = format!("{:#}", parse(&ONE.repeat(2)).expect_err("same id"));
        assert!(error.contains("two targets have the id \"a\""), "{error}");
    }
}
