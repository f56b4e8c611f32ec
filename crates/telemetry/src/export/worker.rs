//! The export thread: batches, exports, retries, reports.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use futures_util::future::{select, BoxFuture, Either};
use opentelemetry::Context;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use opentelemetry_sdk::Resource;

use super::encode::EncodedSpan;
use super::processor::{Shared, State};
use super::report::{ExportEvent, Reporter};
use super::stats::Counters;

/// What the queue keeps of an ended span until its batch is sent. It is
/// made in `on_end`, on the thread that ended the span: work done there is
/// done where the span's memory was allocated, and off the export thread.
pub trait Queued: Send + Sync + std::fmt::Debug + 'static {
    fn from_span(span: SpanData) -> Self;
}

/// For an SDK exporter: the span as it is.
impl Queued for SpanData {
    fn from_span(span: SpanData) -> Self {
        span
    }
}

/// For the direct sinks: the span encoded, its `SpanData` freed.
impl Queued for EncodedSpan {
    fn from_span(span: SpanData) -> Self {
        EncodedSpan::new(span)
    }
}

/// A batch as the worker holds it: shared, so that a sink can hand it to a
/// transport that owns what it sends (tonic's codec) without copying it,
/// and so that a batch kept for a retry is not copied for every attempt.
pub(crate) type Batch<I> = Arc<Vec<I>>;

/// Where the worker sends a batch.
pub(crate) trait BatchSink: Send + 'static {
    type Item: Queued;
    fn send<'a>(&'a self, batch: &'a Batch<Self::Item>) -> BoxFuture<'a, Result<(), String>>;
    fn set_resource(&mut self, resource: &Resource);
    fn shutdown(&mut self, timeout: Duration);
}

/// Any SDK exporter as a sink: it takes its batch by value, so each
/// attempt sends a copy.
pub(crate) struct SdkExporter<E>(pub(crate) E);

impl<E: SpanExporter + 'static> BatchSink for SdkExporter<E> {
    type Item = SpanData;

    fn send<'a>(&'a self, batch: &'a Batch<SpanData>) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.0
                .export(batch.to_vec())
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.0.set_resource(resource);
    }

    fn shutdown(&mut self, timeout: Duration) {
        let _ = self.0.shutdown_with_timeout(timeout);
    }
}

/// What the worker does next.
enum Job {
    /// Export (or retry) the batch in `pending`.
    Export,
    /// Flush until the deadline, then stop.
    Shutdown(Instant),
}

pub(crate) struct Worker<E: BatchSink> {
    exporter: E,
    shared: Arc<Shared<E::Item>>,
    sink: Box<dyn Fn(&ExportEvent) + Send>,
    reporter: Reporter,
    /// The batch being exported; kept across failed attempts.
    pending: Batch<E::Item>,
    /// Consecutive failed attempts at `pending`.
    failures: u32,
    /// When `pending` may be tried again.
    retry_at: Instant,
    last_export: Instant,
}

impl<E: BatchSink> Worker<E> {
    pub(crate) fn new(
        exporter: E,
        shared: Arc<Shared<E::Item>>,
        sink: Box<dyn Fn(&ExportEvent) + Send>,
    ) -> Self {
        let reporter = Reporter::new(shared.settings.report_interval);
        Self {
            exporter,
            shared,
            sink,
            reporter,
            pending: Batch::default(),
            failures: 0,
            retry_at: Instant::now(),
            last_export: Instant::now(),
        }
    }

    pub(crate) fn run(mut self) {
        // The exporter's own instrumentation must not feed spans back in.
        let _suppressed = Context::enter_telemetry_suppressed_scope();
        loop {
            let job = self.next_job();
            self.report_drops(false);
            match job {
                Job::Export => {
                    let limit = self.shared.settings.export_timeout;
                    self.export_pending(limit);
                }
                Job::Shutdown(deadline) => {
                    self.drain_until(deadline);
                    break;
                }
            }
        }
        let mut state = self.shared.lock();
        state.finished = true;
        drop(state);
        self.shared.progress.notify_all();
    }

    /// Waits until a batch is due (full, scheduled, flushed, or a retry's
    /// backoff over) and moves it to `pending`, or until shutdown. Wakes at
    /// least every report interval to report drops.
    fn next_job(&mut self) -> Job {
        let shared = self.shared.clone();
        let settings = shared.settings;
        let mut state = shared.lock();
        loop {
            if let Some(deadline) = state.shutdown_deadline {
                return Job::Shutdown(deadline);
            }
            let now = Instant::now();
            let wake_at = if !self.pending.is_empty() {
                if now >= self.retry_at {
                    return Job::Export;
                }
                self.retry_at
            } else {
                let full = state.queue.len() >= settings.max_export_batch_size;
                let flush = state.flush_wanted > state.settled;
                let scheduled = self.last_export + settings.scheduled_delay;
                if full || flush || (!state.queue.is_empty() && now >= scheduled) {
                    self.take_batch(&mut state);
                    return Job::Export;
                }
                if state.queue.is_empty() {
                    // `on_end` wakes the worker only for a full batch: look
                    // again one delay from now, so no span waits longer.
                    now + settings.scheduled_delay
                } else {
                    scheduled
                }
            };
            let wait = wake_at
                .saturating_duration_since(now)
                .min(settings.report_interval);
            let (guard, timed_out) = shared
                .work
                .wait_timeout(state, wait)
                .unwrap_or_else(PoisonError::into_inner);
            state = guard;
            if timed_out.timed_out() {
                drop(state);
                self.report_drops(false);
                state = shared.lock();
            }
        }
    }

    fn take_batch(&mut self, state: &mut State<E::Item>) {
        let n = state
            .queue
            .len()
            .min(self.shared.settings.max_export_batch_size);
        self.pending = Arc::new(state.queue.drain(..n).collect());
        state.in_flight = self.pending.len();
        self.failures = 0;
    }

    /// One attempt at `pending`, bounded by `limit`; on failure `pending` is
    /// kept and `retry_at` set by the backoff.
    fn export_pending(&mut self, limit: Duration) -> bool {
        if self.pending.is_empty() {
            return true;
        }
        if let Some(resource) = self.shared.lock().resource.take() {
            self.exporter.set_resource(&resource);
        }
        let outcome = self.attempt(limit);
        let now = Instant::now();
        self.last_export = now;
        let counters = &self.shared.counters;
        match outcome {
            Ok(()) => {
                let n = self.pending.len();
                self.pending = Batch::default();
                self.failures = 0;
                let mut state = self.shared.lock();
                let held = state.queue.len() + state.in_flight;
                state.in_flight = 0;
                state.settled += n as u64;
                if state.queue.is_empty() {
                    // An outage grew the queue's buffer; give it back once
                    // drained, so memory after an outage is what it was before.
                    let keep = self.shared.settings.max_export_batch_size;
                    state.queue.shrink_to(keep);
                }
                Counters::add(&counters.exported, n);
                self.shared.publish_held(&state);
                drop(state);
                self.shared.progress.notify_all();
                if let Some(event) = self
                    .reporter
                    .export_succeeded(now, held, counters.dropped())
                {
                    (self.sink)(&event);
                }
                true
            }
            Err(error) => {
                self.failures = self.failures.saturating_add(1);
                Counters::add(&counters.failed_attempts, 1);
                self.retry_at = now + self.shared.settings.backoff.delay(self.failures);
                let held = counters.held.load(Ordering::Relaxed);
                if let Some(event) =
                    self.reporter
                        .export_failed(now, &error, held, counters.dropped())
                {
                    (self.sink)(&event);
                }
                false
            }
        }
    }

    /// Drives the exporter's future on this thread, as the SDK's batch
    /// processor does (the tonic exporter's channel lives on the runtime it
    /// was built in; the blocking HTTP exporter must not run inside one),
    /// and gives up after `limit` whatever the exporter does.
    fn attempt(&self, limit: Duration) -> Result<(), String> {
        let export = self.exporter.send(&self.pending);
        let deadline = futures_timer::Delay::new(limit);
        match futures_executor::block_on(select(std::pin::pin!(export), deadline)) {
            Either::Left((Ok(()), _)) => Ok(()),
            Either::Left((Err(error), _)) => Err(error.to_string()),
            Either::Right(((), _)) => Err(format!(
                "export timed out after {} ms (OTEL_BSP_EXPORT_TIMEOUT)",
                limit.as_millis()
            )),
        }
    }

    /// Shutdown: export what is queued, retrying with backoff, until the
    /// deadline; whatever is left then is abandoned and counted.
    fn drain_until(&mut self, deadline: Instant) {
        loop {
            if self.pending.is_empty() {
                let shared = self.shared.clone();
                let mut state = shared.lock();
                if state.queue.is_empty() {
                    break;
                }
                self.take_batch(&mut state);
            }
            let now = Instant::now();
            if now >= deadline {
                self.abandon_everything();
                break;
            }
            let limit = self.shared.settings.export_timeout.min(deadline - now);
            if !self.export_pending(limit) {
                let pause = self.retry_at.min(deadline);
                std::thread::sleep(pause.saturating_duration_since(Instant::now()));
            }
        }
        let remaining = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(100));
        self.exporter.shutdown(remaining);
        self.report_drops(true);
        let counters = &self.shared.counters;
        (self.sink)(&ExportEvent::ShutDown {
            exported: counters.exported.load(Ordering::Relaxed),
            dropped: counters.dropped(),
            abandoned: counters.abandoned.load(Ordering::Relaxed),
        });
    }

    fn abandon_everything(&mut self) {
        let mut state = self.shared.lock();
        let n = self.pending.len() + state.queue.len();
        self.pending = Batch::default();
        state.queue.clear();
        state.in_flight = 0;
        state.settled += n as u64;
        Counters::add(&self.shared.counters.abandoned, n);
        self.shared.publish_held(&state);
        drop(state);
        self.shared.progress.notify_all();
    }

    fn report_drops(&mut self, force: bool) {
        let counters = &self.shared.counters;
        if let Some(event) = self.reporter.drops(
            Instant::now(),
            counters.dropped(),
            self.shared.settings.max_queue_size,
            force,
        ) {
            (self.sink)(&event);
        }
    }
}
