//! What happened to the spans handed to the export queue, counted exactly.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// The counters the processor and its worker update.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) exported: AtomicU64,
    pub(crate) dropped_queue_full: AtomicU64,
    pub(crate) dropped_after_shutdown: AtomicU64,
    pub(crate) abandoned: AtomicU64,
    pub(crate) failed_attempts: AtomicU64,
    /// Spans in memory: queued plus the batch being exported or retried.
    pub(crate) held: AtomicUsize,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped_queue_full.load(Ordering::Relaxed)
            + self.dropped_after_shutdown.load(Ordering::Relaxed)
    }
}

/// A read-only view of a span export queue's counts, for tests, logs and
/// the `otel.sdk.processor.span.*` metrics. Cheap to clone.
///
/// Every span handed to the processor ends up in exactly one of
/// [`exported`](Self::exported), [`dropped`](Self::dropped),
/// [`abandoned`](Self::abandoned) or [`held`](Self::held).
#[derive(Debug, Clone)]
pub struct SpanExportStats {
    counters: Arc<Counters>,
    capacity: usize,
}

impl SpanExportStats {
    pub(crate) fn new(counters: Arc<Counters>, capacity: usize) -> Self {
        Self { counters, capacity }
    }

    /// Spans the collector accepted.
    pub fn exported(&self) -> u64 {
        self.counters.exported.load(Ordering::Relaxed)
    }

    /// Spans refused on arrival: the queue was full, or the processor had
    /// been shut down.
    pub fn dropped(&self) -> u64 {
        self.counters.dropped()
    }

    /// Spans refused because the queue was full.
    pub fn dropped_queue_full(&self) -> u64 {
        self.counters.dropped_queue_full.load(Ordering::Relaxed)
    }

    /// Spans still queued when shutdown's deadline passed with the collector
    /// unreachable.
    pub fn abandoned(&self) -> u64 {
        self.counters.abandoned.load(Ordering::Relaxed)
    }

    /// Spans that will never be exported: dropped plus abandoned.
    pub fn lost(&self) -> u64 {
        self.dropped() + self.abandoned()
    }

    /// Export attempts that failed (each was retried, or abandoned at
    /// shutdown).
    pub fn failed_attempts(&self) -> u64 {
        self.counters.failed_attempts.load(Ordering::Relaxed)
    }

    /// Spans in memory now: queued, or in the batch being exported.
    pub fn held(&self) -> usize {
        self.counters.held.load(Ordering::Relaxed)
    }

    /// `OTEL_BSP_MAX_QUEUE_SIZE`: the most spans [`held`](Self::held) can be.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}
