//! With `otel-collector.tail-sampling.yaml` (0 % probabilistic share, low latency threshold,
//! short decision wait): slow traces and error traces reach Jaeger, a fast OK trace does not.

mod common;

use std::time::Duration;

use common::{emit_single_span_trace, provider, shutdown, ARRIVAL_TIMEOUT};
use jaeger_harness::{jaeger_for_tests, repo_file, Collector, Jaeger, TAIL_SAMPLING_OVERLAY};
use opentelemetry_otlp::{SpanExporter, WithExportConfig};

const DECISION_WAIT: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeps_slow_and_error_traces_and_drops_fast_ok_ones() {
    let Some(bin) = jaeger_for_tests() else {
        return;
    };
    let jaeger = Jaeger::start(&bin).expect("start jaeger");
    let decision_wait = format!("{}ms", DECISION_WAIT.as_millis());
    let collector = Collector::start_with(
        &bin,
        jaeger.ports.otlp_grpc,
        &[repo_file(TAIL_SAMPLING_OVERLAY)],
        &[
            ("TAIL_SAMPLING_PERCENT", "0"),
            ("TAIL_SAMPLING_LATENCY_THRESHOLD_MS", "300"),
            ("TAIL_SAMPLING_DECISION_WAIT", decision_wait.as_str()),
        ],
    )
    .expect("start collector with the tail-sampling overlay");

    let exporter = SpanExporter::builder()
        .with_tonic()
        .with_endpoint(collector.otlp_grpc_endpoint())
        .build()
        .expect("grpc exporter");
    let (provider, tracer) = provider(exporter);
    let fast_ok = emit_single_span_trace(&tracer, "fast-ok", Duration::from_millis(5), false);
    let slow = emit_single_span_trace(&tracer, "slow-ok", Duration::from_millis(1200), false);
    let failed = emit_single_span_trace(&tracer, "fast-error", Duration::from_millis(5), true);
    shutdown(provider).await;

    let query = jaeger.query().expect("query client");
    let slow_trace = query
        .wait_for_trace(slow, 1, ARRIVAL_TIMEOUT)
        .await
        .expect("the slow trace was not kept");
    assert_eq!(slow_trace.spans[0].name, "slow-ok");
    let error_trace = query
        .wait_for_trace(failed, 1, ARRIVAL_TIMEOUT)
        .await
        .expect("the error trace was not kept");
    let error_span = &error_trace.spans[0];
    assert_eq!(error_span.name, "fast-error");
    assert!(
        error_span.is_error(),
        "error span not marked as error: {error_span:?}"
    );

    // All three traces were exported in one batch, so they were decided together; wait a
    // decision period more plus a margin for the batch in flight, then the fast one must be
    // absent.
    tokio::time::sleep(DECISION_WAIT + Duration::from_secs(3)).await;
    let dropped = query.find_trace(fast_ok).await.expect("query");
    assert!(dropped.is_none(), "the fast OK trace was kept: {dropped:?}");
}
