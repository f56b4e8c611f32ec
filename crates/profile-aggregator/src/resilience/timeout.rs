//! Per-dependency timeouts: `--user-timeout` / `--order-timeout`, and per
//! request `?user_timeout=200ms&order_timeout=…`.
//!
//! The timeout bounds *one attempt*: reqwest's per-request timeout, so a
//! call that runs out of time ends its CLIENT span with `error.type =
//! timeout` and an error status, and the request answers 504 (unless a
//! fallback applies). The same bound caps the wait for a bulkhead permit.
//! With retries on, a timed-out attempt may be retried, so a whole call
//! lasts at most `(retries + 1) × timeout` plus the backoffs — still
//! bounded; lower the timeout or the retries to shorten it.
//!
//! Flags and query parameters accept the same range, [`MIN_DELAY`] to
//! [`MAX_DELAY`] (1 ms to 1 minute), through [`parse_timeout`].

use std::time::Duration;

use super::{MAX_DELAY, MIN_DELAY};

/// Parses a timeout, from a flag or a query: a duration of at least
/// [`MIN_DELAY`] (below it, every call would time out: a slip of the unit)
/// and at most [`MAX_DELAY`] (no flag or query string can make a request
/// wait for ever).
pub fn parse_timeout(value: &str) -> Result<Duration, String> {
    match humantime::parse_duration(value.trim()) {
        Ok(d) if (MIN_DELAY..=MAX_DELAY).contains(&d) => Ok(d),
        Ok(_) => Err(format!("{value:?}: a timeout must be {}", accepted_range())),
        Err(_) => Err(format!(
            "{value:?}: expected a duration such as 200ms, 1.5s or 2s"
        )),
    }
}

/// "at least 1ms and at most 1m": the words every refusal of a timeout or
/// a hedge delay states its range in.
pub fn accepted_range() -> String {
    format!(
        "at least {} and at most {}",
        humantime::format_duration(MIN_DELAY),
        humantime::format_duration(MAX_DELAY)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_bounded_durations() {
        assert_eq!(parse_timeout("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_timeout(" 1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_timeout("2h").unwrap_err().contains("at most"));
        assert!(parse_timeout("200").unwrap_err().contains("200ms"));
        assert!(parse_timeout("").is_err());
    }

    #[test]
    fn the_range_is_one_millisecond_to_one_minute_both_included() {
        assert_eq!(parse_timeout("1ms"), Ok(MIN_DELAY));
        assert_eq!(parse_timeout("1000us"), Ok(MIN_DELAY));
        assert_eq!(parse_timeout("60s"), Ok(MAX_DELAY));
        assert_eq!(parse_timeout("1m"), Ok(MAX_DELAY));
        for below in ["0s", "0ms", "1ns", "999us", "999999ns"] {
            assert_eq!(
                parse_timeout(below),
                Err(format!(
                    "{below:?}: a timeout must be at least 1ms and at most 1m"
                )),
                "{below}"
            );
        }
        assert!(parse_timeout("60001ms")
            .unwrap_err()
            .contains("at least 1ms and at most 1m"));
    }
}
