//! When each request of an open loop is due: computed from the run's start
//! for request *i*, never by adding up sleeps, so a late wake-up does not
//! push every later request back (the generator's own error stays its own).

use std::time::Duration;

/// A request rate, constant or a linear ramp over the run's duration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Requests per second at the start.
    pub start: f64,
    /// Requests per second at the end (equal to `start` when constant).
    pub end: f64,
}

impl Rate {
    pub fn is_ramp(&self) -> bool {
        self.start != self.end
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_ramp() {
            write!(f, "{}..{}/s", self.start, self.end)
        } else {
            write!(f, "{}/s", self.start)
        }
    }
}

/// `--rate`: `200` or a ramp `50..500` (requests per second, above 0).
pub fn parse_rate(value: &str) -> Result<Rate, String> {
    let one = |s: &str| -> Result<f64, String> {
        let s = s.trim().trim_end_matches("/s");
        let rate: f64 = s
            .parse()
            .map_err(|_| format!("{s:?} is not a rate: expected e.g. 200 or 50..500"))?;
        if !(rate.is_finite() && rate > 0.0) {
            return Err(format!(
                "a rate of {s} requests per second sends nothing: above 0"
            ));
        }
        if rate > 100_000.0 {
            return Err(format!(
                "{s} requests per second is more than this tool sends: at most 100000"
            ));
        }
        Ok(rate)
    };
    match value.split_once("..") {
        Some((start, end)) => Ok(Rate {
            start: one(start)?,
            end: one(end)?,
        }),
        None => {
            let rate = one(value)?;
            Ok(Rate {
                start: rate,
                end: rate,
            })
        }
    }
}

/// The intended send times of an open loop.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    rate: Rate,
    /// Over which the ramp goes from `rate.start` to `rate.end`.
    ramp_over: Duration,
}

impl Schedule {
    /// `ramp_over` only matters for a ramp (the run's duration).
    pub fn new(rate: Rate, ramp_over: Duration) -> Self {
        Self { rate, ramp_over }
    }

    /// When request `i` (from 0) is due, from the schedule's start: the time
    /// at which the integral of the rate reaches `i`.
    pub fn due(&self, i: u64) -> Duration {
        let n = i as f64;
        let (r0, r1) = (self.rate.start, self.rate.end);
        let d = self.ramp_over.as_secs_f64();
        let seconds = if !self.rate.is_ramp() || d <= 0.0 {
            n / r0
        } else {
            // N(t) = r0·t + a·t²/2 with a = (r1 − r0)/d, solved for t; past
            // the ramp's end the rate stays at r1.
            let a = (r1 - r0) / d;
            let at_end = (r0 + r1) / 2.0 * d;
            if n >= at_end {
                d + (n - at_end) / r1
            } else {
                let disc = (r0 * r0 + 2.0 * a * n).max(0.0);
                // The numerically stable root (no r0 − r0 cancellation).
                2.0 * n / (r0 + disc.sqrt())
            }
        };
        Duration::from_secs_f64(seconds)
    }

    /// How many requests are due before `duration`.
    pub fn count_before(&self, duration: Duration) -> u64 {
        // The count is small enough to search: due() is monotonic.
        let (mut low, mut high) = (0u64, 1u64);
        while self.due(high) < duration {
            high *= 2;
        }
        while low < high {
            let mid = low + (high - low) / 2;
            if self.due(mid) < duration {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        low
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_constant_rate_is_evenly_spaced() {
        let s = Schedule::new(parse_rate("200").unwrap(), Duration::from_secs(10));
        assert_eq!(s.due(0), Duration::ZERO);
        assert_eq!(s.due(1), Duration::from_millis(5));
        assert_eq!(s.due(2000), Duration::from_secs(10));
        assert_eq!(s.count_before(Duration::from_secs(10)), 2000);
    }

    #[test]
    fn a_ramp_sends_the_area_under_it_and_speeds_up() {
        let s = Schedule::new(parse_rate("50..500").unwrap(), Duration::from_secs(10));
        // (50 + 500) / 2 × 10 s = 2750 requests.
        assert_eq!(s.count_before(Duration::from_secs(10)), 2750);
        let first_gap = s.due(1) - s.due(0);
        let last_gap = s.due(2749) - s.due(2748);
        assert!(
            (first_gap.as_secs_f64() - 0.02).abs() < 0.001,
            "{first_gap:?}"
        );
        assert!(
            (last_gap.as_secs_f64() - 0.002).abs() < 0.0002,
            "{last_gap:?}"
        );
        let down = Schedule::new(parse_rate("500..50").unwrap(), Duration::from_secs(10));
        assert_eq!(down.count_before(Duration::from_secs(10)), 2750);
    }

    #[test]
    fn rates_are_read_or_refused() {
        assert_eq!(parse_rate("200").unwrap().start, 200.0);
        assert_eq!(parse_rate("50..500").unwrap().end, 500.0);
        assert!(parse_rate("0").unwrap_err().contains("above 0"));
        assert!(parse_rate("-3").is_err());
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("10..0").is_err());
    }
}
