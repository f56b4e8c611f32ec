//! Following the traces that arrive in the embedded receiver: the spans one
//! demo request makes, a trace once its spans stop arriving, and every new
//! trace once it is complete ([`super::completion`]), again if spans of it
//! come late.
//!
//! The receiver names traces by text; here they become [`TraceId`]s as they
//! come out of it ([`collected_trace_id`], [`known_traces`]), so `up`
//! compares and prints one form only.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::bail;
use otlp_receiver::{CollectedSpan, RunningReceiver, SpanStore};
use tokio::sync::broadcast;
use trace_view::model::collected_trace_id;
use trace_view::TraceId;

use super::completion::{Completion, Decision, Shape};
use super::stats;
use super::view::TraceView;

/// Spans one profile request produces across the three services.
const DEMO_SPANS: usize = 7;

/// How long the demo waits for a request's spans.
const DEMO_WAIT: Duration = Duration::from_secs(30);

/// The traces the receiver holds now (their later spans are not a new
/// request's).
pub(super) fn known_traces(receiver: &RunningReceiver) -> HashSet<TraceId> {
    receiver
        .store()
        .trace_ids()
        .iter()
        .filter_map(|id| TraceId::parse(id).ok())
        .collect()
}

/// The spans of one demo request, by trace in order of arrival.
///
/// Whatever the mode, one profile request makes seven spans: aggregator
/// server + 2 clients + 2 downstream servers + 2 db spans — in one trace, or
/// (unlinked) spread over three.
pub(super) async fn request_traces(
    batches: &mut broadcast::Receiver<Vec<CollectedSpan>>,
    known: &HashSet<TraceId>,
) -> anyhow::Result<Vec<Vec<CollectedSpan>>> {
    let spans = new_spans(batches, known, DEMO_SPANS).await?;
    let mut traces: Vec<(TraceId, Vec<CollectedSpan>)> = Vec::new();
    for span in spans {
        let Some(id) = collected_trace_id(&span) else {
            continue;
        };
        match traces.iter_mut().find(|(t, _)| *t == id) {
            Some((_, group)) => group.push(span),
            None => traces.push((id, vec![span])),
        }
    }
    Ok(traces.into_iter().map(|(_, spans)| spans).collect())
}

/// The spans of a trace once they stop arriving (at most [`DEMO_WAIT`]).
pub(super) async fn settled_trace(
    receiver: &RunningReceiver,
    trace_id: TraceId,
) -> Option<Vec<CollectedSpan>> {
    let store = receiver.store();
    let trace_id = trace_id.to_string();
    let deadline = Instant::now() + DEMO_WAIT;
    store.wait_for_trace(&trace_id, 1, DEMO_WAIT).await.ok()?;
    let mut seen = 0;
    while Instant::now() < deadline {
        let spans = store.trace(&trace_id);
        if !spans.is_empty() && spans.len() == seen {
            return Some(spans);
        }
        seen = spans.len();
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    Some(store.trace(&trace_id)).filter(|s| !s.is_empty())
}

/// Collects, from the store's live feed, `n` spans of traces not in `known`.
async fn new_spans(
    batches: &mut broadcast::Receiver<Vec<CollectedSpan>>,
    known: &HashSet<TraceId>,
    n: usize,
) -> anyhow::Result<Vec<CollectedSpan>> {
    let mut spans = Vec::new();
    let deadline = tokio::time::Instant::now() + DEMO_WAIT;
    while spans.len() < n {
        match tokio::time::timeout_at(deadline, batches.recv()).await {
            Ok(Ok(batch)) => spans.extend(
                batch
                    .into_iter()
                    .filter(|s| collected_trace_id(s).is_some_and(|id| !known.contains(&id))),
            ),
            Ok(Err(broadcast::error::RecvError::Lagged(missed))) => {
                bail!("missed {missed} span batches (the machine is overloaded)")
            }
            Ok(Err(broadcast::error::RecvError::Closed)) => bail!("the receiver stopped"),
            Err(_) => bail!("{} of {n} spans within {DEMO_WAIT:?}", spans.len()),
        }
    }
    Ok(spans)
}

/// Prints each trace once it is complete ([`Completion`]: quiet and whole,
/// or waited `timing.max_wait`), again when spans of it come late, and the
/// latency table whenever `stats` asks for it.
pub(super) async fn follow_new_traces(
    receiver: &RunningReceiver,
    view: &mut TraceView,
    stats: &mut stats::Triggers,
    timing: Timing,
) {
    let store = receiver.store();
    let mut updates = store.subscribe();
    let mut follower = Follower::new(timing);
    follower.seed(&store.trace_ids(), view);
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            batch = updates.recv() => {
                // A lagged feed only delays printing: the store has the spans.
                if let Ok(batch) = batch {
                    follower.arrived(&batch, view);
                }
            }
            _ = tick.tick() => {
                follower.tick(store, view);
                view.report_dropped(Some(receiver));
            }
            when = stats.next() => stats::print(receiver, view, when),
        }
    }
}

/// How often quiet traces are looked at.
pub(crate) const TICK: Duration = Duration::from_millis(250);

/// What a [`Follower`] shows complete traces on: `up`'s and `view`'s
/// [`TraceView`], or a scenario's record of what would have printed.
pub(crate) trait Sink {
    /// How many spans `id` had when last shown; `None` if never.
    fn shown_spans(&self, id: TraceId) -> Option<usize>;
    /// Traces not to follow (a load run's, summed up elsewhere).
    fn ignores(&self, id: TraceId) -> bool;
    /// Shows a complete trace (again, with late spans); `shape` says what
    /// it lacks when shown before it was whole.
    fn show(&mut self, spans: &[CollectedSpan], shape: Shape);
    /// `id` left the store before it was shown.
    fn evicted(&mut self, id: TraceId);
}

/// The follow loop's decisions, apart from where the spans come from and
/// where traces go: [`Completion`] fed by arrivals, asked on every tick.
pub(crate) struct Follower {
    completion: Completion,
}

impl Follower {
    pub(crate) fn new(timing: Timing) -> Self {
        Follower {
            completion: Completion::new(timing.quiet, timing.max_wait),
        }
    }

    /// Traces already in the store before the feed was subscribed to (an
    /// app that exported the moment the receiver listened).
    pub(crate) fn seed(&mut self, ids: &[String], sink: &impl Sink) {
        let now = Instant::now();
        for id in ids.iter().filter_map(|id| TraceId::parse(id).ok()) {
            if sink.shown_spans(id).is_none() && !sink.ignores(id) {
                self.completion.arrived(id, false, now);
            }
        }
    }

    /// A batch of spans arrived.
    pub(crate) fn arrived(&mut self, batch: &[CollectedSpan], sink: &impl Sink) {
        let now = Instant::now();
        let ids: HashSet<TraceId> = batch.iter().filter_map(collected_trace_id).collect();
        for id in ids {
            let shown = sink.shown_spans(id).is_some();
            if shown || !sink.ignores(id) {
                self.completion.arrived(id, shown, now);
            }
        }
    }

    /// Shows every trace that is complete now.
    pub(crate) fn tick(&mut self, store: &SpanStore, sink: &mut impl Sink) {
        let now = Instant::now();
        for id in self.completion.quiet_traces(now) {
            let spans = store.trace(&id.to_string());
            if spans.is_empty() {
                self.completion.forget(id);
                sink.evicted(id);
                continue;
            }
            if sink.shown_spans(id) == Some(spans.len()) {
                // Nothing new (a span sent twice).
                self.completion.forget(id);
                continue;
            }
            let shape = Shape::of(&spans);
            if let Decision::Print { .. } = self.completion.decide(id, shape, now) {
                sink.show(&spans, shape);
            }
        }
        self.completion.tidy(now);
    }
}

/// How long a followed trace may take to arrive (`--trace-quiet`,
/// `--trace-wait`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timing {
    /// Printed once no span of it came for this long, if whole.
    pub quiet: Duration,
    /// Printed anyway once no span of it came for this long.
    pub max_wait: Duration,
}
