//! When a trace that is still arriving counts as complete, and what a span
//! that comes after it was printed does.
//!
//! Exporters batch: every OpenTelemetry SDK (Python, Go, Java, JavaScript)
//! sends its spans every 5 s by default, so one request's spans reach the lab
//! seconds apart, one service at a time. A fixed quiet period either prints
//! half a trace or makes every trace wait. So:
//!
//! * a trace is printed once no span of it has come for the quiet period
//!   **and** its shape is whole: a root is there and every parent a span
//!   names is there ([`Shape`]);
//! * a trace that is not whole waits longer, up to `max_wait` since its last
//!   span, then is printed as it is and counted as cut short;
//! * a span that comes after its trace was printed is not dropped: the
//!   trace is printed again, amended, once it is quiet again, and its saved
//!   file is rewritten;
//! * the quiet period adapts: when a late span comes, the gap since the
//!   trace's previous span is what this exporter's batching needs, and the
//!   quiet period grows to it (never past `max_wait`) for the traces after.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use otlp_receiver::CollectedSpan;
use trace_view::TraceId;

/// How whole a trace's spans are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    /// A span without a parent is there.
    pub has_root: bool,
    /// Parents that spans name and that have not arrived.
    pub missing_parents: usize,
}

impl Shape {
    pub fn of(spans: &[CollectedSpan]) -> Self {
        let ids: HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
        let missing: HashSet<&str> = spans
            .iter()
            .filter_map(|s| s.parent_span_id.as_deref())
            .filter(|p| !ids.contains(p))
            .collect();
        Shape {
            has_root: spans.iter().any(|s| s.parent_span_id.is_none()),
            missing_parents: missing.len(),
        }
    }

    pub fn is_whole(self) -> bool {
        self.has_root && self.missing_parents == 0
    }
}

/// What to do with a quiet trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Not yet: it is not whole and has not waited `max_wait`.
    Wait,
    /// Print it: whole, or waited long enough (`cut_short`).
    Print { cut_short: bool },
}

/// The arrival times of the traces being followed.
#[derive(Debug)]
pub(crate) struct Completion {
    quiet: Duration,
    max_wait: Duration,
    /// The largest gap seen between a trace's spans that came after it was
    /// printed: how long this exporter's batching makes spans late.
    learned: Duration,
    /// Traces with spans not yet printed: when their last span came.
    pending: HashMap<TraceId, Instant>,
    /// Every followed trace's last arrival, for the gap a late span shows;
    /// forgotten after `FORGET_AFTER` of silence.
    last_arrival: HashMap<TraceId, Instant>,
}

/// How long a printed trace's last arrival is kept to measure a late span's
/// gap: longer than any batching delay an exporter uses.
const FORGET_AFTER: Duration = Duration::from_secs(120);

/// Added to a learned gap: the next batch may come a little later still.
const MARGIN: Duration = Duration::from_millis(500);

impl Completion {
    pub fn new(quiet: Duration, max_wait: Duration) -> Self {
        Completion {
            quiet,
            max_wait: max_wait.max(quiet),
            learned: Duration::ZERO,
            pending: HashMap::new(),
            last_arrival: HashMap::new(),
        }
    }

    /// The quiet period now: the configured one, or more once late spans
    /// have shown the exporters need it.
    pub fn quiet(&self) -> Duration {
        if self.learned.is_zero() {
            self.quiet
        } else {
            self.quiet.max(self.learned + MARGIN).min(self.max_wait)
        }
    }

    /// A span of `id` came at `now`; `printed` says whether the trace was
    /// printed already (the span is then late, and its gap is learned).
    pub fn arrived(&mut self, id: TraceId, printed: bool, now: Instant) {
        if printed && !self.pending.contains_key(&id) {
            if let Some(previous) = self.last_arrival.get(&id) {
                let gap = now.saturating_duration_since(*previous);
                self.learned = self.learned.max(gap.min(self.max_wait));
            }
        }
        self.pending.insert(id, now);
        self.last_arrival.insert(id, now);
    }

    /// The pending traces quiet for at least [`Self::quiet`] at `now`.
    pub fn quiet_traces(&self, now: Instant) -> Vec<TraceId> {
        let quiet = self.quiet();
        let mut ids: Vec<(Instant, TraceId)> = self
            .pending
            .iter()
            .filter(|(_, last)| now.saturating_duration_since(**last) >= quiet)
            .map(|(id, last)| (*last, *id))
            .collect();
        // Oldest first: they print in the order they went quiet.
        ids.sort();
        ids.into_iter().map(|(_, id)| id).collect()
    }

    /// Whether to print quiet trace `id`, whose spans have `shape`. A
    /// decision to print takes it off the pending list.
    pub fn decide(&mut self, id: TraceId, shape: Shape, now: Instant) -> Decision {
        let Some(last) = self.pending.get(&id) else {
            return Decision::Wait;
        };
        let waited = now.saturating_duration_since(*last);
        let decision = if shape.is_whole() {
            Decision::Print { cut_short: false }
        } else if waited >= self.max_wait {
            Decision::Print { cut_short: true }
        } else {
            return Decision::Wait;
        };
        self.pending.remove(&id);
        decision
    }

    /// Forgets `id` (evicted from the store, or nothing new to print).
    pub fn forget(&mut self, id: TraceId) {
        self.pending.remove(&id);
    }

    /// Drops arrival times nobody will ask for again.
    pub fn tidy(&mut self, now: Instant) {
        self.last_arrival
            .retain(|_, last| now.saturating_duration_since(*last) < FORGET_AFTER);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUIET: Duration = Duration::from_millis(1500);
    const MAX: Duration = Duration::from_secs(10);

    fn id(n: u128) -> TraceId {
        TraceId::parse(&format!("{n:032x}")).unwrap()
    }

    fn span(id: &str, parent: Option<&str>) -> CollectedSpan {
        CollectedSpan {
            service_name: "svc".to_owned(),
            resource: Default::default(),
            scope_name: String::new(),
            trace_id: format!("{:032x}", 1),
            span_id: id.to_owned(),
            parent_span_id: parent.map(str::to_owned),
            trace_state: String::new(),
            flags: 1,
            name: "op".to_owned(),
            kind: otlp_receiver::SpanKind::Internal,
            start_unix_nanos: 0,
            end_unix_nanos: 1,
            attributes: Default::default(),
            events: Vec::new(),
            links: Vec::new(),
            status_code: otlp_receiver::StatusCode::Unset,
            status_message: String::new(),
        }
    }

    const WHOLE: Shape = Shape {
        has_root: true,
        missing_parents: 0,
    };
    const ROOTLESS: Shape = Shape {
        has_root: false,
        missing_parents: 1,
    };

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn a_shape_is_whole_with_a_root_and_every_parent() {
        let whole = [span("a", None), span("b", Some("a")), span("c", Some("b"))];
        assert!(Shape::of(&whole).is_whole());
        // The mocks' spans came first; the caller's (their parents) did not.
        let early = [
            span("b", Some("x")),
            span("c", Some("y")),
            span("d", Some("x")),
        ];
        assert_eq!(
            Shape::of(&early),
            Shape {
                has_root: false,
                missing_parents: 2
            }
        );
        // A root whose child names a parent not yet here.
        let gap = [span("a", None), span("c", Some("b"))];
        assert!(!Shape::of(&gap).is_whole());
    }

    #[test]
    fn a_whole_trace_prints_once_quiet() {
        let t0 = Instant::now();
        let mut c = Completion::new(QUIET, MAX);
        c.arrived(id(1), false, t0);
        assert!(c.quiet_traces(t0 + secs(1.0)).is_empty());
        assert_eq!(c.quiet_traces(t0 + secs(1.5)), [id(1)]);
        assert_eq!(
            c.decide(id(1), WHOLE, t0 + secs(1.5)),
            Decision::Print { cut_short: false }
        );
        assert!(c.quiet_traces(t0 + secs(5.0)).is_empty());
    }

    #[test]
    fn a_trace_without_its_root_waits_then_prints_cut_short() {
        let t0 = Instant::now();
        let mut c = Completion::new(QUIET, MAX);
        c.arrived(id(1), false, t0);
        assert_eq!(c.decide(id(1), ROOTLESS, t0 + secs(2.0)), Decision::Wait);
        assert_eq!(c.decide(id(1), ROOTLESS, t0 + secs(9.9)), Decision::Wait);
        // Its root comes at 5 s, as a default batch delay sends it.
        c.arrived(id(1), false, t0 + secs(5.0));
        assert!(c.quiet_traces(t0 + secs(6.0)).is_empty());
        assert_eq!(
            c.decide(id(1), WHOLE, t0 + secs(6.5)),
            Decision::Print { cut_short: false }
        );
        // One whose root never comes prints after the longest wait.
        c.arrived(id(2), false, t0);
        assert_eq!(
            c.decide(id(2), ROOTLESS, t0 + secs(10.0)),
            Decision::Print { cut_short: true }
        );
    }

    #[test]
    fn a_late_span_makes_the_trace_pending_again_and_the_quiet_period_grows() {
        let t0 = Instant::now();
        let mut c = Completion::new(QUIET, MAX);
        c.arrived(id(1), false, t0);
        assert_eq!(
            c.decide(id(1), WHOLE, t0 + secs(1.5)),
            Decision::Print { cut_short: false }
        );
        assert_eq!(c.quiet(), QUIET);
        // 4 s after the last one, after the print: a late span.
        c.arrived(id(1), true, t0 + secs(4.0));
        assert_eq!(c.quiet(), secs(4.5));
        assert!(c.quiet_traces(t0 + secs(8.0)).is_empty());
        assert_eq!(c.quiet_traces(t0 + secs(8.5)), [id(1)]);
        assert_eq!(
            c.decide(id(1), WHOLE, t0 + secs(8.5)),
            Decision::Print { cut_short: false }
        );
        // Never past the longest wait.
        c.arrived(id(1), true, t0 + secs(60.0));
        assert_eq!(c.quiet(), MAX);
    }
}
