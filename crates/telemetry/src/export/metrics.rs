//! The queue's counts as the OpenTelemetry SDK self-observability metrics
//! (semantic conventions, `otel.sdk.processor.span.*`, Development status).

use opentelemetry::KeyValue;
use opentelemetry_semantic_conventions::attribute::{
    ERROR_TYPE, OTEL_COMPONENT_NAME, OTEL_COMPONENT_TYPE,
};
use opentelemetry_semantic_conventions::metric::{
    OTEL_SDK_PROCESSOR_SPAN_PROCESSED, OTEL_SDK_PROCESSOR_SPAN_QUEUE_CAPACITY,
    OTEL_SDK_PROCESSOR_SPAN_QUEUE_SIZE,
};

use super::SpanExportStats;

/// `otel.component.type`: not one of the SDK's own processors, so the type's
/// name, as the convention asks.
const COMPONENT_TYPE: &str = "telemetry::export::RetryingBatchProcessor";
const COMPONENT_NAME: &str = "retrying_batch_span_processor/0";

/// Registers observable instruments on the global meter provider that read
/// `stats` at each collection:
/// - `otel.sdk.processor.span.processed` (counter): exported spans without
///   `error.type`; `queue_full` for spans refused by the full queue,
///   `already_shutdown` for spans ended after shutdown, `export_failed` for
///   spans abandoned at shutdown with the collector unreachable;
/// - `otel.sdk.processor.span.queue.size` and `…queue.capacity`.
///
/// Call after [`crate::init()`] installed the meter provider.
pub fn register_metrics(stats: &SpanExportStats) {
    let meter = opentelemetry::global::meter(crate::init::SCOPE);
    let component = [
        KeyValue::new(OTEL_COMPONENT_TYPE, COMPONENT_TYPE),
        KeyValue::new(OTEL_COMPONENT_NAME, COMPONENT_NAME),
    ];
    let with_error = |error: &'static str| {
        let mut attrs = component.to_vec();
        attrs.push(KeyValue::new(ERROR_TYPE, error));
        attrs
    };
    let (ok, full, after_shutdown, failed) = (
        component.to_vec(),
        with_error("queue_full"),
        with_error("already_shutdown"),
        with_error("export_failed"),
    );
    let s = stats.clone();
    meter
        .u64_observable_counter(OTEL_SDK_PROCESSOR_SPAN_PROCESSED)
        .with_unit("{span}")
        .with_description("Spans the processor handled: exported, or dropped with error.type")
        .with_callback(move |o| {
            o.observe(s.exported(), &ok);
            o.observe(s.dropped_queue_full(), &full);
            o.observe(s.dropped() - s.dropped_queue_full(), &after_shutdown);
            o.observe(s.abandoned(), &failed);
        })
        .build();
    let s = stats.clone();
    let attrs = component.to_vec();
    meter
        .i64_observable_up_down_counter(OTEL_SDK_PROCESSOR_SPAN_QUEUE_SIZE)
        .with_unit("{span}")
        .with_description("Spans in the export queue, the batch being retried included")
        .with_callback(move |o| o.observe(s.held() as i64, &attrs))
        .build();
    let capacity = stats.capacity() as i64;
    let attrs = component.to_vec();
    meter
        .i64_observable_up_down_counter(OTEL_SDK_PROCESSOR_SPAN_QUEUE_CAPACITY)
        .with_unit("{span}")
        .with_description("The most spans the export queue holds (OTEL_BSP_MAX_QUEUE_SIZE)")
        .with_callback(move |o| o.observe(capacity, &attrs))
        .build();
}
