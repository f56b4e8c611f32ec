//! Spans exported with the real opentelemetry-otlp 0.32 exporter to a collector running
//! `otel-collector.yaml` arrive in a Jaeger running `jaeger/config.yaml` (two instances of the
//! Jaeger binary, every port moved to a free loopback port through the configs' env vars).

mod common;

use std::collections::BTreeSet;

use common::{emit_three_span_trace, provider, shutdown, ARRIVAL_TIMEOUT, SERVICE};
use jaeger_harness::{jaeger_for_tests, Collector, Jaeger};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use trace_view::TraceId;

async fn check_trace_arrived(jaeger: &Jaeger, trace_id: TraceId, root_name: &str) {
    let query = jaeger.query().expect("query client");
    let trace = query
        .wait_for_trace(trace_id, 3, ARRIVAL_TIMEOUT)
        .await
        .expect("trace did not arrive in Jaeger");
    let spans = &trace.spans;
    assert_eq!(spans.len(), 3, "spans: {spans:#?}");
    // Every span's own traceID is checked against the trace's when parsed.
    assert_eq!(trace.trace_id, trace_id);
    assert!(spans.iter().all(|s| s.service == SERVICE), "{spans:#?}");

    let root = spans
        .iter()
        .find(|s| s.parent_id.is_none())
        .expect("a root span");
    assert_eq!(root.name, root_name);
    let children: BTreeSet<&str> = spans
        .iter()
        .filter(|s| s.parent_id.as_ref() == Some(&root.span_id))
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(
        children,
        BTreeSet::from(["GET user-service", "GET order-service"])
    );

    let services = query.services().await.expect("services");
    assert!(
        services.iter().any(|s| s == SERVICE),
        "services: {services:?}"
    );
    // enable_tracing: false — Jaeger does not trace its own query API.
    assert!(
        !services.iter().any(|s| s == "jaeger"),
        "Jaeger traced itself: {services:?}"
    );
    let operations = query.operations(SERVICE).await.expect("operations");
    assert!(operations.iter().any(|o| o == root_name), "{operations:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_export_through_the_collector_reaches_jaeger() {
    let Some(bin) = jaeger_for_tests() else {
        return;
    };
    let jaeger = Jaeger::start(&bin).expect("start jaeger");
    let collector = Collector::start(&bin, &jaeger).expect("start collector");

    let exporter = SpanExporter::builder()
        .with_tonic()
        .with_endpoint(collector.otlp_grpc_endpoint())
        .build()
        .expect("grpc exporter");
    let (provider, tracer) = provider(exporter);
    let trace_id = emit_three_span_trace(&tracer, "GET /grpc-test");
    shutdown(provider).await;

    check_trace_arrived(&jaeger, trace_id, "GET /grpc-test").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protobuf_export_through_the_collector_reaches_jaeger() {
    let Some(bin) = jaeger_for_tests() else {
        return;
    };
    let jaeger = Jaeger::start(&bin).expect("start jaeger");
    let collector = Collector::start(&bin, &jaeger).expect("start collector");

    // `.with_endpoint()` is used verbatim: the signal path has to be included.
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/traces", collector.otlp_http_endpoint()))
        .build()
        .expect("http exporter");
    let (provider, tracer) = provider(exporter);
    let trace_id = emit_three_span_trace(&tracer, "GET /http-test");
    shutdown(provider).await;

    check_trace_arrived(&jaeger, trace_id, "GET /http-test").await;
}

/// An unknown trace id is `None`, not an error, and ids are compared as integers.
#[tokio::test]
async fn unknown_trace_is_none() {
    let Some(bin) = jaeger_for_tests() else {
        return;
    };
    let jaeger = Jaeger::start(&bin).expect("start jaeger");
    let query = jaeger.query().expect("query client");
    assert_eq!(
        query.find_trace(TraceId(0xdead_beef)).await.expect("query"),
        None
    );
    assert_eq!(
        query.services().await.expect("services"),
        Vec::<String>::new()
    );
}
