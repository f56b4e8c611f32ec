//! The bounded, shared store of received spans, and the waits that tests synchronise on.
//!
//! Spans arrive asynchronously (exporters batch and retry), so tests must not sleep and hope:
//! they wait on the store, which wakes the waiter on every insert. The store is bounded by
//! trace count because the all-in-one lab keeps it for the whole life of the process; whole
//! traces are evicted so a trace is never shown half-missing.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use crate::error::ReceiverError;
use crate::model::CollectedSpan;

/// How many inserted batches a slow live subscriber may lag behind before it starts missing
/// some (it then gets `RecvError::Lagged`, never blocks the receiver).
const BROADCAST_CAPACITY: usize = 1024;

/// Shared, cloneable (an `Arc` inside) store of received spans, grouped by trace and bounded
/// by a number of traces. Clones see the same spans.
#[derive(Debug, Clone)]
pub struct SpanStore {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    inner: Mutex<Inner>,
    /// Bumped on every change; `wait_for` waits on it. A `watch` (unlike a bare `Notify`)
    /// cannot lose a wake-up that happens between checking the predicate and starting to wait.
    changed: watch::Sender<u64>,
    batches: broadcast::Sender<Vec<CollectedSpan>>,
}

#[derive(Debug)]
struct Inner {
    max_traces: usize,
    next_seq: u64,
    /// Every stored span keyed by arrival sequence: iteration order is arrival order.
    spans: BTreeMap<u64, CollectedSpan>,
    /// Lowercased trace id → sequence numbers of its spans, in arrival order.
    traces: HashMap<String, Vec<u64>>,
    /// Lowercased trace ids in order of first arrival; the front is evicted first.
    order: VecDeque<String>,
    dropped_traces: u64,
}

impl SpanStore {
    /// A store keeping at most `max_traces` traces (at least one: a store that could hold
    /// nothing would make every wait time out, which is never what a caller means).
    pub fn new(max_traces: usize) -> Self {
        let (changed, _) = watch::channel(0);
        let (batches, _) = broadcast::channel(BROADCAST_CAPACITY);
        Self {
            shared: Arc::new(Shared {
                inner: Mutex::new(Inner {
                    max_traces: max_traces.max(1),
                    next_seq: 0,
                    spans: BTreeMap::new(),
                    traces: HashMap::new(),
                    order: VecDeque::new(),
                    dropped_traces: 0,
                }),
                changed,
                batches,
            }),
        }
    }

    /// Adds a batch. A span of a trace not yet stored, arriving while the store is full,
    /// evicts the oldest trace (by first arrival) whole. Wakes every waiter and forwards the
    /// batch to subscribers.
    pub fn insert(&self, spans: Vec<CollectedSpan>) {
        if spans.is_empty() {
            return;
        }
        {
            let mut inner = self.lock();
            for span in &spans {
                inner.push(span.clone());
            }
        }
        self.shared
            .changed
            .send_modify(|generation| *generation += 1);
        // An error only means nobody is subscribed right now.
        let _ = self.shared.batches.send(spans);
    }

    /// All stored spans, in arrival order.
    pub fn spans(&self) -> Vec<CollectedSpan> {
        self.lock().spans.values().cloned().collect()
    }

    /// The spans of one trace in arrival order; the id is compared case-insensitively.
    pub fn trace(&self, trace_id: &str) -> Vec<CollectedSpan> {
        let inner = self.lock();
        inner
            .traces
            .get(&trace_id.to_ascii_lowercase())
            .map(|seqs| {
                seqs.iter()
                    .filter_map(|seq| inner.spans.get(seq).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Stored trace ids (lowercase) in order of first arrival.
    pub fn trace_ids(&self) -> Vec<String> {
        self.lock().order.iter().cloned().collect()
    }

    /// How many whole traces were evicted to respect the bound.
    pub fn dropped_traces(&self) -> u64 {
        self.lock().dropped_traces
    }

    /// Forgets every span (the dropped count too), e.g. between the scenarios of one test.
    pub fn clear(&self) {
        {
            let mut inner = self.lock();
            inner.spans.clear();
            inner.traces.clear();
            inner.order.clear();
            inner.dropped_traces = 0;
        }
        self.shared
            .changed
            .send_modify(|generation| *generation += 1);
    }

    /// Waits until `pred(all spans)` holds or `timeout` passes. Re-checks on every insert
    /// (no polling delay). On timeout the error carries the last snapshot.
    pub async fn wait_for<F: Fn(&[CollectedSpan]) -> bool>(
        &self,
        timeout: Duration,
        pred: F,
    ) -> Result<Vec<CollectedSpan>, ReceiverError> {
        self.wait_until(timeout, || {
            let spans = self.spans();
            if pred(&spans) {
                Ok(spans)
            } else {
                Err(spans)
            }
        })
        .await
    }

    /// Waits until the trace has at least `n` spans and returns that trace's spans. On
    /// timeout the error carries the spans of that trace seen so far (not the whole store),
    /// matching what success returns.
    pub async fn wait_for_trace(
        &self,
        trace_id: &str,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<CollectedSpan>, ReceiverError> {
        self.wait_until(timeout, || {
            let spans = self.trace(trace_id);
            if spans.len() >= n {
                Ok(spans)
            } else {
                Err(spans)
            }
        })
        .await
    }

    /// A receiver of every batch inserted from now on, for live consumers (e.g. the lab UI).
    pub fn subscribe(&self) -> broadcast::Receiver<Vec<CollectedSpan>> {
        self.shared.batches.subscribe()
    }

    /// The wait loop: mark the current generation seen *before* checking, so an insert that
    /// lands between the check and the wait still wakes us.
    async fn wait_until<C>(
        &self,
        timeout: Duration,
        check: C,
    ) -> Result<Vec<CollectedSpan>, ReceiverError>
    where
        C: Fn() -> Result<Vec<CollectedSpan>, Vec<CollectedSpan>>,
    {
        let started = Instant::now();
        let deadline = started + timeout;
        let mut changes = self.shared.changed.subscribe();
        loop {
            changes.borrow_and_update();
            if let Ok(spans) = check() {
                return Ok(spans);
            }
            // The sender lives in `self`, so `changed()` cannot report a closed channel here;
            // treat it like a timeout anyway rather than spin.
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) | Err(_) => {
                    // One last look: the change that raced the deadline may have satisfied it.
                    return check().map_err(|spans| ReceiverError::Timeout {
                        waited: started.elapsed(),
                        spans,
                    });
                }
            }
        }
    }

    /// Never panics on a poisoned lock: the data is plain values, still consistent enough to
    /// read, and a receiver that stops answering would hide the original panic's cause.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.shared
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Inner {
    fn push(&mut self, span: CollectedSpan) {
        let key = span.trace_id.to_ascii_lowercase();
        if !self.traces.contains_key(&key) {
            while self.order.len() >= self.max_traces {
                let Some(oldest) = self.order.pop_front() else {
                    break;
                };
                for seq in self.traces.remove(&oldest).unwrap_or_default() {
                    self.spans.remove(&seq);
                }
                self.dropped_traces += 1;
            }
            self.order.push_back(key.clone());
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.spans.insert(seq, span);
        self.traces.entry(key).or_default().push(seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{SpanKind, StatusCode};

    fn span(trace: &str, name: &str) -> CollectedSpan {
        CollectedSpan {
            service_name: "svc".into(),
            resource: Default::default(),
            scope_name: String::new(),
            trace_id: trace.into(),
            span_id: format!("{:0>16}", name.len()),
            parent_span_id: None,
            trace_state: String::new(),
            flags: 1,
            name: name.into(),
            kind: SpanKind::Internal,
            start_unix_nanos: 0,
            end_unix_nanos: 1,
            attributes: Default::default(),
            events: vec![],
            links: vec![],
            status_code: StatusCode::Unset,
            status_message: String::new(),
        }
    }

    fn names(spans: &[CollectedSpan]) -> Vec<&str> {
        spans.iter().map(|s| s.name.as_str()).collect()
    }

    #[test]
    fn groups_spans_by_trace_keeping_arrival_order() {
        let store = SpanStore::new(10);
        store.insert(vec![span("t1", "a"), span("t2", "b")]);
        store.insert(vec![span("t1", "c")]);
        assert_eq!(names(&store.spans()), ["a", "b", "c"]);
        assert_eq!(names(&store.trace("t1")), ["a", "c"]);
        assert_eq!(names(&store.trace("t2")), ["b"]);
        assert!(store.trace("t3").is_empty());
        assert_eq!(store.trace_ids(), ["t1", "t2"]);
        assert_eq!(store.dropped_traces(), 0);
    }

    #[test]
    fn trace_lookup_ignores_case() {
        let store = SpanStore::new(10);
        store.insert(vec![span("ABCDEF", "a")]);
        store.insert(vec![span("abcdef", "b")]);
        assert_eq!(names(&store.trace("AbCdEf")), ["a", "b"]);
        assert_eq!(store.trace_ids(), ["abcdef"]);
    }

    #[test]
    fn evicts_the_oldest_trace_whole_when_a_new_trace_arrives_full() {
        let store = SpanStore::new(2);
        store.insert(vec![span("t1", "a1"), span("t2", "b1")]);
        // A span of a trace already stored never evicts, even when full.
        store.insert(vec![span("t1", "a2")]);
        assert_eq!(store.dropped_traces(), 0);
        assert_eq!(store.spans().len(), 3);

        // t1 arrived first, so it goes (with both spans) although it was updated last.
        store.insert(vec![span("t3", "c1")]);
        assert_eq!(store.dropped_traces(), 1);
        assert_eq!(store.trace_ids(), ["t2", "t3"]);
        assert!(store.trace("t1").is_empty());
        assert_eq!(names(&store.spans()), ["b1", "c1"]);

        store.insert(vec![span("t4", "d1"), span("t5", "e1")]);
        assert_eq!(store.dropped_traces(), 3);
        assert_eq!(store.trace_ids(), ["t4", "t5"]);
        assert_eq!(names(&store.spans()), ["d1", "e1"]);

        // An evicted trace that comes back is a new trace again.
        store.insert(vec![span("t1", "a3")]);
        assert_eq!(store.trace_ids(), ["t5", "t1"]);
        assert_eq!(names(&store.trace("t1")), ["a3"]);
        assert_eq!(store.dropped_traces(), 4);
    }

    #[test]
    fn a_zero_bound_still_keeps_the_latest_trace() {
        let store = SpanStore::new(0);
        store.insert(vec![span("t1", "a")]);
        store.insert(vec![span("t2", "b")]);
        assert_eq!(store.trace_ids(), ["t2"]);
        assert_eq!(store.dropped_traces(), 1);
    }

    #[test]
    fn clear_forgets_everything_and_clones_share_state() {
        let store = SpanStore::new(1);
        let clone = store.clone();
        clone.insert(vec![span("t1", "a")]);
        clone.insert(vec![span("t2", "b")]);
        assert_eq!(names(&store.spans()), ["b"]);
        assert_eq!(store.dropped_traces(), 1);
        store.clear();
        assert!(clone.spans().is_empty());
        assert!(clone.trace_ids().is_empty());
        assert_eq!(clone.dropped_traces(), 0);
    }

    #[tokio::test]
    async fn wait_for_wakes_on_insert() {
        let store = SpanStore::new(10);
        let writer = store.clone();
        let started = std::time::Instant::now();
        let task = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            writer.insert(vec![span("t1", "late")]);
        });
        let spans = store
            .wait_for(Duration::from_secs(5), |spans| {
                spans.iter().any(|s| s.name == "late")
            })
            .await
            .expect("the insert should satisfy the wait");
        let waited = started.elapsed();
        assert_eq!(names(&spans), ["late"]);
        assert!(
            waited >= Duration::from_millis(50),
            "returned before the insert: {waited:?}"
        );
        assert!(
            waited < Duration::from_secs(1),
            "did not wake on insert: {waited:?}"
        );
        task.await.unwrap();
    }

    #[tokio::test]
    async fn wait_for_returns_at_once_when_already_true() {
        let store = SpanStore::new(10);
        store.insert(vec![span("t1", "a")]);
        let started = std::time::Instant::now();
        let spans = store
            .wait_for(Duration::from_secs(5), |s| !s.is_empty())
            .await
            .unwrap();
        assert_eq!(spans.len(), 1);
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test]
    async fn wait_for_times_out_carrying_the_last_snapshot() {
        let store = SpanStore::new(10);
        store.insert(vec![span("t1", "only")]);
        let timeout = Duration::from_millis(100);
        let err = store
            .wait_for(timeout, |spans| spans.len() >= 2)
            .await
            .expect_err("only one span was ever inserted");
        let message = err.to_string();
        match err {
            ReceiverError::Timeout { waited, spans } => {
                assert!(waited >= timeout, "gave up early: {waited:?}");
                assert_eq!(names(&spans), ["only"]);
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert!(message.contains("1 span"), "{message}");
    }

    #[tokio::test]
    async fn wait_for_rechecks_after_non_matching_inserts() {
        let store = SpanStore::new(10);
        let writer = store.clone();
        let task = tokio::spawn(async move {
            for i in 0..3 {
                tokio::time::sleep(Duration::from_millis(20)).await;
                writer.insert(vec![span("t1", &format!("s{i}"))]);
            }
        });
        let spans = store
            .wait_for(Duration::from_secs(5), |s| s.len() == 3)
            .await
            .unwrap();
        assert_eq!(names(&spans), ["s0", "s1", "s2"]);
        task.await.unwrap();
    }

    #[tokio::test]
    async fn wait_for_trace_returns_only_that_trace() {
        let store = SpanStore::new(10);
        let writer = store.clone();
        let task = tokio::spawn(async move {
            writer.insert(vec![span("other", "x")]);
            tokio::time::sleep(Duration::from_millis(30)).await;
            writer.insert(vec![span("T1", "a")]);
            tokio::time::sleep(Duration::from_millis(30)).await;
            writer.insert(vec![span("t1", "b"), span("other", "y")]);
        });
        let spans = store
            .wait_for_trace("t1", 2, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(names(&spans), ["a", "b"]);
        task.await.unwrap();

        let err = store
            .wait_for_trace("t1", 3, Duration::from_millis(50))
            .await
            .unwrap_err();
        let ReceiverError::Timeout { spans, .. } = err else {
            panic!("expected a timeout, got {err:?}");
        };
        assert_eq!(names(&spans), ["a", "b"]);
    }

    #[tokio::test]
    async fn subscribers_get_every_batch_inserted_after_subscribing() {
        let store = SpanStore::new(10);
        store.insert(vec![span("t0", "before")]);
        let mut rx = store.subscribe();
        store.insert(vec![span("t1", "a"), span("t1", "b")]);
        store.insert(vec![]);
        store.insert(vec![span("t2", "c")]);
        assert_eq!(names(&rx.recv().await.unwrap()), ["a", "b"]);
        assert_eq!(names(&rx.recv().await.unwrap()), ["c"]);
        assert!(rx.try_recv().is_err());
    }
}
