//! The middleware that [`crate::app_with`] stacks around the routes, and the
//! builders of the `tower-http` layers it configures: request id, trace
//! span and response line, CORS, compression, panic catcher, time limit.
//! The error envelope is [`crate::error`]'s, the metrics
//! [`crate::metrics`]', the session [`crate::session`]'s.

use std::time::Duration;

use axum::{
    extract::{MatchedPath, Request, State},
    http::{HeaderValue, Method, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use runtime::telemetry;
use shared::headers::TRACEPARENT;
use tower_http::{
    classify::{ServerErrorsAsFailures, SharedClassifier},
    compression::{CompressionLayer, predicate::SizeAbove},
    cors::{AllowOrigin, CorsLayer},
    trace::{DefaultOnRequest, DefaultOnResponse, MakeSpan, OnResponse, TraceLayer},
};
use tracing::{Instrument, Level};

use crate::{REQUEST_ID, error};

/// A client's request id is echoed and logged, so it must be short and plain;
/// anything else is replaced by a fresh one.
pub async fn drop_bad_request_id(mut request: Request, next: Next) -> Response {
    let ok = request.headers().get(REQUEST_ID).is_none_or(|v| {
        let b = v.as_bytes();
        !b.is_empty()
            && b.len() <= 128
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || b"-_.:".contains(c))
    });
    if !ok {
        request.headers_mut().remove(REQUEST_ID);
    }
    next.run(request).await
}

/// Makes the request's span and continues the client's W3C trace (or starts
/// one) in it: the gateway is a new hop of the same trace, and the worker
/// continues it from the NATS header. With OTLP export on, the span is
/// exported as `METHOD /route` with its status. (The trace must be joined
/// before the span is first entered, when the exporter starts it.)
pub async fn trace_context(mut request: Request, next: Next) -> Response {
    let (span, trace) = {
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map_or("unmatched", MatchedPath::as_str);
        let span = request_span(&request, route);
        let incoming = request
            .headers()
            .get(TRACEPARENT)
            .and_then(|v| v.to_str().ok());
        let trace =
            telemetry::continue_trace(&span, incoming, || format!("{} {route}", request.method()));
        (span, trace)
    };
    request.extensions_mut().insert(trace);
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    telemetry::set_exported_attribute(
        &span,
        "http.response.status_code",
        i64::from(status.as_u16()),
    );
    if status.is_server_error() {
        telemetry::mark_failed(&span);
    }
    response
}

/// One span per request: method, route (the matched pattern, not the raw
/// path, so ids do not explode cardinality), request id, and the trace id
/// that [`trace_context`] records; the response event of the `TraceLayer`
/// inside it adds status and latency.
fn request_span(request: &Request, route: &str) -> tracing::Span {
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "http",
        method = %request.method(),
        route,
        request_id = id,
        trace_id = tracing::field::Empty,
        otel.name = tracing::field::Empty,
        otel.kind = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    )
}

/// The `TraceLayer` inside [`trace_context`]'s span: it logs one line per
/// response ([`ResponseLine`]) in that span.
pub fn response_line()
-> TraceLayer<SharedClassifier<ServerErrorsAsFailures>, CurrentSpan, DefaultOnRequest, ResponseLine>
{
    TraceLayer::new_for_http()
        .make_span_with(CurrentSpan)
        .on_response(ResponseLine)
}

/// The span [`trace_context`] made and entered.
#[derive(Debug, Clone, Copy)]
pub struct CurrentSpan;

impl<B> MakeSpan<B> for CurrentSpan {
    fn make_span(&mut self, _: &Request<B>) -> tracing::Span {
        tracing::Span::current()
    }
}

/// The line logged per response: at info level, except admission control's
/// refusals (debug), which a flood would turn into a flood of lines.
#[derive(Debug, Clone, Copy)]
pub struct ResponseLine;

impl<B> OnResponse<B> for ResponseLine {
    fn on_response(self, response: &Response<B>, latency: Duration, span: &tracing::Span) {
        let level = if response.extensions().get::<error::Refused>().is_some() {
            Level::DEBUG
        } else {
            Level::INFO
        };
        DefaultOnResponse::new()
            .level(level)
            .on_response(response, latency, span);
    }
}

/// CORS for the configured origins; none configured means no CORS headers.
pub fn cors(origins: &[String]) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::HeaderName::from_static(REQUEST_ID),
        ])
        .expose_headers([
            header::HeaderName::from_static(REQUEST_ID),
            header::RETRY_AFTER,
        ]);
    if origins.iter().any(|o| o == "*") {
        layer.allow_origin(AllowOrigin::any())
    } else {
        let list: Vec<HeaderValue> = origins.iter().filter_map(|o| o.parse().ok()).collect();
        layer.allow_origin(AllowOrigin::list(list))
    }
}

/// Compresses response bodies of at least `min_bytes`.
pub fn compression(min_bytes: u16) -> CompressionLayer<SizeAbove> {
    CompressionLayer::new().compress_when(SizeAbove::new(min_bytes))
}

/// Answers 504 for a request still running after `limit`. The handler is
/// dropped, and with it any NATS request it awaits; a worker that took one
/// still finishes it.
pub async fn time_limit(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    tokio::time::timeout(limit, next.run(request))
        .await
        .unwrap_or_else(|_| error::ApiError::TimedOut.into_response())
}

/// A handler's panic as a 500: the payload goes to the log, never to the
/// client.
pub fn on_panic(payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic".to_owned());
    error::ApiError::Internal(anyhow::anyhow!("handler panicked: {detail}")).into_response()
}
