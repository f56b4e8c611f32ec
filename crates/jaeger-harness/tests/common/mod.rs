//! Helpers shared by the integration tests: a test tracer provider and trace emitters.
#![allow(dead_code)] // each test binary uses a different subset

use std::time::{Duration, SystemTime};

use opentelemetry::trace::{Span, SpanKind, Status, TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, SpanExporter};
use opentelemetry_sdk::Resource;
use trace_view::TraceId;

/// The service name every test trace carries.
pub const SERVICE: &str = "harness-test";

/// Generous: a loaded 2-core machine may be slow, and a passing test returns early anyway.
pub const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(60);

/// A provider with service.name `harness-test` and a batch processor on `exporter`.
pub fn provider(exporter: impl SpanExporter + 'static) -> (SdkTracerProvider, SdkTracer) {
    let provider = SdkTracerProvider::builder()
        .with_resource(Resource::builder().with_service_name(SERVICE).build())
        .with_batch_exporter(exporter)
        .build();
    let tracer = provider.tracer("jaeger-harness-tests");
    (provider, tracer)
}

/// Flushes and shuts the provider down off the async runtime (see the workspace notes: a
/// direct `shutdown()` on a current-thread runtime can time out and lose the spans).
pub async fn shutdown(provider: SdkTracerProvider) {
    tokio::task::spawn_blocking(move || provider.shutdown())
        .await
        .expect("shutdown task panicked")
        .expect("provider shutdown failed: spans were not exported");
}

fn trace_id_of(cx: &Context) -> TraceId {
    TraceId::from(cx.span().span_context().trace_id().to_bytes())
}

/// A server root span with two client children: 3 spans. Returns the trace id.
pub fn emit_three_span_trace(tracer: &SdkTracer, root_name: &str) -> TraceId {
    let root = tracer
        .span_builder(root_name.to_owned())
        .with_kind(SpanKind::Server)
        .with_attributes([KeyValue::new("http.request.method", "GET")])
        .start(tracer);
    let cx = Context::current_with_span(root);
    for child in ["GET user-service", "GET order-service"] {
        let mut span = tracer
            .span_builder(child)
            .with_kind(SpanKind::Client)
            .start_with_context(tracer, &cx);
        span.end();
    }
    let id = trace_id_of(&cx);
    cx.span().end();
    id
}

/// One root span lasting `duration` (start time set in the past, so nothing sleeps), with
/// status ERROR if `error`. Returns the trace id.
pub fn emit_single_span_trace(
    tracer: &SdkTracer,
    name: &str,
    duration: Duration,
    error: bool,
) -> TraceId {
    let end = SystemTime::now();
    let mut span = tracer
        .span_builder(name.to_owned())
        .with_kind(SpanKind::Server)
        .with_start_time(end - duration)
        .start(tracer);
    if error {
        span.set_status(Status::error("deliberate test error"));
    }
    let id = TraceId::from(span.span_context().trace_id().to_bytes());
    span.end_with_timestamp(end);
    id
}
