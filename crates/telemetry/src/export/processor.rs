//! The span processor: a bounded queue in front of one export thread.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use opentelemetry::Context;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};
use opentelemetry_sdk::Resource;

use super::report::{self, ExportEvent};
use super::stats::{Counters, SpanExportStats};
use super::worker::{BatchSink, Queued, SdkExporter, Worker};
use super::ExportSettings;

/// How long `shutdown` waits past its deadline for the worker to notice it:
/// an attempt in progress ends at the deadline at the latest, then the
/// worker reports and shuts the exporter down.
const SHUTDOWN_SLACK: Duration = Duration::from_millis(500);

/// A batching span processor that keeps failed batches and retries them.
///
/// `on_end` only appends to a bounded queue (or counts a drop): it never
/// blocks and never logs, since it runs inside whatever code ended the span.
/// One thread (`worker.rs`) takes batches from the queue, exports them
/// and reports.
///
/// What the queue holds is `I`: the span itself for an SDK exporter, the
/// span already encoded for the direct sinks.
#[derive(Debug)]
pub struct RetryingBatchProcessor<I = SpanData> {
    shared: Arc<Shared<I>>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

/// What `on_end`, `force_flush`, `shutdown` and the worker share.
#[derive(Debug)]
pub(crate) struct Shared<I> {
    pub(crate) state: Mutex<State<I>>,
    /// Wakes the worker: a full batch, a flush, a shutdown.
    pub(crate) work: Condvar,
    /// Wakes `force_flush` and `shutdown` callers: spans settled, worker done.
    pub(crate) progress: Condvar,
    pub(crate) counters: Arc<Counters>,
    pub(crate) settings: ExportSettings,
}

#[derive(Debug)]
pub(crate) struct State<I> {
    pub(crate) queue: VecDeque<I>,
    /// Spans taken by the worker and not yet exported (or abandoned).
    pub(crate) in_flight: usize,
    /// Spans ever accepted into the queue.
    pub(crate) accepted: u64,
    /// Spans ever exported or abandoned; the queue is FIFO, so every span
    /// accepted before number `settled` is settled.
    pub(crate) settled: u64,
    /// `force_flush` asked for every span up to this number to be settled.
    pub(crate) flush_wanted: u64,
    /// Set once by `shutdown`: flush until then, then give up.
    pub(crate) shutdown_deadline: Option<Instant>,
    /// The worker has ended.
    pub(crate) finished: bool,
    /// A resource set by the provider, for the worker to hand its exporter.
    pub(crate) resource: Option<Resource>,
}

impl<I> Default for State<I> {
    fn default() -> Self {
        Self {
            queue: VecDeque::new(),
            in_flight: 0,
            accepted: 0,
            settled: 0,
            flush_wanted: 0,
            shutdown_deadline: None,
            finished: false,
            resource: None,
        }
    }
}

impl<I> Shared<I> {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State<I>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn publish_held(&self, state: &State<I>) {
        self.counters.held.store(
            state.queue.len() + state.in_flight,
            std::sync::atomic::Ordering::Relaxed,
        );
    }
}

impl RetryingBatchProcessor<SpanData> {
    /// Starts the export thread.
    pub fn new<E>(exporter: E, settings: ExportSettings) -> Self
    where
        E: SpanExporter + 'static,
    {
        Self::with_reporter(exporter, settings, Box::new(report::log))
    }

    /// As [`new`](Self::new), with the report lines going to `sink` (tests).
    pub(crate) fn with_reporter<E>(
        exporter: E,
        settings: ExportSettings,
        sink: Box<dyn Fn(&ExportEvent) + Send>,
    ) -> Self
    where
        E: SpanExporter + 'static,
    {
        Self::start(SdkExporter(exporter), settings, sink)
    }
}

impl<I: Queued> RetryingBatchProcessor<I> {
    /// Starts the export thread in front of any [`BatchSink`].
    pub(crate) fn start<S: BatchSink<Item = I>>(
        exporter: S,
        settings: ExportSettings,
        sink: Box<dyn Fn(&ExportEvent) + Send>,
    ) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            progress: Condvar::new(),
            counters: Arc::new(Counters::default()),
            settings,
        });
        let worker = Worker::new(exporter, shared.clone(), sink);
        let handle = std::thread::Builder::new()
            .name("latency-lab-span-export".into())
            .spawn(move || worker.run())
            .map_err(|e| eprintln!("telemetry: could not start the span export thread: {e}"))
            .ok();
        if handle.is_none() {
            // No worker: every span will be counted as dropped.
            let mut state = shared.lock();
            state.shutdown_deadline = Some(Instant::now());
            state.finished = true;
        }
        Self {
            shared,
            worker: Mutex::new(handle),
        }
    }

    /// The queue's counts, live.
    pub fn stats(&self) -> SpanExportStats {
        SpanExportStats::new(
            self.shared.counters.clone(),
            self.shared.settings.max_queue_size,
        )
    }
}

impl<I: Queued> SpanProcessor for RetryingBatchProcessor<I> {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        let counters = &self.shared.counters;
        // A full queue (an outage, an overload) drops the span: do not
        // encode it first. `held` is published under the lock, so this
        // reads it at most a moment late; the check under the lock decides.
        if counters.held.load(std::sync::atomic::Ordering::Relaxed)
            >= self.shared.settings.max_queue_size
        {
            Counters::add(&counters.dropped_queue_full, 1);
            return;
        }
        // Before the lock: encoding (for the direct sinks) is the costly part.
        let item = I::from_span(span);
        let mut state = self.shared.lock();
        if state.shutdown_deadline.is_some() {
            drop(state);
            Counters::add(&counters.dropped_after_shutdown, 1);
            return;
        }
        if state.queue.len() + state.in_flight >= self.shared.settings.max_queue_size {
            drop(state);
            Counters::add(&counters.dropped_queue_full, 1);
            return;
        }
        state.queue.push_back(item);
        state.accepted += 1;
        self.shared.publish_held(&state);
        let batch_ready = state.queue.len() == self.shared.settings.max_export_batch_size;
        drop(state);
        if batch_ready {
            self.shared.work.notify_one();
        }
    }

    /// Exports every span ended before the call, waiting up to the export
    /// timeout; during an outage it times out and the spans stay queued.
    fn force_flush(&self) -> OTelSdkResult {
        let timeout = self.shared.settings.export_timeout;
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        if state.finished {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        let target = state.accepted;
        state.flush_wanted = state.flush_wanted.max(target);
        self.shared.work.notify_one();
        while state.settled < target && !state.finished {
            let now = Instant::now();
            if now >= deadline {
                return Err(OTelSdkError::Timeout(timeout));
            }
            state = self
                .shared
                .progress
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        if state.settled >= target {
            Ok(())
        } else {
            Err(OTelSdkError::InternalFailure(
                "the export thread ended before the flush completed".into(),
            ))
        }
    }

    /// Exports what is queued for at most `timeout`, then gives up on the
    /// rest (counted as abandoned, and reported).
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        if state.shutdown_deadline.is_some() && !state.finished {
            // A second call while the first is still flushing.
            return Err(OTelSdkError::AlreadyShutdown);
        }
        if state.finished {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        state.shutdown_deadline = Some(deadline);
        self.shared.work.notify_one();
        let give_up_at = deadline + SHUTDOWN_SLACK;
        while !state.finished {
            let now = Instant::now();
            if now >= give_up_at {
                return Err(OTelSdkError::Timeout(timeout));
            }
            state = self
                .shared
                .progress
                .wait_timeout(state, give_up_at - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        drop(state);
        let handle = self
            .worker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
        let abandoned = self.stats().abandoned();
        if abandoned > 0 {
            return Err(OTelSdkError::InternalFailure(format!(
                "{abandoned} spans could not be exported before the shutdown deadline"
            )));
        }
        Ok(())
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.shared.lock().resource = Some(resource.clone());
    }
}

impl<I> Drop for RetryingBatchProcessor<I> {
    /// Without a `shutdown`, the worker is told to stop at once (what is
    /// queued is counted as abandoned) and is not waited for.
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        if state.shutdown_deadline.is_none() {
            state.shutdown_deadline = Some(Instant::now());
            self.shared.work.notify_one();
        }
    }
}
