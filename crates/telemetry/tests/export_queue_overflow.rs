//! Beyond the queue, spans are dropped and counted exactly: with a tiny
//! `OTEL_BSP_MAX_QUEUE_SIZE`, an outage under steady load over OTLP/HTTP
//! drops spans, and the count reported (by the stats handle, the log and the
//! `otel.sdk.processor.span.processed` metric) is exactly emitted − received.

mod support;

use std::time::Duration;

use support::*;
use telemetry::metrics::testing::global_in_memory;

const PROCESSED: &str = "otel.sdk.processor.span.processed";

/// The total of the last "… N in all" drop line.
fn last_logged_total(lines: &[String]) -> Option<u64> {
    let line = lines
        .iter()
        .rev()
        .find(|l| l.contains("span export queue full"))?;
    let (before, _) = line.split_once(" in all")?;
    before.rsplit(' ').next()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_a_tiny_queue_the_dropped_count_is_exact() {
    let logs = Captured::install();
    let metrics = global_in_memory();
    let receiver = receiver().await;
    let config = config(&[
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".into()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.http_endpoint()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".into()),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "300".into()),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "100".into()),
    ]);
    let (provider, stats) = telemetry::init::build_provider_and_stats(&config).unwrap();
    let stats = stats.expect("spans are exported");
    telemetry::export::register_metrics(&stats);

    let load = Load::start(&provider);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let receiver = outage_of(receiver, Duration::from_secs(2), &stats).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let emitted = load.finish();
    shut_down(provider).await;

    let dropped = stats.dropped();
    assert!(
        dropped > 0,
        "a 2 s outage overflows 300 spans at 700 spans/s"
    );
    assert_eq!(stats.abandoned(), 0);
    let received = received_ids(&receiver, emitted.len() - dropped as usize).await;
    // Give a stray late export the chance to show up before counting.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.store().spans().len(), received.len());
    assert!(received.iter().all(|id| emitted.contains(id)));
    assert_eq!(dropped, (emitted.len() - received.len()) as u64);
    assert_eq!(stats.exported(), received.len() as u64);

    let lines = logs.lines();
    assert_eq!(last_logged_total(&lines), Some(dropped), "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("{dropped} dropped (queue full)"))),
        "the shutdown line: {lines:#?}"
    );
    let snapshot = metrics.collect();
    assert_eq!(
        snapshot.total(PROCESSED, &[("error.type", "queue_full")]),
        dropped as f64
    );
    let exported: Vec<f64> = snapshot
        .points(PROCESSED)
        .iter()
        .filter(|p| p.attr("error.type").is_none())
        .map(|p| p.value)
        .collect();
    assert_eq!(exported, [received.len() as f64]);
    receiver.shutdown().await;
}
