//! A circuit breaker per dependency: stop calling a dependency that keeps
//! failing, so requests fail in microseconds instead of waiting out a
//! timeout each, and the dependency gets room to recover.
//!
//! ```text
//!   closed ──failure ratio ≥ threshold over the last N calls──▶ open
//!     ▲                                                         │
//!     │ probe succeeds                          after --breaker-open-for
//!     │                                                         ▼
//!     └──────────────────────────────────────────────────── half-open
//!                 probe fails: open again                (one probe call)
//! ```
//!
//! No kept crate fits: `failsafe` (the maintained-ish Rust breaker) lets
//! every call through while half-open instead of one probe, counts over a
//! time window rather than the last N calls, and reads a global clock. So
//! this is a small state machine; time is a parameter (`now`), so the tests
//! drive a fake clock and never sleep.
//!
//! The breaker judges *logical calls* (what the request got after retries
//! and hedging), and a 4xx answer is a success: the dependency is healthy,
//! the request was wrong (what counts as a failure is `crate::failure`'s
//! judgement, shared with the retry, the hedge and the fallback).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// When the breaker opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerConfig {
    /// Open when at least this fraction of the window failed (0 < r ≤ 1).
    pub failure_ratio: f64,
    /// How many of the most recent calls are judged.
    pub window: usize,
    /// Never open on fewer calls than this (one failure out of one call is
    /// not a trend).
    pub min_calls: usize,
    /// How long to fail fast before letting a probe through.
    pub open_for: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

/// A change of state, to report as a span event and a log line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transition {
    pub from: BreakerState,
    pub to: BreakerState,
    /// Failure ratio of the window when the breaker opened from closed.
    pub failure_ratio: Option<f64>,
}

/// What the breaker says to a call about to be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead; `probe` is the one half-open trial call.
    Call { probe: bool },
    /// Fail fast. `retry_in`: until the next probe, if known.
    Reject {
        state: BreakerState,
        retry_in: Option<Duration>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Closed,
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// The state machine alone: no locks, no clock, no I/O.
#[derive(Debug)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    state: State,
    /// Outcomes of the most recent calls while closed, `true` = failed.
    outcomes: VecDeque<bool>,
    failures: usize,
}

impl CircuitBreaker {
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            state: State::Closed,
            outcomes: VecDeque::with_capacity(config.window),
            failures: 0,
        }
    }

    pub fn state(&self) -> BreakerState {
        match self.state {
            State::Closed => BreakerState::Closed,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Asks to make a call at `now`.
    pub fn admit(&mut self, now: Instant) -> (Admission, Option<Transition>) {
        match self.state {
            State::Closed => (Admission::Call { probe: false }, None),
            State::Open { until } if now < until => (
                Admission::Reject {
                    state: BreakerState::Open,
                    retry_in: Some(until - now),
                },
                None,
            ),
            State::Open { .. } => {
                self.state = State::HalfOpen { probing: true };
                (
                    Admission::Call { probe: true },
                    Some(self.transition(BreakerState::Open, BreakerState::HalfOpen, None)),
                )
            }
            State::HalfOpen { probing: true } => (
                Admission::Reject {
                    state: BreakerState::HalfOpen,
                    retry_in: None,
                },
                None,
            ),
            State::HalfOpen { probing: false } => {
                self.state = State::HalfOpen { probing: true };
                (Admission::Call { probe: true }, None)
            }
        }
    }

    /// The outcome of an admitted call.
    pub fn record(&mut self, failed: bool, probe: bool, now: Instant) -> Option<Transition> {
        match self.state {
            State::HalfOpen { .. } if probe => {
                if failed {
                    self.open(now);
                    Some(self.transition(BreakerState::HalfOpen, BreakerState::Open, None))
                } else {
                    self.state = State::Closed;
                    self.outcomes.clear();
                    self.failures = 0;
                    Some(self.transition(BreakerState::HalfOpen, BreakerState::Closed, None))
                }
            }
            State::Closed => {
                self.outcomes.push_back(failed);
                self.failures += usize::from(failed);
                while self.outcomes.len() > self.config.window.max(1) {
                    if self.outcomes.pop_front() == Some(true) {
                        self.failures -= 1;
                    }
                }
                let calls = self.outcomes.len();
                let ratio = self.failures as f64 / calls as f64;
                if calls >= self.config.min_calls.max(1)
                    && self.failures > 0
                    && ratio >= self.config.failure_ratio
                {
                    self.open(now);
                    Some(self.transition(BreakerState::Closed, BreakerState::Open, Some(ratio)))
                } else {
                    None
                }
            }
            // A straggler admitted before the breaker opened: the breaker
            // has already judged, its outcome changes nothing.
            _ => None,
        }
    }

    /// The probe went away without an outcome (its request was cancelled):
    /// the next call may probe instead, so half-open can never get stuck.
    pub fn abandon_probe(&mut self) {
        if let State::HalfOpen { probing: true } = self.state {
            self.state = State::HalfOpen { probing: false };
        }
    }

    fn open(&mut self, now: Instant) {
        self.state = State::Open {
            until: now + self.config.open_for,
        };
        self.outcomes.clear();
        self.failures = 0;
    }

    fn transition(
        &self,
        from: BreakerState,
        to: BreakerState,
        failure_ratio: Option<f64>,
    ) -> Transition {
        Transition {
            from,
            to,
            failure_ratio,
        }
    }
}

/// One dependency's breaker, shared by every request, reporting what it
/// does on the current span (the request's SERVER span) and in the logs.
#[derive(Debug)]
pub struct SharedBreaker {
    dependency: &'static str,
    inner: Mutex<CircuitBreaker>,
}

/// The breaker refused the call.
#[derive(Debug, Clone, Copy)]
pub struct Rejected {
    pub state: BreakerState,
    pub retry_in: Option<Duration>,
}

impl SharedBreaker {
    pub fn new(dependency: &'static str, config: BreakerConfig) -> Arc<Self> {
        Arc::new(Self {
            dependency,
            inner: Mutex::new(CircuitBreaker::new(config)),
        })
    }

    pub fn state(&self) -> BreakerState {
        self.lock().state()
    }

    /// Admits a call or rejects it (span event `breaker.rejected`).
    pub fn admit(self: &Arc<Self>) -> Result<BreakerPermit, Rejected> {
        let (admission, transition) = self.lock().admit(Instant::now());
        self.report(transition);
        match admission {
            Admission::Call { probe } => Ok(BreakerPermit {
                breaker: self.clone(),
                probe,
                recorded: false,
            }),
            Admission::Reject { state, retry_in } => {
                // `breaker.retry_in_ms`: until the next probe; absent while
                // a probe is in flight (nobody knows yet).
                match retry_in {
                    Some(d) => tracing::info!(
                        dependency = self.dependency,
                        breaker.state = state.as_str(),
                        breaker.retry_in_ms = d.as_millis() as i64,
                        "breaker.rejected"
                    ),
                    None => tracing::info!(
                        dependency = self.dependency,
                        breaker.state = state.as_str(),
                        "breaker.rejected"
                    ),
                }
                Err(Rejected { state, retry_in })
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CircuitBreaker> {
        // A panic while holding this lock cannot leave the state machine
        // half-updated in a way worse than its last state: keep going.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn report(&self, transition: Option<Transition>) {
        let Some(t) = transition else { return };
        match t.failure_ratio {
            Some(ratio) => tracing::warn!(
                dependency = self.dependency,
                from = t.from.as_str(),
                to = t.to.as_str(),
                breaker.failure_ratio = ratio,
                "breaker.state_change"
            ),
            None => tracing::warn!(
                dependency = self.dependency,
                from = t.from.as_str(),
                to = t.to.as_str(),
                "breaker.state_change"
            ),
        }
    }
}

/// Permission for one call; report its outcome with [`BreakerPermit::record`].
/// Dropped without an outcome (the request was cancelled), a probe is given
/// back, so another call can probe.
#[derive(Debug)]
pub struct BreakerPermit {
    breaker: Arc<SharedBreaker>,
    probe: bool,
    recorded: bool,
}

impl BreakerPermit {
    pub fn record(mut self, failed: bool) {
        self.recorded = true;
        let transition = self
            .breaker
            .lock()
            .record(failed, self.probe, Instant::now());
        self.breaker.report(transition);
    }
}

impl Drop for BreakerPermit {
    fn drop(&mut self) {
        if self.probe && !self.recorded {
            self.breaker.lock().abandon_probe();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN_FOR: Duration = Duration::from_secs(5);

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::new(BreakerConfig {
            failure_ratio: 0.5,
            window: 4,
            min_calls: 4,
            open_for: OPEN_FOR,
        })
    }

    fn call(b: &mut CircuitBreaker, failed: bool, now: Instant) -> Option<Transition> {
        let (admission, _) = b.admit(now);
        assert_eq!(admission, Admission::Call { probe: false });
        b.record(failed, false, now)
    }

    #[test]
    fn stays_closed_below_min_calls_and_below_the_ratio() {
        let mut b = breaker();
        let now = Instant::now();
        for _ in 0..3 {
            assert_eq!(call(&mut b, true, now), None, "3 calls < min_calls");
        }
        assert_eq!(b.state(), BreakerState::Closed);
        let mut b = breaker();
        // 1 failure in 4 = 25% < 50%, and it keeps sliding.
        for failed in [true, false, false, false, false, true, false, false] {
            assert_eq!(call(&mut b, failed, now), None);
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn opens_fails_fast_half_opens_and_closes() {
        let mut b = breaker();
        let t0 = Instant::now();
        call(&mut b, false, t0);
        call(&mut b, true, t0);
        call(&mut b, false, t0);
        let opened = call(&mut b, true, t0).expect("2 of 4 failed: open");
        assert_eq!(
            (opened.from, opened.to, opened.failure_ratio),
            (BreakerState::Closed, BreakerState::Open, Some(0.5))
        );

        // Open: rejected, saying when the probe comes.
        let (admission, t) = b.admit(t0 + Duration::from_secs(1));
        assert_eq!(
            admission,
            Admission::Reject {
                state: BreakerState::Open,
                retry_in: Some(Duration::from_secs(4))
            }
        );
        assert_eq!(t, None);

        // After open_for: one probe, and only one.
        let later = t0 + OPEN_FOR;
        let (admission, t) = b.admit(later);
        assert_eq!(admission, Admission::Call { probe: true });
        assert_eq!(
            t.map(|t| (t.from, t.to)),
            Some((BreakerState::Open, BreakerState::HalfOpen))
        );
        let (admission, _) = b.admit(later);
        assert!(matches!(
            admission,
            Admission::Reject {
                state: BreakerState::HalfOpen,
                ..
            }
        ));

        // The probe succeeds: closed, with a fresh window.
        let t = b.record(false, true, later).unwrap();
        assert_eq!(
            (t.from, t.to),
            (BreakerState::HalfOpen, BreakerState::Closed)
        );
        assert_eq!(call(&mut b, true, later), None, "the old failures are gone");
    }

    #[test]
    fn a_failed_probe_opens_again_for_the_full_period() {
        let mut b = breaker();
        let t0 = Instant::now();
        for _ in 0..4 {
            call(&mut b, true, t0);
        }
        let t1 = t0 + OPEN_FOR;
        assert_eq!(b.admit(t1).0, Admission::Call { probe: true });
        let t = b.record(true, true, t1).unwrap();
        assert_eq!((t.from, t.to), (BreakerState::HalfOpen, BreakerState::Open));
        assert!(matches!(
            b.admit(t1 + OPEN_FOR - Duration::from_millis(1)).0,
            Admission::Reject { .. }
        ));
        assert_eq!(b.admit(t1 + OPEN_FOR).0, Admission::Call { probe: true });
    }

    #[test]
    fn an_abandoned_probe_lets_the_next_call_probe() {
        let mut b = breaker();
        let t0 = Instant::now();
        for _ in 0..4 {
            call(&mut b, true, t0);
        }
        let t1 = t0 + OPEN_FOR;
        assert_eq!(b.admit(t1).0, Admission::Call { probe: true });
        b.abandon_probe();
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert_eq!(b.admit(t1).0, Admission::Call { probe: true });
    }

    #[test]
    fn stragglers_do_not_move_an_open_breaker() {
        let mut b = breaker();
        let t0 = Instant::now();
        for _ in 0..4 {
            call(&mut b, true, t0);
        }
        assert_eq!(b.record(false, false, t0), None);
        assert_eq!(b.record(true, false, t0), None);
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[test]
    fn a_dropped_probe_permit_gives_the_probe_back() {
        let shared = SharedBreaker::new(
            "order-service",
            BreakerConfig {
                failure_ratio: 1.0,
                window: 1,
                min_calls: 1,
                open_for: Duration::ZERO,
            },
        );
        shared.admit().unwrap().record(true);
        assert_eq!(shared.state(), BreakerState::Open);
        let probe = shared.admit().expect("open_for 0: probe at once");
        assert!(shared.admit().is_err(), "one probe at a time");
        drop(probe);
        let probe = shared.admit().expect("the probe was given back");
        probe.record(false);
        assert_eq!(shared.state(), BreakerState::Closed);
    }
}
