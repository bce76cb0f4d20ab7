//! Prometheus metrics: HTTP requests by route and status with latency
//! histograms (this module's middleware), NATS requests by subject and
//! outcome (recorded by `runtime::rpc::Rpc`), and process metrics (CPU,
//! memory, open files), rendered at `GET /metrics`.

use std::{
    collections::HashSet,
    sync::{OnceLock, PoisonError, RwLock},
    time::Instant,
};

use axum::{
    extract::{MatchedPath, Request},
    http::Method,
    middleware::Next,
    response::Response,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets, in seconds: 0.5 ms to 10 s.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process-wide recorder, installed on first use. (The `metrics` facade
/// has one global recorder; several gateways in one test process share it.)
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
            .and_then(|b| b.install_recorder());
        match recorder {
            Ok(handle) => {
                metrics_process::Collector::default().describe();
                handle
            }
            // Another recorder is installed (by an embedding program): render
            // an empty registry rather than fail.
            Err(e) => {
                tracing::warn!(error = %e, "metrics recorder not installed");
                PrometheusBuilder::new().build_recorder().handle()
            }
        }
    })
}

/// How often [`upkeep`] folds the recorded latencies into the histograms.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Folds the latencies recorded since the last time into the histograms,
/// every few seconds, until aborted. The recorder keeps every sample until
/// they are folded, and otherwise only a scrape of `/metrics` folds them:
/// a gateway nobody scraped would grow with every request. The exporter's
/// own `install()` runs the same upkeep, but it also starts an HTTP
/// listener of its own.
pub fn upkeep() -> tokio::task::JoinHandle<()> {
    tokio::spawn(async {
        let mut every = tokio::time::interval(UPKEEP_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            handle().run_upkeep();
        }
    })
}

/// The text exposition, with fresh process figures.
pub fn render() -> String {
    let handle = handle();
    metrics_process::Collector::default().collect();
    handle.render()
}

/// Counts every request by method, matched route (never the raw path, so ids
/// do not explode the label set) and status, and records its latency.
///
/// Every label value is a `&'static str` (no allocation per request) from a
/// bounded set: the standard methods (any other is `other`: the method is
/// the client's to choose, and each new one would be a new series), the
/// router's routes, and the status codes.
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| intern(p.as_str()));
    let response = next.run(request).await;
    let status = intern(response.status().as_str());
    metrics::counter!("http_requests_total", "method" => method, "route" => route, "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// A `'static` copy of a label value from a bounded set (the router's
/// matched routes, the three-digit status codes), made once per value.
fn intern(value: &str) -> &'static str {
    static SEEN: OnceLock<RwLock<HashSet<&'static str>>> = OnceLock::new();
    let seen = SEEN.get_or_init(Default::default);
    if let Some(known) = seen
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(value)
    {
        return known;
    }
    let mut seen = seen.write().unwrap_or_else(PoisonError::into_inner);
    if let Some(known) = seen.get(value) {
        return known;
    }
    let leaked: &'static str = Box::leak(value.to_owned().into_boxed_str());
    seen.insert(leaked);
    leaked
}
