//! The export queue's log lines: few, and each one with the numbers that
//! matter.
//!
//! A collector outage must not flood the log (the SDK writes one ERROR per
//! failed batch) nor pass silently (the SDK says nothing of its dropped
//! count until shutdown). So: one line when export starts failing, then at
//! most one every `interval` while it goes on; one line per `interval` at
//! most with the spans dropped since the last one and the total; and one
//! line when export recovers, saying for how long it was down and what the
//! outage cost. The decisions are pure (time is passed in) so that they are
//! unit-tested; [`log`] turns an event into a `tracing` line.

use std::time::{Duration, Instant};

/// One line worth logging.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ExportEvent {
    /// The first failed attempt after a success (or at start).
    Failing { error: String, held: usize },
    /// Export has been failing for `failing_for`; at most one per interval.
    StillFailing {
        failing_for: Duration,
        failed_attempts: u64,
        error: String,
        held: usize,
    },
    /// Spans refused by the full queue since the last such line.
    Dropped {
        since_last: u64,
        total: u64,
        capacity: usize,
    },
    /// The first success after failures.
    Recovered {
        down_for: Duration,
        failed_attempts: u64,
        /// Spans that waited in memory for the collector to come back.
        delayed: usize,
        /// Spans refused by the full queue during the outage.
        dropped: u64,
    },
    /// Shutdown finished; logged at WARN when anything was lost.
    ShutDown {
        exported: u64,
        dropped: u64,
        abandoned: u64,
    },
}

/// Decides which [`ExportEvent`]s to emit, rate-limited to one of each kind
/// per `interval`.
#[derive(Debug)]
pub(crate) struct Reporter {
    interval: Duration,
    outage: Option<Outage>,
    dropped_reported: u64,
    last_drop_line: Option<Instant>,
}

#[derive(Debug)]
struct Outage {
    since: Instant,
    failed_attempts: u64,
    dropped_at_start: u64,
    last_line: Instant,
}

impl Reporter {
    pub(crate) fn new(interval: Duration) -> Self {
        Self {
            interval,
            outage: None,
            dropped_reported: 0,
            last_drop_line: None,
        }
    }

    pub(crate) fn export_failed(
        &mut self,
        now: Instant,
        error: &str,
        held: usize,
        dropped_total: u64,
    ) -> Option<ExportEvent> {
        match &mut self.outage {
            None => {
                self.outage = Some(Outage {
                    since: now,
                    failed_attempts: 1,
                    dropped_at_start: dropped_total,
                    last_line: now,
                });
                Some(ExportEvent::Failing {
                    error: error.to_owned(),
                    held,
                })
            }
            Some(outage) => {
                outage.failed_attempts += 1;
                if now.duration_since(outage.last_line) < self.interval {
                    return None;
                }
                outage.last_line = now;
                Some(ExportEvent::StillFailing {
                    failing_for: now.duration_since(outage.since),
                    failed_attempts: outage.failed_attempts,
                    error: error.to_owned(),
                    held,
                })
            }
        }
    }

    /// `held` counts the spans in memory when the successful attempt ended,
    /// the batch it exported included.
    pub(crate) fn export_succeeded(
        &mut self,
        now: Instant,
        held: usize,
        dropped_total: u64,
    ) -> Option<ExportEvent> {
        let outage = self.outage.take()?;
        Some(ExportEvent::Recovered {
            down_for: now.duration_since(outage.since),
            failed_attempts: outage.failed_attempts,
            delayed: held,
            dropped: dropped_total - outage.dropped_at_start,
        })
    }

    /// A line for the drops not yet reported, unless one was logged less
    /// than `interval` ago; `force` (at shutdown) ignores the interval.
    pub(crate) fn drops(
        &mut self,
        now: Instant,
        dropped_total: u64,
        capacity: usize,
        force: bool,
    ) -> Option<ExportEvent> {
        if dropped_total <= self.dropped_reported {
            return None;
        }
        let recent = self
            .last_drop_line
            .is_some_and(|at| now.duration_since(at) < self.interval);
        if recent && !force {
            return None;
        }
        let since_last = dropped_total - self.dropped_reported;
        self.dropped_reported = dropped_total;
        self.last_drop_line = Some(now);
        Some(ExportEvent::Dropped {
            since_last,
            total: dropped_total,
            capacity,
        })
    }
}

/// Writes an event as one `tracing` line (target `telemetry::export`).
pub(crate) fn log(event: &ExportEvent) {
    match event {
        ExportEvent::Failing { error, held } => tracing::warn!(
            %error,
            queued = held,
            "span export failing: retrying with backoff, {held} spans kept in the queue \
             (one line every few seconds while this lasts)"
        ),
        ExportEvent::StillFailing {
            failing_for,
            failed_attempts,
            error,
            held,
        } => tracing::warn!(
            %error,
            failing_for_ms = failing_for.as_millis() as u64,
            failed_attempts,
            queued = held,
            "span export still failing after {:.1} s ({failed_attempts} attempts); {held} spans queued",
            failing_for.as_secs_f64()
        ),
        ExportEvent::Dropped {
            since_last,
            total,
            capacity,
        } => tracing::warn!(
            dropped = since_last,
            dropped_total = total,
            queue_capacity = capacity,
            "span export queue full ({capacity} spans): {since_last} spans dropped since the \
             last report, {total} in all"
        ),
        ExportEvent::Recovered {
            down_for,
            failed_attempts,
            delayed,
            dropped,
        } => tracing::info!(
            down_for_ms = down_for.as_millis() as u64,
            failed_attempts,
            delayed,
            dropped,
            "span export recovered after {:.1} s down: {delayed} spans delayed, {dropped} dropped",
            down_for.as_secs_f64()
        ),
        ExportEvent::ShutDown {
            exported,
            dropped,
            abandoned,
        } => {
            if dropped + abandoned > 0 {
                tracing::warn!(
                    exported,
                    dropped,
                    abandoned,
                    "span export shut down: {exported} spans exported, {dropped} dropped \
                     (queue full), {abandoned} abandoned (collector unreachable at shutdown)"
                )
            } else {
                tracing::debug!(exported, "span export shut down: every span exported")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_secs(5);

    fn at(start: Instant, ms: u64) -> Instant {
        start + Duration::from_millis(ms)
    }

    #[test]
    fn one_line_when_failing_starts_then_one_per_interval() {
        let t0 = Instant::now();
        let mut r = Reporter::new(INTERVAL);
        assert!(matches!(
            r.export_failed(t0, "refused", 10, 0),
            Some(ExportEvent::Failing { held: 10, .. })
        ));
        for ms in [100, 300, 700, 1500, 3100, 4999] {
            assert_eq!(r.export_failed(at(t0, ms), "refused", 10, 0), None);
        }
        assert_eq!(
            r.export_failed(at(t0, 5000), "refused", 20, 0),
            Some(ExportEvent::StillFailing {
                failing_for: Duration::from_secs(5),
                failed_attempts: 8,
                error: "refused".into(),
                held: 20,
            })
        );
        assert_eq!(r.export_failed(at(t0, 6000), "refused", 20, 0), None);
    }

    #[test]
    fn recovery_says_how_long_and_what_it_cost() {
        let t0 = Instant::now();
        let mut r = Reporter::new(INTERVAL);
        assert_eq!(r.export_succeeded(t0, 5, 0), None, "no outage, no line");
        r.export_failed(t0, "refused", 1, 3);
        r.export_failed(at(t0, 100), "refused", 1, 3);
        assert_eq!(
            r.export_succeeded(at(t0, 12_000), 900, 10),
            Some(ExportEvent::Recovered {
                down_for: Duration::from_secs(12),
                failed_attempts: 2,
                delayed: 900,
                dropped: 7,
            })
        );
        assert_eq!(r.export_succeeded(at(t0, 12_100), 400, 10), None);
        assert!(
            matches!(
                r.export_failed(at(t0, 12_200), "refused", 1, 10),
                Some(ExportEvent::Failing { .. })
            ),
            "a new outage is announced again"
        );
    }

    #[test]
    fn drops_are_reported_at_once_then_at_most_once_per_interval_with_exact_counts() {
        let t0 = Instant::now();
        let mut r = Reporter::new(INTERVAL);
        assert_eq!(r.drops(t0, 0, 100, false), None);
        assert_eq!(
            r.drops(t0, 3, 100, false),
            Some(ExportEvent::Dropped {
                since_last: 3,
                total: 3,
                capacity: 100
            })
        );
        assert_eq!(r.drops(at(t0, 1000), 50, 100, false), None);
        assert_eq!(r.drops(at(t0, 4999), 60, 100, false), None);
        assert_eq!(
            r.drops(at(t0, 5000), 61, 100, false),
            Some(ExportEvent::Dropped {
                since_last: 58,
                total: 61,
                capacity: 100
            })
        );
        assert_eq!(r.drops(at(t0, 20_000), 61, 100, false), None, "nothing new");
        assert_eq!(
            r.drops(at(t0, 20_001), 62, 100, true),
            Some(ExportEvent::Dropped {
                since_last: 1,
                total: 62,
                capacity: 100
            })
        );
        assert_eq!(
            r.drops(at(t0, 20_002), 63, 100, true),
            Some(ExportEvent::Dropped {
                since_last: 1,
                total: 63,
                capacity: 100
            }),
            "forced at shutdown"
        );
    }
}
