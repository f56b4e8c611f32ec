//! End to end with the real OpenTelemetry Rust SDK and OTLP exporter, over every transport a
//! latency-lab service may be configured with: what the services will really send.

use std::time::Duration;

use opentelemetry::trace::{
    Span as _, SpanKind as OtelKind, Status, TraceContextExt, Tracer, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{
    Compression, Protocol, SpanExporter, WithExportConfig, WithHttpConfig, WithTonicConfig,
};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use otlp_receiver::{
    start, AttrValue, CollectedSpan, ReceiverConfig, RunningReceiver, SpanKind, StatusCode,
    TRACES_PATH,
};

#[derive(Debug, Clone, Copy)]
enum Transport {
    Grpc,
    GrpcGzip,
    HttpProtobuf,
    HttpProtobufGzip,
}

fn exporter(transport: Transport, receiver: &RunningReceiver) -> SpanExporter {
    let http_url = format!("{}{}", receiver.http_endpoint(), TRACES_PATH);
    let built = match transport {
        Transport::Grpc => SpanExporter::builder()
            .with_tonic()
            .with_endpoint(receiver.grpc_endpoint())
            .build(),
        Transport::GrpcGzip => SpanExporter::builder()
            .with_tonic()
            .with_endpoint(receiver.grpc_endpoint())
            .with_compression(Compression::Gzip)
            .build(),
        Transport::HttpProtobuf => SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(http_url)
            .build(),
        Transport::HttpProtobufGzip => SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(http_url)
            .with_compression(Compression::Gzip)
            .build(),
    };
    built.expect("exporter builds")
}

/// Ids of what the SDK produced, to compare with what arrived.
struct Sent {
    trace_id: String,
    server_span_id: String,
    client_span_id: String,
}

/// Emits a two-span trace (a server span and a failing client call inside it) through a
/// provider whose resource names `service`, then shuts the provider down so it flushes.
async fn emit_trace(transport: Transport, receiver: &RunningReceiver, service: &str) -> Sent {
    let provider = SdkTracerProvider::builder()
        .with_resource(
            Resource::builder()
                .with_service_name(service.to_owned())
                .build(),
        )
        .with_batch_exporter(exporter(transport, receiver))
        .build();
    let tracer = provider.tracer("sdk-export-test");

    let mut server = tracer
        .span_builder("GET /orders/{id}")
        .with_kind(OtelKind::Server)
        .with_attributes([
            KeyValue::new("http.route", "/orders/{id}"),
            KeyValue::new("http.response.status_code", 200_i64),
            KeyValue::new("cache.hit", false),
            KeyValue::new("sample.ratio", 0.5),
        ])
        .start(&tracer);
    server.add_event("order.validated", vec![KeyValue::new("order.items", 3_i64)]);
    let server_cx = Context::current_with_span(server);

    let mut client = tracer
        .span_builder("GET /users/{id}")
        .with_kind(OtelKind::Client)
        .with_attributes([KeyValue::new("server.port", 8081_i64)])
        .start_with_context(&tracer, &server_cx);
    client.set_status(Status::error("upstream timed out"));
    let client_span_id = client.span_context().span_id().to_string();
    tokio::time::sleep(Duration::from_millis(2)).await;
    client.end();
    server_cx.span().end();

    let server_ctx = server_cx.span().span_context().clone();
    drop(server_cx);

    // Shutdown blocks on the export; on a runtime thread it can stall (see the team notes).
    tokio::task::spawn_blocking(move || {
        drop(tracer);
        provider.shutdown()
    })
    .await
    .expect("shutdown task")
    .expect("provider shutdown flushes");

    Sent {
        trace_id: server_ctx.trace_id().to_string(),
        server_span_id: server_ctx.span_id().to_string(),
        client_span_id,
    }
}

fn by_name<'a>(spans: &'a [CollectedSpan], name: &str) -> &'a CollectedSpan {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span named {name:?} in {spans:#?}"))
}

async fn check_transport(transport: Transport) {
    let receiver = start(ReceiverConfig::default())
        .await
        .expect("receiver starts");
    let service = format!("svc-{transport:?}").to_lowercase();
    let sent = emit_trace(transport, &receiver, &service).await;

    let spans = receiver
        .store()
        .wait_for_trace(&sent.trace_id, 2, Duration::from_secs(15))
        .await
        .unwrap_or_else(|e| panic!("{transport:?}: {e}"));
    assert_eq!(spans.len(), 2, "{spans:#?}");
    assert_eq!(
        receiver.store().trace_ids(),
        std::slice::from_ref(&sent.trace_id)
    );

    let server = by_name(&spans, "GET /orders/{id}");
    let client = by_name(&spans, "GET /users/{id}");
    for span in [server, client] {
        assert_eq!(span.service_name, service);
        assert_eq!(span.scope_name, "sdk-export-test");
        assert_eq!(span.trace_id, sent.trace_id);
        assert_eq!(span.trace_id.len(), 32);
        assert_eq!(
            span.resource
                .get("telemetry.sdk.language")
                .and_then(AttrValue::as_str),
            Some("rust")
        );
    }

    assert_eq!(server.span_id, sent.server_span_id);
    assert_eq!(server.parent_span_id, None);
    assert_eq!(server.kind, SpanKind::Server);
    assert_eq!(server.status_code, StatusCode::Unset);
    assert_eq!(server.attr_str("http.route"), Some("/orders/{id}"));
    assert_eq!(server.attr_i64("http.response.status_code"), Some(200));
    assert_eq!(
        server.attr("cache.hit").and_then(AttrValue::as_bool),
        Some(false)
    );
    assert_eq!(
        server.attr("sample.ratio").and_then(AttrValue::as_f64),
        Some(0.5)
    );
    assert_eq!(server.events.len(), 1);
    assert_eq!(server.events[0].name, "order.validated");
    assert_eq!(server.events[0].attributes["order.items"].as_i64(), Some(3));

    assert_eq!(client.span_id, sent.client_span_id);
    assert_eq!(
        client.parent_span_id.as_deref(),
        Some(server.span_id.as_str())
    );
    assert_eq!(client.kind, SpanKind::Client);
    assert_eq!(client.attr_i64("server.port"), Some(8081));
    assert_eq!(client.status_code, StatusCode::Error);
    assert_eq!(client.status_message, "upstream timed out");

    // The client call ran inside the server span, and for a measurable time.
    assert!(client.start_unix_nanos >= server.start_unix_nanos);
    assert!(client.end_unix_nanos <= server.end_unix_nanos);
    assert!(client.duration() >= Duration::from_millis(2));
    assert!(client.overlaps(server));

    receiver.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_export_over_grpc() {
    check_transport(Transport::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_export_over_grpc_with_gzip() {
    check_transport(Transport::GrpcGzip).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_export_over_http_protobuf() {
    check_transport(Transport::HttpProtobuf).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_export_over_http_protobuf_with_gzip() {
    check_transport(Transport::HttpProtobufGzip).await;
}
