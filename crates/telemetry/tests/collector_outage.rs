//! A collector outage under steady load loses no span: the in-process
//! receiver is stopped for 30 s (10 s under `CI=true`) while a provider built
//! by `telemetry` with its default queue emits 100 traces of 7 spans a
//! second, then restarted on the same port. Every span id arrives, and the
//! log says once that export is failing and once that it recovered.

mod support;

use std::time::Duration;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_outage_within_the_default_queue_loses_no_span() {
    let logs = Captured::install();
    let receiver = receiver().await;
    let config = config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.grpc_endpoint()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".into()),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "2000".into()),
    ]);
    let outage = outage();
    let expected_spans = SPANS_PER_REQUEST * RATE as usize * outage.as_secs() as usize;
    assert!(
        config.span_export.max_queue_size > expected_spans,
        "the default queue holds the outage's {expected_spans} spans"
    );
    let (provider, stats) = telemetry::init::build_provider_and_stats(&config).unwrap();
    let stats = stats.expect("spans are exported");

    let load = Load::start(&provider);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let receiver = outage_of(receiver, outage, &stats).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let emitted = load.finish();
    shut_down(provider).await;

    assert!(
        emitted.len() > expected_spans,
        "{} spans emitted",
        emitted.len()
    );
    let received = received_ids(&receiver, emitted.len()).await;
    let missing = emitted.iter().filter(|id| !received.contains(*id)).count();
    assert_eq!(missing, 0, "of {} spans", emitted.len());
    assert_eq!(stats.exported(), emitted.len() as u64);
    assert_eq!(stats.lost(), 0);

    let lines = logs.lines();
    eprintln!("{}", lines.join("\n"));
    let count = |text: &str| lines.iter().filter(|l| l.contains(text)).count();
    assert_eq!(count("span export failing"), 1, "{lines:#?}");
    assert!(
        count("span export still failing") <= outage.as_secs() as usize / 5 + 1,
        "at most one line every 5 s: {lines:#?}"
    );
    assert_eq!(count("span export recovered after"), 1, "{lines:#?}");
    assert_eq!(count("0 dropped"), 1, "{lines:#?}");
    assert_eq!(count("queue full"), 0, "{lines:#?}");
    receiver.shutdown().await;
}

/// The outage's length: 10 s under CI, 30 s (the guarantee) otherwise.
pub fn outage() -> Duration {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        Duration::from_secs(10)
    } else {
        Duration::from_secs(30)
    }
}
