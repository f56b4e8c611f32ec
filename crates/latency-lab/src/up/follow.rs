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
use otlp_receiver::{CollectedSpan, RunningReceiver};
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
    let mut completion = Completion::new(timing.quiet, timing.max_wait);
    // Spans that came before the subscription (an app that exported the
    // moment the receiver listened) are in the store: follow them too.
    let now = Instant::now();
    for id in known_traces(receiver) {
        let printed = view.printed_spans(id).is_some();
        if !printed && !view.is_summarized(id) {
            completion.arrived(id, false, now);
        }
    }
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            batch = updates.recv() => {
                // A lagged feed only delays printing: the store has the spans.
                if let Ok(batch) = batch {
                    let now = Instant::now();
                    let ids: HashSet<TraceId> = batch.iter().filter_map(collected_trace_id).collect();
                    for id in ids {
                        let printed = view.printed_spans(id).is_some();
                        if printed || !view.is_summarized(id) {
                            completion.arrived(id, printed, now);
                        }
                    }
                }
            }
            _ = tick.tick() => {
                let now = Instant::now();
                for id in completion.quiet_traces(now) {
                    let spans = store.trace(&id.to_string());
                    if spans.is_empty() {
                        // Evicted before it was printed: counted as dropped.
                        completion.forget(id);
                        view.forget(id);
                        continue;
                    }
                    if view.printed_spans(id) == Some(spans.len()) {
                        // Nothing new (a span sent twice).
                        completion.forget(id);
                        continue;
                    }
                    let shape = Shape::of(&spans);
                    if let Decision::Print { .. } = completion.decide(id, shape, now) {
                        view.show_followed(&spans, Some(shape));
                    }
                }
                completion.tidy(now);
                view.report_dropped(Some(receiver));
            }
            when = stats.next() => stats::print(receiver, view, when),
        }
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
