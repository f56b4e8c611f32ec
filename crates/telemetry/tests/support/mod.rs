//! A steady span load against an in-process OTLP receiver that can be
//! stopped and restarted on the same ports: the collector-outage tests.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry::trace::{Span as _, TraceContextExt as _, Tracer as _, TracerProvider as _};
use opentelemetry::Context;
use opentelemetry_sdk::trace::SdkTracerProvider;
use otlp_receiver::{ReceiverConfig, RunningReceiver};
use telemetry::{SpanExportStats, TelemetryConfig};

/// Spans of one profile request (the aggregator's trace): what the default
/// queue is sized by.
pub const SPANS_PER_REQUEST: usize = 7;

/// Requests per second of the load.
pub const RATE: u32 = 100;

/// Long enough to hold every span of the longest test.
pub async fn receiver() -> RunningReceiver {
    otlp_receiver::start(ReceiverConfig {
        max_traces: 100_000,
        ..ReceiverConfig::default()
    })
    .await
    .expect("receiver starts")
}

pub fn config(vars: &[(&str, String)]) -> TelemetryConfig {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    TelemetryConfig::from_lookup("outage-test", "0.0.1", |k| map.get(k).cloned())
        .expect("valid configuration")
}

/// Emits one trace of [`SPANS_PER_REQUEST`] spans every `1 / RATE` s on a
/// thread of its own until stopped; remembers every span id.
pub struct Load {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<String>>,
}

impl Load {
    pub fn start(provider: &SdkTracerProvider) -> Self {
        let tracer = provider.tracer("outage-test");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut ids = Vec::new();
            let period = Duration::from_secs(1) / RATE;
            let start = Instant::now();
            let mut n = 0u32;
            while !stopping.load(Ordering::SeqCst) {
                let root = tracer.start("GET /profile/{id}");
                ids.push(root.span_context().span_id().to_string());
                let cx = Context::current_with_span(root);
                for i in 1..SPANS_PER_REQUEST {
                    let mut child = tracer.start_with_context(format!("child {i}"), &cx);
                    ids.push(child.span_context().span_id().to_string());
                    child.end();
                }
                cx.span().end();
                n += 1;
                // A fixed schedule, so a slow moment does not lower the rate.
                let next = start + period * n;
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            ids
        });
        Self { stop, thread }
    }

    /// Stops the load; the ids of every span it ended.
    pub fn finish(self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().expect("load thread")
    }
}

/// Shuts the provider down off the runtime's threads (the gRPC exporter's
/// channel needs them).
pub async fn shut_down(provider: SdkTracerProvider) {
    tokio::task::spawn_blocking(move || provider.shutdown())
        .await
        .expect("shutdown task")
        .expect("a clean shutdown: everything exported");
}

/// Waits until the store holds `n` spans, then returns their ids.
pub async fn received_ids(receiver: &RunningReceiver, n: usize) -> HashSet<String> {
    let spans = receiver
        .store()
        .wait_for(Duration::from_secs(30), |spans| spans.len() >= n)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    spans.into_iter().map(|s| s.span_id).collect()
}

/// Takes the receiver down for `outage` and brings it back on the same
/// ports, checking that nothing arrives meanwhile (a real outage).
pub async fn outage_of(
    receiver: RunningReceiver,
    outage: Duration,
    stats: &SpanExportStats,
) -> RunningReceiver {
    let stopped = receiver.stop().await;
    let stored = stopped.store().spans().len();
    // An export answered just before the stop may be counted a moment later.
    let settle = Duration::from_millis(500);
    tokio::time::sleep(settle).await;
    let exported = stats.exported();
    tokio::time::sleep(outage - settle).await;
    assert_eq!(
        stopped.store().spans().len(),
        stored,
        "nothing arrives during the outage"
    );
    assert_eq!(
        stats.exported(),
        exported,
        "nothing is exported during the outage"
    );
    assert!(stats.failed_attempts() > 0, "export was tried and failed");
    stopped
        .restart()
        .await
        .expect("the receiver restarts on its ports")
}

/// Log lines written through `tracing`, kept for assertions.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Installs a global subscriber writing into the capture.
    pub fn install() -> Self {
        let captured = Self::default();
        let writer = captured.clone();
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        captured
    }

    pub fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
