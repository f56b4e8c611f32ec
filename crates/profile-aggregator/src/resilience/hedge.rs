//! Hedged requests ("The Tail at Scale", Dean & Barroso): if a call has not
//! answered after a delay, send a second one and take whichever answers
//! first; the other is cancelled.
//!
//! A dependency whose p99 is ten times its median mostly answers fast; a
//! second copy sent at, say, its p95 is very likely to beat a first copy
//! that got unlucky, for about 5% extra load. The delay is fixed
//! (`--hedge-after 50ms`) or a percentile of the dependency's recent
//! latencies (`--hedge-after p95`, from a ring of the last
//! [`LatencyWindow::CAPACITY`] answers; no hedge until it holds
//! [`LatencyWindow::MIN_SAMPLES`]).
//!
//! Both attempts are CLIENT spans with `hedge = true` and `hedge.attempt` 1
//! or 2; the loser's span gets `cancelled = true` and a `hedge.cancelled`
//! event before its future is dropped. A [`Leg`] holds a handle on the span
//! of its call in flight (telemetry's [`ClientSpanSlot`]) for exactly that.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::KeyValue;
use telemetry::client::ClientSpanSlot;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// When to send the second attempt.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum HedgeAfter {
    /// Never hedge (the default).
    #[default]
    Off,
    /// After a fixed delay.
    Fixed(Duration),
    /// After this percentile (0 < p < 100) of the dependency's recent
    /// latencies.
    Percentile(f64),
}

/// The forms `--hedge-after` and `?hedge_after=` accept.
pub const HEDGE_FORMS: &str = "off, a duration (50ms) or a percentile of recent latencies (p95)";

impl FromStr for HedgeAfter {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s == "off" {
            return Ok(Self::Off);
        }
        if let Some(p) = s.strip_prefix('p') {
            return match p.parse::<f64>() {
                Ok(p) if p > 0.0 && p < 100.0 => Ok(Self::Percentile(p)),
                _ => Err(format!(
                    "{s:?}: a percentile is p1 to p99.9; expected {HEDGE_FORMS}"
                )),
            };
        }
        // The timeouts' range: a sub-millisecond delay would hedge every
        // call at once, doubling the load (a `50us` meant as `50ms`).
        match humantime::parse_duration(s) {
            Ok(d) if (super::MIN_DELAY..=super::MAX_DELAY).contains(&d) => Ok(Self::Fixed(d)),
            Ok(_) => Err(format!(
                "{s:?}: the delay must be {}; expected {HEDGE_FORMS}",
                super::timeout::accepted_range()
            )),
            Err(_) => Err(format!("{s:?}: expected {HEDGE_FORMS}")),
        }
    }
}

impl fmt::Display for HedgeAfter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Off => f.write_str("off"),
            Self::Fixed(d) => write!(f, "{}", humantime::format_duration(*d)),
            Self::Percentile(p) => write!(f, "p{p}"),
        }
    }
}

/// The most recent latencies of one dependency, for percentile delays.
#[derive(Debug, Default)]
pub struct LatencyWindow {
    samples: VecDeque<Duration>,
}

impl LatencyWindow {
    pub const CAPACITY: usize = 100;
    /// Fewer answers than this say nothing about a tail: no hedge yet.
    pub const MIN_SAMPLES: usize = 10;

    pub fn record(&mut self, latency: Duration) {
        if self.samples.len() == Self::CAPACITY {
            self.samples.pop_front();
        }
        self.samples.push_back(latency);
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The nearest-rank percentile `p` (0 < p < 100), or `None` with too
    /// few samples.
    pub fn percentile(&self, p: f64) -> Option<Duration> {
        if self.samples.len() < Self::MIN_SAMPLES {
            return None;
        }
        let mut sorted: Vec<Duration> = self.samples.iter().copied().collect();
        sorted.sort_unstable();
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
    }
}

/// One of the two racing attempts of a hedged call: its number, whether the
/// race has started, and the CLIENT span of its call in flight.
#[derive(Debug)]
pub struct Leg {
    pub number: u8,
    hedged: AtomicBool,
    pub slot: ClientSpanSlot,
}

impl Leg {
    pub fn primary() -> Self {
        Self {
            number: 1,
            hedged: AtomicBool::new(false),
            slot: ClientSpanSlot::default(),
        }
    }

    pub fn hedge() -> Self {
        Self {
            number: 2,
            hedged: AtomicBool::new(true),
            slot: ClientSpanSlot::default(),
        }
    }

    fn attributes(&self) -> Vec<KeyValue> {
        vec![
            KeyValue::new("hedge", true),
            KeyValue::new("hedge.attempt", i64::from(self.number)),
        ]
    }

    /// Attributes for the CLIENT span of a new attempt of this leg: the
    /// hedge marks once the race has started, nothing before.
    pub fn span_attributes(&self) -> Vec<KeyValue> {
        if self.hedged.load(Ordering::Relaxed) {
            self.attributes()
        } else {
            Vec::new()
        }
    }

    /// The race starts: the primary's call in flight gets the hedge marks
    /// too, and so does any later attempt of it.
    pub fn mark_hedged(&self) {
        self.hedged.store(true, Ordering::Relaxed);
        if let Some(span) = self.slot.current() {
            for kv in self.attributes() {
                span.set_attribute(kv.key, kv.value);
            }
        }
    }

    /// This leg lost: mark its call in flight cancelled. The caller then
    /// drops the leg's future, which ends the span.
    pub fn cancel(&self, winner: u8) {
        if let Some(span) = self.slot.take() {
            span.set_attribute("cancelled", true);
            span.add_event(
                "hedge.cancelled",
                vec![KeyValue::new("hedge.winner", i64::from(winner))],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hedge_after_forms() {
        assert_eq!("off".parse(), Ok(HedgeAfter::Off));
        assert_eq!(
            "50ms".parse(),
            Ok(HedgeAfter::Fixed(Duration::from_millis(50)))
        );
        assert_eq!("p95".parse(), Ok(HedgeAfter::Percentile(95.0)));
        assert_eq!("p99.9".parse(), Ok(HedgeAfter::Percentile(99.9)));
        for bad in ["", "p0", "p100", "p", "pfast", "0ms", "fast", "50", "1h"] {
            let err = bad.parse::<HedgeAfter>().unwrap_err();
            assert!(err.contains("p95"), "{bad:?}: {err}");
        }
        for form in ["off", "50ms", "p95", "p99.9"] {
            let parsed: HedgeAfter = form.parse().unwrap();
            assert_eq!(parsed.to_string(), form);
        }
    }

    #[test]
    fn a_fixed_delay_has_the_timeouts_range() {
        assert_eq!(
            "1ms".parse(),
            Ok(HedgeAfter::Fixed(super::super::MIN_DELAY))
        );
        assert_eq!("1m".parse(), Ok(HedgeAfter::Fixed(super::super::MAX_DELAY)));
        for bad in ["1ns", "999us", "0s", "61s"] {
            let err = bad.parse::<HedgeAfter>().unwrap_err();
            assert!(
                err.contains("the delay must be at least 1ms and at most 1m"),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn percentiles_need_samples_and_use_nearest_rank() {
        let mut w = LatencyWindow::default();
        for ms in 1..=9 {
            w.record(Duration::from_millis(ms));
        }
        assert_eq!(w.percentile(95.0), None, "9 samples are too few");
        w.record(Duration::from_millis(10));
        assert_eq!(w.percentile(50.0), Some(Duration::from_millis(5)));
        assert_eq!(w.percentile(95.0), Some(Duration::from_millis(10)));
        assert_eq!(w.percentile(0.1), Some(Duration::from_millis(1)));
    }

    #[test]
    fn the_window_keeps_only_the_most_recent() {
        let mut w = LatencyWindow::default();
        for _ in 0..LatencyWindow::CAPACITY {
            w.record(Duration::from_secs(1));
        }
        for _ in 0..LatencyWindow::CAPACITY {
            w.record(Duration::from_millis(10));
        }
        assert_eq!(w.len(), LatencyWindow::CAPACITY);
        assert_eq!(w.percentile(99.0), Some(Duration::from_millis(10)));
    }

    #[test]
    fn only_hedged_legs_carry_the_marks() {
        let primary = Leg::primary();
        assert!(primary.span_attributes().is_empty());
        primary.mark_hedged();
        let attributes = primary.span_attributes();
        assert_eq!(attributes.len(), 2);
        assert_eq!(attributes[1], KeyValue::new("hedge.attempt", 1_i64));
        assert_eq!(Leg::hedge().span_attributes()[1].value, 2_i64.into());
    }
}
