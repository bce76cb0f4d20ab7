//! Logging and tracing set-up shared by every binary: human-readable logs by
//! default, JSON on request, filtered by `RUST_LOG` or the configured level;
//! spans exported over OTLP when an endpoint is configured.
//!
//! One W3C trace runs through a call: the gateway continues the client's
//! `traceparent` (or starts a trace) and sends its own hop in the NATS
//! headers, and the worker continues that, both through [`continue_trace`].
//! With OTLP export on, the ids are the exported spans' own, so in the
//! collector the worker's `rpc` span is a child of the gateway's `http` span;
//! without export they are generated here. Either way the log lines of both
//! processes carry the same `trace_id`.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use opentelemetry::{
    KeyValue,
    trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider,
    },
};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::{
    Resource,
    trace::{Sampler, SdkTracerProvider},
};
use serde::Deserialize;
use tracing::level_filters::LevelFilter;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{EnvFilter, Layer, filter::Targets, fmt, prelude::*};

use shared::headers::TraceParent;

/// `[log]` in every process's settings: the defaults, and what each key
/// means, are in `config/log.toml`.
#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    /// A `RUST_LOG`-style filter; `RUST_LOG` wins.
    pub level: String,
    pub format: LogFormat,
    /// OTLP/HTTP base URL for span export; empty: the standard
    /// `OTEL_EXPORTER_OTLP_*` variables decide.
    pub otlp_endpoint: String,
    /// The share of new traces exported, from 0 to 1.
    pub otlp_sample_ratio: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Where spans go: `None` for nowhere, `Some(None)` for where the standard
/// `OTEL_EXPORTER_OTLP_*` variables say, `Some(Some(url))` for `url`.
fn export_target(settings: &LogSettings) -> anyhow::Result<Option<Option<String>>> {
    let endpoint = settings.otlp_endpoint.trim().trim_end_matches('/');
    if endpoint.is_empty() {
        let standard = [
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ]
        .iter()
        .any(|name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty()));
        return Ok(standard.then_some(None));
    }
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
        anyhow::bail!(
            "log.otlp_endpoint {endpoint:?} must be an http:// or https:// URL \
             (OTLP over HTTP, usually port 4318)"
        );
    }
    let url = if endpoint.ends_with("/v1/traces") {
        endpoint.to_owned()
    } else {
        format!("{endpoint}/v1/traces")
    };
    Ok(Some(Some(url)))
}

/// Keeps span export running; dropping it sends the spans still queued.
/// Hold it in `main` until the process is done.
#[must_use = "dropping the guard stops span export"]
#[derive(Debug)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            tracing::warn!(error = %e, "could not send the last spans to the OTLP endpoint");
        }
    }
}

/// What the exported spans leave out: the exporter's own HTTP client and
/// the SDK, which would otherwise trace their own exports.
fn export_filter() -> Targets {
    Targets::new()
        .with_default(LevelFilter::INFO)
        .with_targets(
            [
                "opentelemetry",
                "opentelemetry_sdk",
                "opentelemetry_otlp",
                "opentelemetry_http",
            ]
            .map(|t| (t, LevelFilter::OFF)),
        )
        .with_targets(
            ["hyper", "hyper_util", "reqwest", "h2", "tower"].map(|t| (t, LevelFilter::OFF)),
        )
}

/// Installs the global subscriber (and the span exporter, when configured)
/// for the process `service`. Call once, from `main`, and keep the guard.
pub fn init(settings: &LogSettings, service: &'static str) -> anyhow::Result<Telemetry> {
    let ratio = settings.otlp_sample_ratio;
    if !(0.0..=1.0).contains(&ratio) {
        anyhow::bail!("log.otlp_sample_ratio is {ratio}; it must be between 0 and 1");
    }
    let provider = match export_target(settings)? {
        None => None,
        Some(url) => {
            let mut exporter = opentelemetry_otlp::SpanExporter::builder().with_http();
            if let Some(url) = &url {
                exporter = exporter.with_endpoint(url.clone());
            }
            let exporter = exporter
                .build()
                .with_context(|| format!("cannot export spans to {url:?}"))?;
            let resource = Resource::builder()
                .with_service_name(service)
                .with_attributes([
                    KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
                    KeyValue::new("service.instance.id", uuid::Uuid::new_v4().to_string()),
                ])
                .build();
            Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                        ratio,
                    ))))
                    .with_resource(resource)
                    .build(),
            )
        }
    };
    let export = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(service))
            .with_filter(export_filter())
    });

    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(settings.level.clone()));
    let logs = match settings.format {
        LogFormat::Json => fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_filter(filter)
            .boxed(),
        LogFormat::Text => fmt::layer().with_target(false).with_filter(filter).boxed(),
    };
    tracing_subscriber::registry()
        .with(logs)
        .with(export)
        .init();
    if provider.is_some() {
        EXPORTING.store(true, Ordering::Relaxed);
        tracing::info!(service, ratio, "exporting spans over OTLP");
    }
    Ok(Telemetry { provider })
}

/// Set once spans are exported: only then do spans get the `otel.*` fields
/// that name them for the collector (so plain logs do not carry them).
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether this process exports spans.
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// Makes `span` the next hop of the trace in `incoming` (a `traceparent`
/// header), or the first hop of a new trace when it is missing or invalid,
/// records the trace id in the span's `trace_id` field, and returns this
/// hop's context, to send on.
///
/// With OTLP export on, the span is exported as a server span called
/// `name()` (it must declare `otel.name` and `otel.kind` as `Empty` fields,
/// and `otel.status_code` for [`mark_failed`]), and the
/// context is its own, so the next hop becomes its child; otherwise the
/// context is generated here.
pub fn continue_trace(
    span: &tracing::Span,
    incoming: Option<&str>,
    name: impl FnOnce() -> String,
) -> TraceParent {
    let parent = incoming.and_then(TraceParent::parse);
    let exported = exporting()
        .then(|| {
            span.record("otel.name", name().as_str());
            span.record("otel.kind", "server");
            exported_hop(span, parent)
        })
        .flatten();
    let hop = exported.unwrap_or_else(|| TraceParent::child_of(incoming));
    span.record("trace_id", hop.trace_id_hex().as_str());
    hop
}

/// The span's exported context, made a child of `parent`; `None` when the
/// span is not exported (no exporter, or filtered out).
fn exported_hop(span: &tracing::Span, parent: Option<TraceParent>) -> Option<TraceParent> {
    if let Some(parent) = parent {
        let remote = SpanContext::new(
            TraceId::from_bytes(parent.trace_id),
            SpanId::from_bytes(parent.parent_id),
            TraceFlags::new(parent.flags),
            true,
            TraceState::default(),
        );
        span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote))
            .ok()?;
    }
    let context = span.context();
    let own = context.span().span_context().clone();
    own.is_valid().then(|| TraceParent {
        trace_id: own.trace_id().to_bytes(),
        parent_id: own.span_id().to_bytes(),
        flags: own.trace_flags().to_u8(),
    })
}

/// Marks `span`'s exported span as failed (a 5xx answer).
pub fn mark_failed(span: &tracing::Span) {
    if exporting() {
        span.record("otel.status_code", "error");
    }
}

/// Sets an attribute on `span`'s exported span only (not in the logs).
pub fn set_exported_attribute(span: &tracing::Span, key: &'static str, value: i64) {
    if exporting() {
        span.set_attribute(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_endpoint(endpoint: &str) -> LogSettings {
        LogSettings {
            level: "info".into(),
            format: LogFormat::Text,
            otlp_endpoint: endpoint.into(),
            otlp_sample_ratio: 1.0,
        }
    }

    #[test]
    fn the_endpoint_is_a_base_url_and_gets_the_traces_path() {
        for (endpoint, url) in [
            ("http://collector:4318", "http://collector:4318/v1/traces"),
            ("http://collector:4318/", "http://collector:4318/v1/traces"),
            (
                " https://otel.example.com ",
                "https://otel.example.com/v1/traces",
            ),
            (
                "http://collector:4318/v1/traces",
                "http://collector:4318/v1/traces",
            ),
        ] {
            assert_eq!(
                export_target(&with_endpoint(endpoint)).unwrap(),
                Some(Some(url.to_owned())),
                "{endpoint}"
            );
        }
    }

    #[test]
    fn an_endpoint_that_is_not_http_is_refused_with_the_reason() {
        for endpoint in ["grpc://collector:4317", "collector:4318", "localhost"] {
            let err = export_target(&with_endpoint(endpoint)).unwrap_err();
            assert!(err.to_string().contains("http://"), "{endpoint}: {err}");
        }
    }
}
