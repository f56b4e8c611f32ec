//! Metrics end to end with the real OpenTelemetry Rust SDK and OTLP metric exporter, over
//! every transport a latency-lab service may use: a known set of measurements goes in, and
//! the receiver's metric store must hold exactly their histogram, counter and gauge.

use std::time::Duration;

use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_otlp::{
    Compression, MetricExporter, Protocol, WithExportConfig, WithHttpConfig, WithTonicConfig,
};
use opentelemetry_sdk::metrics::{SdkMeterProvider, Temporality as SdkTemporality};
use opentelemetry_sdk::Resource;
use otlp_receiver::{
    start, HistogramPoint, NumberKind, NumberValue, ReceiverConfig, RunningReceiver, Temporality,
    METRICS_PATH,
};

#[derive(Debug, Clone, Copy)]
enum Transport {
    Grpc,
    GrpcGzip,
    HttpProtobuf,
    HttpProtobufGzip,
}

fn exporter(
    transport: Transport,
    receiver: &RunningReceiver,
    temporality: SdkTemporality,
) -> MetricExporter {
    let http_url = format!("{}{}", receiver.http_endpoint(), METRICS_PATH);
    let builder = MetricExporter::builder().with_temporality(temporality);
    let built = match transport {
        Transport::Grpc => builder
            .with_tonic()
            .with_endpoint(receiver.grpc_endpoint())
            .build(),
        Transport::GrpcGzip => builder
            .with_tonic()
            .with_endpoint(receiver.grpc_endpoint())
            .with_compression(Compression::Gzip)
            .build(),
        Transport::HttpProtobuf => builder
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(http_url)
            .build(),
        Transport::HttpProtobufGzip => builder
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(http_url)
            .with_compression(Compression::Gzip)
            .build(),
    };
    built.expect("metric exporter builds")
}

const DURATION: &str = "http.server.request.duration";
const BOUNDS: [f64; 3] = [0.1, 0.25, 0.5];

/// Five requests of one route (two of them failing) and the instruments around them.
/// `phases` > 1 flushes between phases, so a delta exporter sends several points per series.
async fn emit(
    transport: Transport,
    receiver: &RunningReceiver,
    service: &str,
    temporality: SdkTemporality,
    phases: usize,
) {
    let provider = SdkMeterProvider::builder()
        .with_resource(
            Resource::builder()
                .with_service_name(service.to_owned())
                .build(),
        )
        .with_periodic_exporter(exporter(transport, receiver, temporality))
        .build();
    let meter = provider.meter("sdk-metrics-test");
    let duration = meter
        .f64_histogram(DURATION)
        .with_unit("s")
        .with_boundaries(BOUNDS.to_vec())
        .build();
    let retries = meter.u64_counter("retries").build();
    let pool = meter.i64_gauge("pool.in_use").build();
    let ok = [
        KeyValue::new("http.route", "/orders/{id}"),
        KeyValue::new("http.request.method", "GET"),
        KeyValue::new("http.response.status_code", 200_i64),
    ];
    let failed = [
        KeyValue::new("http.route", "/orders/{id}"),
        KeyValue::new("http.request.method", "GET"),
        KeyValue::new("http.response.status_code", 503_i64),
        KeyValue::new("error.type", "503"),
    ];
    // (value, failed?) per phase; all phases together: 0.05, 0.2, 0.3 ok; 0.7, 0.2 failed.
    let samples = [
        (0.05, false),
        (0.2, false),
        (0.7, true),
        (0.3, false),
        (0.2, true),
    ];
    for chunk in samples.chunks(samples.len().div_ceil(phases)) {
        for (value, is_failed) in chunk {
            duration.record(*value, if *is_failed { &failed } else { &ok });
        }
        retries.add(chunk.len() as u64, &[]);
        pool.record(chunk.len() as i64, &[]);
        let flusher = provider.clone();
        tokio::task::spawn_blocking(move || flusher.force_flush())
            .await
            .expect("flush task")
            .expect("flush exports");
    }
    // Shutdown blocks on the export; on a runtime thread it can stall (see the team notes).
    tokio::task::spawn_blocking(move || provider.shutdown())
        .await
        .expect("shutdown task")
        .expect("provider shutdown flushes");
}

fn series(points: &[HistogramPoint], status: i64) -> &HistogramPoint {
    points
        .iter()
        .find(|p| p.origin.attr_i64("http.response.status_code") == Some(status))
        .unwrap_or_else(|| panic!("no series with status {status} in {points:#?}"))
}

async fn check(transport: Transport, temporality: SdkTemporality, phases: usize) {
    let receiver = start(ReceiverConfig::default())
        .await
        .expect("receiver starts");
    let service = format!("svc-{transport:?}-{temporality:?}").to_lowercase();
    emit(transport, &receiver, &service, temporality, phases).await;

    let metrics = receiver.metrics();
    let points = metrics
        .wait_for_histograms(DURATION, Duration::from_secs(15), |p| {
            p.iter().map(|p| p.count).sum::<u64>() >= 5
        })
        .await
        .unwrap_or_else(|e| panic!("{transport:?}: {e}"));
    assert_eq!(points.len(), 2, "{points:#?}");
    let expected = match temporality {
        SdkTemporality::Delta => Temporality::Delta,
        _ => Temporality::Cumulative,
    };

    let ok = series(&points, 200);
    assert_eq!(ok.origin.service_name, service);
    assert_eq!(ok.origin.scope_name, "sdk-metrics-test");
    assert_eq!(ok.origin.unit, "s");
    assert_eq!(ok.origin.attr_str("http.route"), Some("/orders/{id}"));
    assert_eq!(ok.origin.attr_str("http.request.method"), Some("GET"));
    assert_eq!(ok.origin.attr("error.type"), None);
    assert_eq!(ok.temporality, expected);
    assert_eq!(ok.explicit_bounds, BOUNDS);
    assert_eq!(ok.count, 3);
    // 0.05 ≤ 0.1; 0.2 ≤ 0.25; 0.3 ≤ 0.5; nothing above.
    assert_eq!(ok.bucket_counts, [1, 1, 1, 0]);
    assert!((ok.sum.unwrap() - 0.55).abs() < 1e-9, "{:?}", ok.sum);
    assert_eq!((ok.min, ok.max), (Some(0.05), Some(0.3)));
    assert!(ok.start_unix_nanos > 0 && ok.time_unix_nanos > ok.start_unix_nanos);

    let failed = series(&points, 503);
    assert_eq!(failed.origin.attr_str("error.type"), Some("503"));
    assert_eq!(failed.count, 2);
    assert_eq!(failed.bucket_counts, [0, 1, 0, 1]);
    assert_eq!((failed.min, failed.max), (Some(0.2), Some(0.7)));

    let retries = metrics.sums("retries");
    assert_eq!(retries.len(), 1, "{retries:#?}");
    assert_eq!(retries[0].value, NumberValue::Int(5));
    assert!(matches!(
        retries[0].kind,
        NumberKind::Sum {
            monotonic: true,
            ..
        }
    ));
    let pool = metrics.gauges("pool.in_use");
    assert_eq!(pool.len(), 1, "{pool:#?}");
    assert_eq!(pool[0].kind, NumberKind::Gauge);
    assert!(
        matches!(pool[0].value, NumberValue::Int(1..=5)),
        "{:?}",
        pool[0].value
    );
    assert_eq!(metrics.refused_points(), 0);
    receiver.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_metrics_over_grpc() {
    check(Transport::Grpc, SdkTemporality::Cumulative, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_metrics_over_grpc_with_gzip() {
    check(Transport::GrpcGzip, SdkTemporality::Cumulative, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_metrics_over_http_protobuf() {
    check(Transport::HttpProtobuf, SdkTemporality::Cumulative, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_metrics_over_http_protobuf_with_gzip() {
    check(Transport::HttpProtobufGzip, SdkTemporality::Cumulative, 1).await;
}

/// Cumulative points sent three times (one flush per phase) are not added up: the latest
/// replaces the earlier ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_cumulative_exports_keep_the_latest_point() {
    check(Transport::Grpc, SdkTemporality::Cumulative, 3).await;
}

/// Delta points (one per phase) are added up into the same totals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_exports_are_accumulated() {
    check(Transport::HttpProtobuf, SdkTemporality::Delta, 3).await;
}
