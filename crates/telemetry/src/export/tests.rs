//! The processor against a fake exporter that fails (or hangs) on command.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry::trace::{Span as _, SpanId, Tracer as _, TracerProvider as _};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};

use super::report::ExportEvent;
use super::*;

#[derive(Debug, Default)]
struct Collector {
    down: AtomicBool,
    /// Attempts still to hang (never complete) before behaving.
    hang: AtomicUsize,
    /// Every attempt: when, and the first span of its batch.
    attempts: Mutex<Vec<(Instant, SpanId)>>,
    received: Mutex<Vec<SpanId>>,
}

#[derive(Debug, Clone, Default)]
struct FakeExporter(Arc<Collector>);

impl SpanExporter for FakeExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let c = &self.0;
        let first = batch[0].span_context.span_id();
        c.attempts.lock().unwrap().push((Instant::now(), first));
        if c.hang
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            std::future::pending::<()>().await;
        }
        if c.down.load(Ordering::SeqCst) {
            return Err(OTelSdkError::InternalFailure("collector down".into()));
        }
        c.received
            .lock()
            .unwrap()
            .extend(batch.iter().map(|s| s.span_context.span_id()));
        Ok(())
    }
}

fn settings(max_queue_size: usize, max_export_batch_size: usize) -> ExportSettings {
    ExportSettings {
        max_queue_size,
        max_export_batch_size,
        scheduled_delay: Duration::from_millis(20),
        export_timeout: Duration::from_secs(2),
        backoff: Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(50),
        },
        report_interval: Duration::from_millis(200),
    }
}

struct Rig {
    provider: SdkTracerProvider,
    collector: Arc<Collector>,
    stats: SpanExportStats,
    events: Arc<Mutex<Vec<ExportEvent>>>,
}

impl Rig {
    fn new(settings: ExportSettings) -> Self {
        let exporter = FakeExporter::default();
        let collector = exporter.0.clone();
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        let processor = RetryingBatchProcessor::with_reporter(
            exporter,
            settings,
            Box::new(move |e| sink.lock().unwrap().push(e.clone())),
        );
        let stats = processor.stats();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .build();
        Self {
            provider,
            collector,
            stats,
            events,
        }
    }

    fn set_down(&self, down: bool) {
        self.collector.down.store(down, Ordering::SeqCst);
    }

    fn emit(&self, n: usize) -> Vec<SpanId> {
        let tracer = self.provider.tracer("test");
        (0..n)
            .map(|i| {
                let mut span = tracer.start(format!("span {i}"));
                let id = span.span_context().span_id();
                span.end();
                id
            })
            .collect()
    }

    fn received(&self) -> Vec<SpanId> {
        self.collector.received.lock().unwrap().clone()
    }

    fn events(&self) -> Vec<ExportEvent> {
        self.events.lock().unwrap().clone()
    }

    fn wait_until(&self, what: &str, done: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[test]
fn an_outage_within_the_queue_loses_nothing_and_logs_one_failing_and_one_recovery_line() {
    let rig = Rig::new(settings(1000, 50));
    rig.set_down(true);
    let emitted = rig.emit(800);
    rig.wait_until("a few retries", |r| r.stats.failed_attempts() >= 5);
    assert_eq!(rig.stats.exported(), 0);
    assert_eq!(rig.stats.held(), 800);
    assert_eq!(rig.stats.dropped(), 0);

    rig.set_down(false);
    rig.provider.force_flush().unwrap();
    assert_eq!(rig.received(), emitted, "every span, in order");
    assert_eq!(rig.stats.exported(), 800);
    assert_eq!(rig.stats.held(), 0);
    assert_eq!(rig.stats.lost(), 0);

    let events = rig.events();
    let failing = events
        .iter()
        .filter(|e| matches!(e, ExportEvent::Failing { .. }))
        .count();
    assert_eq!(failing, 1, "{events:#?}");
    let recovered: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            ExportEvent::Recovered {
                delayed, dropped, ..
            } => Some((*delayed, *dropped)),
            _ => None,
        })
        .collect();
    assert_eq!(recovered, [(800, 0)], "{events:#?}");
    rig.provider.shutdown().unwrap();
}

#[test]
fn beyond_the_queue_spans_are_dropped_and_counted_exactly() {
    let rig = Rig::new(settings(100, 10));
    rig.set_down(true);
    let mut emitted = rig.emit(10);
    rig.wait_until("a failed attempt", |r| r.stats.failed_attempts() >= 1);
    emitted.extend(rig.emit(240));
    assert_eq!(rig.stats.dropped(), 150);
    assert_eq!(rig.stats.dropped_queue_full(), 150);
    assert_eq!(rig.stats.held(), 100, "the batch being retried counts");

    rig.set_down(false);
    rig.provider.force_flush().unwrap();
    assert_eq!(rig.received(), emitted[..100], "the oldest are kept");
    rig.provider.shutdown().unwrap();

    let events = rig.events();
    let reported: u64 = events
        .iter()
        .filter_map(|e| match e {
            ExportEvent::Dropped { since_last, .. } => Some(*since_last),
            _ => None,
        })
        .sum();
    assert_eq!(reported, 150, "{events:#?}");
    assert!(events.contains(&ExportEvent::ShutDown {
        exported: 100,
        dropped: 150,
        abandoned: 0
    }));
    assert!(events
        .iter()
        .any(|e| matches!(e, ExportEvent::Recovered { dropped: 150, .. })));
}

#[test]
fn a_failed_batch_is_retried_first_with_growing_waits() {
    let mut s = settings(1000, 10);
    s.backoff = Backoff {
        initial: Duration::from_millis(30),
        max: Duration::from_millis(120),
    };
    let rig = Rig::new(s);
    rig.set_down(true);
    let first_batch = rig.emit(10);
    rig.wait_until("six attempts", |r| {
        r.collector.attempts.lock().unwrap().len() >= 6
    });
    let later = rig.emit(25);
    rig.set_down(false);
    rig.provider.force_flush().unwrap();

    let attempts = rig.collector.attempts.lock().unwrap().clone();
    // The same batch, again and again, never sooner than the backoff says.
    for (i, pair) in attempts[..6].windows(2).enumerate() {
        assert_eq!(
            pair[1].1,
            first_batch[0],
            "attempt {} retries the batch",
            i + 1
        );
        let gap = pair[1].0 - pair[0].0;
        assert!(
            gap >= s.backoff.delay(i as u32 + 1),
            "gap {i}: {gap:?} < {:?}",
            s.backoff.delay(i as u32 + 1)
        );
    }
    let received = rig.received();
    assert_eq!(
        received[..10],
        first_batch[..],
        "the retried batch goes first"
    );
    assert_eq!(received[10..], later[..]);
    rig.provider.shutdown().unwrap();
}

#[test]
fn a_hanging_export_is_cut_at_the_export_timeout_and_retried() {
    let mut s = settings(1000, 10);
    s.export_timeout = Duration::from_millis(100);
    let rig = Rig::new(s);
    rig.collector.hang.store(2, Ordering::SeqCst);
    let emitted = rig.emit(10);
    rig.wait_until("the batch", |r| r.stats.exported() == 10);
    assert_eq!(rig.received(), emitted);
    assert_eq!(rig.stats.failed_attempts(), 2);
    let events = rig.events();
    assert!(
        matches!(&events[0], ExportEvent::Failing { error, .. } if error.contains("OTEL_BSP_EXPORT_TIMEOUT")),
        "{events:#?}"
    );
    rig.provider.shutdown().unwrap();
}

#[test]
fn shutdown_during_an_outage_is_bounded_and_reports_what_it_abandoned() {
    let rig = Rig::new(settings(1000, 10));
    rig.set_down(true);
    rig.emit(95);
    let start = Instant::now();
    let outcome = rig
        .provider
        .shutdown_with_timeout(Duration::from_millis(300));
    let took = start.elapsed();
    assert!(outcome.is_err(), "{outcome:?}");
    assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
    assert_eq!(rig.stats.abandoned(), 95);
    assert_eq!(rig.stats.exported(), 0);
    assert!(rig.events().contains(&ExportEvent::ShutDown {
        exported: 0,
        dropped: 0,
        abandoned: 95
    }));
}

#[test]
fn shutdown_with_a_hanging_exporter_is_bounded_by_its_deadline() {
    let mut s = settings(1000, 10);
    s.export_timeout = Duration::from_secs(60);
    let rig = Rig::new(s);
    rig.collector.hang.store(usize::MAX, Ordering::SeqCst);
    rig.emit(10);
    rig.wait_until("an attempt", |r| {
        !r.collector.attempts.lock().unwrap().is_empty()
    });
    let start = Instant::now();
    let outcome = rig
        .provider
        .shutdown_with_timeout(Duration::from_millis(300));
    assert!(outcome.is_err());
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn shutdown_flushes_everything_queued_when_the_collector_is_up() {
    let mut s = settings(1000, 10);
    s.scheduled_delay = Duration::from_secs(600);
    let rig = Rig::new(s);
    let emitted = rig.emit(35);
    rig.wait_until("three full batches", |r| r.received().len() >= 30);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(rig.received().len(), 30, "the rest waits for the delay");
    rig.provider.shutdown().unwrap();
    assert_eq!(rig.received(), emitted);
    assert_eq!(rig.stats.exported(), 35);
    assert!(rig.events().contains(&ExportEvent::ShutDown {
        exported: 35,
        dropped: 0,
        abandoned: 0
    }));
}

#[test]
fn force_flush_during_an_outage_times_out_and_keeps_the_spans() {
    let mut s = settings(1000, 10);
    s.export_timeout = Duration::from_millis(200);
    let rig = Rig::new(s);
    rig.set_down(true);
    let emitted = rig.emit(5);
    assert!(rig.provider.force_flush().is_err());
    assert_eq!(rig.stats.held(), 5);
    rig.set_down(false);
    rig.provider.force_flush().unwrap();
    assert_eq!(rig.received(), emitted);
    rig.provider.shutdown().unwrap();
}

#[test]
fn a_lone_span_leaves_after_the_schedule_delay_not_the_report_interval() {
    let mut s = settings(1000, 10);
    s.scheduled_delay = Duration::from_millis(50);
    s.report_interval = Duration::from_secs(30);
    let rig = Rig::new(s);
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    rig.emit(1);
    rig.wait_until("the span", |r| r.stats.exported() == 1);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    rig.provider.shutdown().unwrap();
}

/// Counts what the queue made of ended spans (the direct sinks encode there).
static MADE: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug)]
struct Counted;

impl worker::Queued for Counted {
    fn from_span(_span: SpanData) -> Self {
        MADE.fetch_add(1, Ordering::SeqCst);
        Counted
    }
}

/// A sink whose collector is always down.
struct DownSink;

impl worker::BatchSink for DownSink {
    type Item = Counted;

    fn send<'a>(
        &'a self,
        _batch: &'a worker::Batch<Counted>,
    ) -> futures_util::future::BoxFuture<'a, Result<(), String>> {
        Box::pin(std::future::ready(Err("collector down".to_owned())))
    }

    fn set_resource(&mut self, _resource: &opentelemetry_sdk::Resource) {}

    fn shutdown(&mut self, _timeout: Duration) {}
}

#[test]
fn a_span_a_full_queue_cannot_take_is_dropped_before_it_is_encoded() {
    let processor = RetryingBatchProcessor::start(DownSink, settings(100, 10), Box::new(|_| {}));
    let stats = processor.stats();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .build();
    let tracer = provider.tracer("test");
    for i in 0..250 {
        tracer.start(format!("span {i}")).end();
    }
    assert_eq!(stats.dropped_queue_full(), 150);
    assert_eq!(
        MADE.load(Ordering::SeqCst),
        100,
        "only the spans the queue took were made into queue items"
    );
    let _ = provider.shutdown_with_timeout(Duration::from_millis(100));
}
