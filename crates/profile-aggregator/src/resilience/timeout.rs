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

use std::time::Duration;

use super::MAX_DELAY;

/// Parses a per-request timeout: a duration above zero and at most
/// [`MAX_DELAY`], so no query string can make a request wait for ever.
pub fn parse_timeout(value: &str) -> Result<Duration, String> {
    match humantime::parse_duration(value.trim()) {
        Ok(d) if !d.is_zero() && d <= MAX_DELAY => Ok(d),
        Ok(_) => Err(format!(
            "{value:?}: a timeout must be above 0 and at most {}",
            humantime::format_duration(MAX_DELAY)
        )),
        Err(_) => Err(format!(
            "{value:?}: expected a duration such as 200ms, 1.5s or 2s"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_positive_bounded_durations() {
        assert_eq!(parse_timeout("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_timeout(" 1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_timeout("0s").unwrap_err().contains("above 0"));
        assert!(parse_timeout("2h").unwrap_err().contains("at most"));
        assert!(parse_timeout("200").unwrap_err().contains("200ms"));
        assert!(parse_timeout("").is_err());
    }
}
