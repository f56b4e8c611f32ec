//! How long to wait before trying a failed batch again.

use std::time::Duration;

/// Exponential backoff between attempts at one batch: `initial` after the
/// first failure, doubling after each further one, never more than `max`.
///
/// The cap keeps the delay between a collector coming back and the first
/// successful export short (at most `max`), while a long outage costs one
/// refused connection every `max` rather than a tight loop. No jitter: one
/// exporter per process, and the lab's few processes do not synchronise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    /// 100 ms, 200 ms, 400 ms … up to 5 s.
    pub const DEFAULT: Backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(5),
    };

    /// The wait after `failures` consecutive failed attempts (1 for the first).
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.initial.saturating_mul(1u32 << doublings).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_the_initial_delay_up_to_the_cap() {
        let b = Backoff::DEFAULT;
        let delays: Vec<u128> = (1..=9).map(|n| b.delay(n).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
        assert_eq!(b.delay(u32::MAX), b.max, "no overflow");
        assert_eq!(b.delay(0), b.initial);
    }
}
