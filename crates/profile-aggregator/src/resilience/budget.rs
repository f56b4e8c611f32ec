//! The retry budget: retries may add at most a fixed fraction of load.
//!
//! Retries help when a dependency fails *now and then*; when it fails
//! *always*, every request retried three times quadruples the load on a
//! service that is already down — a retry storm. A budget caps retries at a
//! fraction of the calls made (`--retry-budget 0.1`: at most one retry per
//! ten calls, over a sliding window), plus a small floor per window so a
//! cold start, or a quiet service, can still retry at all. This is the
//! scheme of Finagle's `RetryBudget` and gRPC's retry throttling.
//!
//! The window is a ring of one-second-ish buckets of counts, so memory stays
//! constant however busy the service is. Time comes in as a parameter
//! (`now`), so the tests drive a fake clock and never sleep.

use std::time::{Duration, Instant};

/// Buckets in the sliding window: the window slides in steps of
/// `window / BUCKETS`.
const BUCKETS: usize = 10;

/// How many retries the budget allows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetConfig {
    /// Retries allowed per call made, e.g. 0.1.
    pub ratio: f64,
    /// Retries always allowed per window, whatever the traffic.
    pub min_per_window: u32,
    /// How far back calls and retries are counted.
    pub window: Duration,
}

/// Calls and retries over the last `window`, per dependency.
#[derive(Debug)]
pub struct RetryBudget {
    config: BudgetConfig,
    epoch: Instant,
    bucket_len: Duration,
    /// `(bucket number since epoch, calls, retries)`; a slot whose number is
    /// out of the window counts as empty.
    buckets: [(u64, u64, u64); BUCKETS],
}

impl RetryBudget {
    pub fn new(config: BudgetConfig, now: Instant) -> Self {
        let bucket_len = (config.window / BUCKETS as u32).max(Duration::from_millis(1));
        Self {
            config,
            epoch: now,
            bucket_len,
            buckets: [(u64::MAX, 0, 0); BUCKETS],
        }
    }

    pub fn config(&self) -> BudgetConfig {
        self.config
    }

    /// Every call to the dependency deposits into the budget.
    pub fn record_call(&mut self, now: Instant) {
        self.bucket(now).1 += 1;
    }

    /// Whether one more retry fits; if it does, it is counted.
    pub fn try_retry(&mut self, now: Instant) -> bool {
        let (calls, retries) = self.totals(now);
        let allowed = self.config.min_per_window as f64 + self.config.ratio * calls as f64;
        // The epsilon keeps 0.1 × 30 = 3.0000000000000004 from refusing
        // the third retry through rounding.
        if (retries as f64) + 1.0 <= allowed + 1e-9 {
            self.bucket(now).2 += 1;
            true
        } else {
            false
        }
    }

    /// `(calls, retries)` inside the window ending at `now`.
    pub fn totals(&self, now: Instant) -> (u64, u64) {
        let current = self.bucket_number(now);
        self.buckets
            .iter()
            .filter(|(n, _, _)| *n <= current && current - n < BUCKETS as u64)
            .fold((0, 0), |(c, r), (_, calls, retries)| {
                (c + calls, r + retries)
            })
    }

    fn bucket_number(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.epoch);
        (since.as_nanos() / self.bucket_len.as_nanos()) as u64
    }

    fn bucket(&mut self, now: Instant) -> &mut (u64, u64, u64) {
        let number = self.bucket_number(now);
        let slot = &mut self.buckets[(number % BUCKETS as u64) as usize];
        if slot.0 != number {
            *slot = (number, 0, 0);
        }
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(ratio: f64, min_per_window: u32) -> (RetryBudget, Instant) {
        let now = Instant::now();
        let config = BudgetConfig {
            ratio,
            min_per_window,
            window: Duration::from_secs(10),
        };
        (RetryBudget::new(config, now), now)
    }

    #[test]
    fn the_floor_lets_a_cold_start_retry() {
        let (mut b, now) = budget(0.1, 3);
        b.record_call(now);
        assert!(b.try_retry(now));
        assert!(b.try_retry(now));
        assert!(b.try_retry(now));
        // 3 + 0.1 × 1 = 3.1: a fourth retry does not fit.
        assert!(!b.try_retry(now));
        assert_eq!(b.totals(now), (1, 3));
    }

    #[test]
    fn retries_stay_under_the_ratio_of_calls() {
        let (mut b, now) = budget(0.1, 0);
        let mut granted = 0;
        for i in 0..1000 {
            let t = now + Duration::from_millis(i);
            b.record_call(t);
            // A dependency that always fails: every call wants a retry.
            if b.try_retry(t) {
                granted += 1;
            }
        }
        assert_eq!(granted, 100, "10% of 1000 calls");
    }

    #[test]
    fn no_floor_and_no_calls_means_no_retry() {
        let (mut b, now) = budget(0.5, 0);
        assert!(!b.try_retry(now));
        b.record_call(now);
        assert!(!b.try_retry(now), "0.5 retries is not one retry");
        b.record_call(now);
        assert!(b.try_retry(now));
    }

    #[test]
    fn old_calls_and_retries_slide_out_of_the_window() {
        let (mut b, now) = budget(0.0, 2);
        assert!(b.try_retry(now));
        assert!(b.try_retry(now));
        assert!(!b.try_retry(now + Duration::from_secs(9)));
        // Eleven seconds later the first bucket has left the 10 s window.
        let later = now + Duration::from_secs(11);
        assert_eq!(b.totals(later), (0, 0));
        assert!(b.try_retry(later));
    }

    #[test]
    fn a_clock_before_the_epoch_is_not_a_panic() {
        let now = Instant::now() + Duration::from_secs(5);
        let config = BudgetConfig {
            ratio: 0.1,
            min_per_window: 1,
            window: Duration::ZERO,
        };
        let mut b = RetryBudget::new(config, now);
        b.record_call(now - Duration::from_secs(1));
        assert!(b.try_retry(now - Duration::from_secs(2)));
    }
}
