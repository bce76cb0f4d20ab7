//! OTLP export, against a collector of the test's own (an HTTP server that
//! decodes what the processes send to `/v1/traces`): one call is one trace
//! across the hop, the worker's span a child of the gateway's, continuing the
//! client's `traceparent`; an unsampled trace is not exported; and each
//! process sends the spans it still holds when it exits on SIGTERM.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    routing::post,
};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse},
    common::v1::{AnyValue, any_value},
    trace::v1::{span::SpanKind, status::StatusCode as SpanStatus},
};
use prost::Message;
use serde_json::json;
use tokio::task::JoinHandle;

use crate::stack::Stack;

/// A span as the collector received it (ids in hex).
#[derive(Debug, Clone)]
struct Exported {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    kind: i32,
    status: i32,
    attributes: BTreeMap<String, String>,
}

type Received = Arc<Mutex<Vec<Exported>>>;

/// An OTLP/HTTP receiver on a free port.
struct Collector {
    endpoint: String,
    spans: Received,
    server: JoinHandle<()>,
}

impl Collector {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let spans = Received::default();
        let app = Router::new()
            .route("/v1/traces", post(receive))
            .with_state(Arc::clone(&spans));
        let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            endpoint,
            spans,
            server,
        }
    }

    fn spans(&self) -> Vec<Exported> {
        self.spans.lock().unwrap().clone()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

/// `POST /v1/traces`: OTLP protobuf in, an empty export response out.
async fn receive(
    State(spans): State<Received>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<([(header::HeaderName, &'static str); 1], Vec<u8>), StatusCode> {
    if headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes()) != Some(b"application/x-protobuf") {
        return Err(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    let request = ExportTraceServiceRequest::decode(body).map_err(|_| StatusCode::BAD_REQUEST)?;
    let mut received = spans.lock().unwrap();
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .map(|kv| text(kv.value.as_ref()))
            .unwrap_or_default();
        for span in resource_spans
            .scope_spans
            .into_iter()
            .flat_map(|scope| scope.spans)
        {
            received.push(Exported {
                service: service.clone(),
                name: span.name,
                trace_id: hex(&span.trace_id),
                span_id: hex(&span.span_id),
                parent_span_id: hex(&span.parent_span_id),
                kind: span.kind,
                status: span.status.map_or(0, |s| s.code),
                attributes: span
                    .attributes
                    .iter()
                    .map(|kv| (kv.key.clone(), text(kv.value.as_ref())))
                    .collect(),
            });
        }
    }
    Ok((
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        ExportTraceServiceResponse::default().encode_to_vec(),
    ))
}

/// The one span of `service` in `trace`.
fn span_of<'a>(spans: &'a [Exported], service: &str, trace: &str) -> &'a Exported {
    let found: Vec<&Exported> = spans
        .iter()
        .filter(|s| s.service == service && s.trace_id == trace)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one {service} span in trace {trace}; all spans: {spans:#?}"
    );
    found[0]
}

#[tokio::test]
async fn spans_are_exported_over_otlp_as_one_trace_across_the_hop() {
    let collector = Collector::start().await;
    let endpoint = collector.endpoint.as_str();
    let mut stack = Stack::start_with(&[("GATEWAY_LOG__OTLP_ENDPOINT", endpoint)]).await;
    let mut worker = stack.worker_with(
        "auth-worker",
        &[("AUTH_WORKER_LOG__OTLP_ENDPOINT", endpoint)],
    );
    stack.wait_for_copies("auth-worker", 1).await;

    let client_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    let unsampled_trace = "5bf92f3577b34da6a3ce929d0e0e4736";
    let calls = [
        (
            format!("00-{client_trace}-{client_span}-01"),
            "otlp-sampled",
            "ada@example.com",
        ),
        (
            format!("00-{unsampled_trace}-{client_span}-00"),
            "otlp-unsampled",
            "bob@example.com",
        ),
    ];
    for (traceparent, request_id, email) in &calls {
        let signup = stack
            .http
            .post(stack.url("/api/auth/signup"))
            .header("traceparent", traceparent)
            .header("x-request-id", *request_id)
            .json(&json!({"email": email, "password": "correct horse battery"}))
            .send()
            .await
            .unwrap();
        assert_eq!(signup.status(), 201);
    }
    // No traceparent: the gateway starts the trace. A wrong password is the
    // worker's 401, not a failure of the span.
    let login = stack
        .http
        .post(stack.url("/api/auth/login"))
        .header("x-request-id", "otlp-started")
        .json(&json!({"email": "ada@example.com", "password": "not the password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 401);

    // The batch exporter waits 5 s between sends; SIGTERM makes each process
    // send what it holds before it exits.
    assert!(stack.gateway.terminate().await.success());
    assert!(worker.terminate().await.success());
    let spans = collector.spans();

    // The client's trace: client span → gateway span → worker span.
    let gateway = span_of(&spans, "gateway", client_trace);
    assert_eq!(gateway.parent_span_id, client_span);
    assert_eq!(gateway.name, "POST /api/auth/signup");
    assert_eq!(gateway.kind, SpanKind::Server as i32);
    assert_eq!(gateway.attributes["request_id"], "otlp-sampled");
    assert_eq!(gateway.attributes["http.response.status_code"], "201");
    assert_ne!(gateway.status, SpanStatus::Error as i32);
    let rpc = span_of(&spans, "auth-worker", client_trace);
    assert_eq!(
        rpc.parent_span_id, gateway.span_id,
        "the worker continues the gateway's span"
    );
    assert_eq!(rpc.name, "auth.create_user");
    assert_eq!(rpc.kind, SpanKind::Server as i32);
    assert_eq!(rpc.attributes["request_id"], "otlp-sampled");
    assert_eq!(rpc.attributes["trace_id"], client_trace);

    // The client said not to sample: nothing of that trace leaves.
    assert!(
        !spans.iter().any(|s| s.trace_id == unsampled_trace),
        "an unsampled trace was exported: {spans:#?}"
    );

    // A trace the gateway started: a root span, and the worker's under it.
    let started = spans
        .iter()
        .find(|s| {
            s.service == "gateway"
                && s.attributes.get("request_id").map(String::as_str) == Some("otlp-started")
        })
        .unwrap_or_else(|| panic!("no gateway span for the login: {spans:#?}"));
    assert_eq!(
        started.parent_span_id, "",
        "a new trace starts at the gateway"
    );
    assert_eq!(started.name, "POST /api/auth/login");
    let rpc = span_of(&spans, "auth-worker", &started.trace_id);
    assert_eq!(rpc.parent_span_id, started.span_id);
    assert_eq!(rpc.name, "auth.login");
    assert_eq!(rpc.attributes["status_code"], "401");
}
