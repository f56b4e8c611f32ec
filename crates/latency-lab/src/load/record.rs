//! What a load run measured, request by request: the one data type between
//! the engine that sends the requests (`engine`) and everything that
//! reports on them (the text report, CSV/JSON, plots, the gate), so each
//! side can change without the other.

use std::time::Duration;

use trace_view::TraceId;

/// How the requests were paced.
#[derive(Debug, Clone, PartialEq)]
pub enum Pacing {
    /// Sent on a fixed schedule whatever the answers do; latency counts from
    /// each request's *intended* send time (no coordinated omission).
    Open {
        /// Requests per second asked at the start and at the end (a ramp
        /// when they differ; linear in between).
        rate: (f64, f64),
        /// Bound on requests in flight; a request due while it is reached is
        /// sent late (and counted in [`Run::late`]).
        max_in_flight: u64,
    },
    /// `concurrency` workers, each waiting for its answer before sending the
    /// next: what a stalled target can hide (coordinated omission).
    Closed { concurrency: u64 },
}

/// One variant of a `--compare` run (a single run has one).
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// As the user wrote it, e.g. `mode=concurrent&hedge_after=p95`; the
    /// URL itself for a single run.
    pub label: String,
    pub url: reqwest::Url,
    pub headers: Vec<(String, String)>,
}

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// An answer arrived, whole: its HTTP status.
    Status(u16),
    /// No answer within `--request-timeout`.
    Timeout,
    /// The connection could not be made.
    Connect,
    /// Anything else (the answer broke off, …), with a short reason.
    Other(String),
}

/// One request of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Index into [`Run::variants`].
    pub variant: usize,
    /// When the schedule wanted it sent, from the run's start (closed loop:
    /// the same as `sent`).
    pub intended: Duration,
    /// When it was sent, from the run's start.
    pub sent: Duration,
    /// From `intended` to the end of the answer (or to the failure).
    pub latency: Duration,
    pub outcome: Outcome,
    /// From the answer's `traceresponse` header.
    pub trace_id: Option<TraceId>,
}

/// A whole run: what was asked and what happened.
#[derive(Debug, Clone)]
pub struct Run {
    pub pacing: Pacing,
    pub variants: Vec<Variant>,
    /// From the first intended send to the last answer.
    pub elapsed: Duration,
    /// Every request, in the order they were sent (warm-up excluded).
    pub records: Vec<Record>,
    /// Open loop: requests sent later than intended because `max_in_flight`
    /// was reached (they are in `records` too, their latency counted from the
    /// intended time).
    pub late: u64,
    /// Stopped early by Ctrl-C: the report covers what was sent until then.
    pub interrupted: bool,
    /// Open loop: the generator's own scheduling error, actual send minus
    /// intended send, of every request that was not held back by
    /// `max_in_flight` (those are in [`Run::late`]), in no particular order. Empty
    /// for a closed loop (it has no schedule). Its p99 says whether the
    /// generator kept up with the rate asked.
    pub send_lag: Vec<Duration>,
}
