//! A phase's traces followed as `up` and `view` follow them (the same
//! [`Follower`] and completion rule), to measure what a person watching
//! would have seen: how many spans each trace had the first time it would
//! have been printed, and whether it was printed again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use otlp_receiver::{CollectedSpan, SpanStore};
use tokio_util::sync::CancellationToken;
use trace_view::model::collected_trace_id;
use trace_view::TraceId;

use crate::up::completion::Shape;
use crate::up::follow::{Follower, Sink, Timing, TICK};

/// What would have printed, per trace.
#[derive(Debug, Default, Clone)]
pub struct Shown {
    /// Spans of the trace when first printed.
    pub first: HashMap<TraceId, usize>,
    /// Spans when last printed (more than `first` when printed again).
    pub last: HashMap<TraceId, usize>,
}

impl Sink for Shown {
    fn shown_spans(&self, id: TraceId) -> Option<usize> {
        self.last.get(&id).copied()
    }

    fn ignores(&self, _id: TraceId) -> bool {
        false
    }

    fn show(&mut self, spans: &[CollectedSpan], _shape: Shape) {
        if let Some(id) = spans.first().and_then(collected_trace_id) {
            self.first.entry(id).or_insert(spans.len());
            self.last.insert(id, spans.len());
        }
    }

    fn evicted(&mut self, _id: TraceId) {}
}

/// A follow loop running beside a phase.
pub struct Following {
    shown: Arc<Mutex<Shown>>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Following {
    /// Subscribes to `store` now (before the phase sends) and follows.
    pub fn start(store: SpanStore, timing: Timing) -> Self {
        let shown = Arc::new(Mutex::new(Shown::default()));
        let stop = CancellationToken::new();
        let mut feed = store.subscribe();
        let task = tokio::spawn({
            let shown = shown.clone();
            let stop = stop.clone();
            async move {
                let mut follower = Follower::new(timing);
                let mut tick = tokio::time::interval(TICK);
                loop {
                    tokio::select! {
                        batch = feed.recv() => {
                            if let Ok(batch) = batch {
                                follower.arrived(&batch, &*shown.lock().unwrap());
                            }
                        }
                        _ = tick.tick() => follower.tick(&store, &mut *shown.lock().unwrap()),
                        () = stop.cancelled() => break,
                    }
                }
            }
        });
        Following { shown, stop, task }
    }

    /// Waits until every trace of `expected` has printed once (at most
    /// `limit`), then `after` more for late spans to print again; stops.
    pub async fn finish(self, expected: &[TraceId], after: Duration, limit: Duration) -> Shown {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            let all = {
                let shown = self.shown.lock().unwrap();
                expected.iter().all(|id| shown.first.contains_key(id))
            };
            if all {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(after).await;
        self.stop.cancel();
        let _ = self.task.await;
        let shown = self.shown.lock().unwrap().clone();
        shown
    }
}
