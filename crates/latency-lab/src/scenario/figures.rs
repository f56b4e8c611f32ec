//! Measures a phase: from its answers (what any client sees), from the
//! traces its requests made, and from the metrics the services exported.

use std::collections::BTreeMap;

use trace_view::model::SpanKind;
use trace_view::{analysis, Trace, TraceId};

use super::expr::{Figure, Figures, Measure, Unit, Value};
use crate::explain::groups::Group;
use crate::load::record::{Outcome, Record};

/// What one phase sent and what came back.
#[derive(Debug, Default)]
pub struct PhaseResult {
    pub records: Vec<Record>,
    /// Every trace that appeared while the phase ran (with `unlinked`, more
    /// than one per request).
    pub traces: Vec<Trace>,
    /// The trace id the phase's own `traceparent` header named, if it sent one.
    pub sent_trace_id: Option<TraceId>,
    /// With a collector: the phase's traces Jaeger holds.
    pub kept: Option<std::collections::HashSet<TraceId>>,
    /// With a collector: the phase's traces whole in exactly one Jaeger.
    pub whole: Option<std::collections::HashSet<TraceId>>,
    /// With `[follow]`: what would have printed, as `up` follows traces.
    pub shown: Option<super::follow::Shown>,
    /// `latency-lab explain` over `traces`, worked out once when first asked.
    explained: std::sync::OnceLock<Option<Explained>>,
}

/// The typical group, the tail and the report `explain` prints for them.
pub type Explained = (Group, Group, String);

impl PhaseResult {
    pub fn new(
        records: Vec<Record>,
        traces: Vec<Trace>,
        sent_trace_id: Option<TraceId>,
    ) -> PhaseResult {
        PhaseResult {
            records,
            traces,
            sent_trace_id,
            kept: None,
            whole: None,
            shown: None,
            explained: std::sync::OnceLock::new(),
        }
    }

    /// `explain`'s split of the phase's traces (the tail at p99, its default).
    pub fn explained(&self) -> Option<&Explained> {
        self.explained
            .get_or_init(|| crate::explain::summarize(&self.traces, TAIL))
            .as_ref()
    }
}

/// Every phase's result, and the services' exported latency quantiles.
pub struct RunFigures<'a> {
    pub phases: &'a BTreeMap<String, PhaseResult>,
    /// `(service, quantile) → seconds`, from `http.server.request.duration`.
    pub metric: &'a dyn Fn(&str, f64) -> Option<f64>,
}

impl Figures for RunFigures<'_> {
    fn figure(&self, figure: &Figure) -> Option<Value> {
        let value = match &figure.measure {
            Measure::Metric { q, service } => (self.metric)(service, *q)?,
            measure => measure_phase(self.phases.get(&figure.phase)?, measure)?,
        };
        Some(Value {
            value,
            unit: figure.measure.unit(),
        })
    }
}

fn measure_phase(phase: &PhaseResult, measure: &Measure) -> Option<f64> {
    let requests = phase.records.len() as f64;
    let status = |r: &Record| match r.outcome {
        Outcome::Status(s) => Some(s),
        _ => None,
    };
    let share = |keep: &dyn Fn(&Record) -> bool| {
        (requests > 0.0).then(|| phase.records.iter().filter(|r| keep(r)).count() as f64 / requests)
    };
    match measure {
        Measure::Requests => Some(requests),
        Measure::Latency { q, status: want } => {
            let mut latencies: Vec<f64> = phase
                .records
                .iter()
                .filter(|r| status(r).is_some() && want.is_none_or(|w| status(r) == Some(w)))
                .map(|r| r.latency.as_secs_f64())
                .collect();
            nearest_rank(&mut latencies, *q)
        }
        Measure::Ok => share(&|r| status(r).is_some_and(|s| (200..300).contains(&s))),
        Measure::Share(want) => share(&|r| status(r) == Some(*want)),
        Measure::BeforeFirst(want) => phase
            .records
            .iter()
            .position(|r| status(r) == Some(*want))
            .map(|i| i as f64),
        Measure::Joined => {
            let sent = phase.sent_trace_id?;
            share(&|r| r.trace_id == Some(sent))
        }
        Measure::Kept => {
            let kept = phase.kept.as_ref()?;
            share(&|r| r.trace_id.is_some_and(|id| kept.contains(&id)))
        }
        Measure::Whole => {
            let whole = phase.whole.as_ref()?;
            share(&|r| r.trace_id.is_some_and(|id| whole.contains(&id)))
        }
        Measure::WholeFirst => {
            let shown = phase.shown.as_ref()?;
            let spans = |id: TraceId| {
                phase
                    .traces
                    .iter()
                    .find(|t| t.trace_id == id)
                    .map_or(0, |t| t.spans.len())
            };
            share(&|r| {
                r.trace_id
                    .is_some_and(|id| shown.first.get(&id) == Some(&spans(id)))
            })
        }
        Measure::PrintedAgain => {
            let shown = phase.shown.as_ref()?;
            share(&|r| {
                r.trace_id
                    .is_some_and(|id| shown.first.get(&id) != shown.last.get(&id))
            })
        }
        Measure::TracesPerRequest => (requests > 0.0).then(|| phase.traces.len() as f64 / requests),
        Measure::Calls(service) => (requests > 0.0).then(|| {
            let calls = phase
                .traces
                .iter()
                .flat_map(|t| &t.spans)
                .filter(|s| s.kind == SpanKind::Server && &s.service == service)
                .count();
            calls as f64 / requests
        }),
        Measure::SpanMax(name) => span_durations(phase, name).into_iter().reduce(f64::max),
        Measure::SpanP50(name) => nearest_rank(&mut span_durations(phase, name), 0.5),
        Measure::CriticalShare(service) => {
            let shares: Vec<f64> = phase
                .traces
                .iter()
                .filter_map(|t| {
                    let a = analysis::analyse(t);
                    a.root?;
                    let held = a
                        .by_service
                        .iter()
                        .find(|(s, _)| s == service)
                        .map_or(0, |(_, us)| *us);
                    (a.critical_us > 0).then(|| held as f64 / a.critical_us as f64)
                })
                .collect();
            (!shares.is_empty()).then(|| shares.iter().sum::<f64>() / shares.len() as f64)
        }
        Measure::TailShare(op) | Measure::TypicalShare(op) => {
            let (typical, tail, _) = phase.explained()?;
            let group = if matches!(measure, Measure::TailShare(_)) {
                tail
            } else {
                typical
            };
            Some(
                group
                    .operations
                    .iter()
                    .find(|o| &o.operation == op)
                    .map_or(0.0, |o| o.share),
            )
        }
        Measure::Metric { .. } => None,
    }
}

/// The tail of `tail_share`: as `latency-lab explain`'s default, p99.
const TAIL: f64 = 0.99;

fn span_durations(phase: &PhaseResult, name: &str) -> Vec<f64> {
    phase
        .traces
        .iter()
        .flat_map(|t| &t.spans)
        .filter(|s| s.name == name)
        .map(|s| s.duration_us as f64 / 1e6)
        .collect()
}

/// The nearest-rank quantile (`q` = 1 is the max): a value that occurred,
/// as a percentile of a handful of requests should be.
fn nearest_rank(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    Some(values[rank - 1])
}

/// The figures a claim reads, each with its value, for `--json`.
pub fn listed<'a>(
    figures: impl Iterator<Item = &'a Figure>,
    values: &dyn Figures,
) -> BTreeMap<String, Option<(f64, Unit)>> {
    figures
        .map(|f| (f.text.clone(), values.figure(f).map(|v| (v.value, v.unit))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_picks_a_value_that_occurred() {
        let mut v = vec![0.3, 0.1, 0.2, 0.4];
        assert_eq!(nearest_rank(&mut v, 0.5), Some(0.2));
        assert_eq!(nearest_rank(&mut v, 0.99), Some(0.4));
        assert_eq!(nearest_rank(&mut v, 1.0), Some(0.4));
        assert_eq!(nearest_rank(&mut [], 0.5), None);
    }
}
