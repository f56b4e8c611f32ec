//! Retries with exponential backoff and full jitter.
//!
//! Only what another try can fix is retried: a 5xx, a refused connection, a
//! timeout. A 4xx is the request's own fault and fails the same way every
//! time, so it is never retried (the judgement is `crate::failure`'s, shared
//! with the hedge, the breaker and the fallback). The waits grow exponentially
//! (`--retry-backoff` × 2ⁿ, capped at `--retry-max-backoff`) so a struggling
//! dependency gets more air each time, and each wait is drawn uniformly
//! between zero and that bound ("full jitter") so a crowd of clients that
//! failed together does not come back together.
//!
//! The schedule is `retry_policies::ExponentialBackoff`, the policy crate
//! `reqwest-retry` is built on. The loop itself is ours (see
//! [`crate::downstream`]) rather than `reqwest-retry`'s middleware, because
//! every attempt must be its own CLIENT span with `http.request.resend_count`
//! (the middleware does not tell the span which attempt it is), a retry must
//! ask the [budget](super::budget) first, and each wait must be a span.
//!
//! Each wait is an INTERNAL span `retry.backoff` (attributes `retry.delay_ms`
//! and `http.request.resend_count` of the attempt it precedes), so the
//! trace shows the backoff as a gap that grows from one attempt to the next.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use retry_policies::policies::ExponentialBackoff;
use retry_policies::{Jitter, RetryDecision, RetryPolicy};
use tracing::Instrument;

/// How the backoff is randomised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RetryJitter {
    /// Uniform between zero and the exponential bound (the default).
    #[default]
    Full,
    /// Exactly the exponential bound: for demos and tests that want to see
    /// the doubling.
    None,
}

impl FromStr for RetryJitter {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "full" => Ok(Self::Full),
            "none" => Ok(Self::None),
            other => Err(format!("{other:?}: expected full or none")),
        }
    }
}

impl fmt::Display for RetryJitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Full => "full",
            Self::None => "none",
        })
    }
}

/// The retry schedule of a dependency.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryConfig {
    /// Retries after the first attempt (so `max_retries + 1` attempts).
    pub max_retries: u32,
    /// Bound of the first wait; doubles for each further retry.
    pub backoff: Duration,
    /// Cap of any one wait.
    pub max_backoff: Duration,
    pub jitter: RetryJitter,
}

impl RetryConfig {
    fn policy(&self) -> ExponentialBackoff {
        let max_backoff = self.max_backoff.max(self.backoff);
        ExponentialBackoff::builder()
            .retry_bounds(self.backoff, max_backoff)
            .jitter(match self.jitter {
                RetryJitter::Full => Jitter::Full,
                RetryJitter::None => Jitter::None,
            })
            .base(2)
            .build_with_max_retries(self.max_retries)
    }

    /// How long to wait before resend number `past_retries + 1`, or `None`
    /// once `max_retries` retries have been made.
    pub fn delay(&self, past_retries: u32) -> Option<Duration> {
        let started = SystemTime::now();
        match self.policy().should_retry(started, past_retries) {
            RetryDecision::Retry { execute_after } => Some(
                execute_after
                    .duration_since(started)
                    .unwrap_or(Duration::ZERO),
            ),
            RetryDecision::DoNotRetry => None,
        }
    }
}

/// Waits `delay` inside an INTERNAL span `retry.backoff`.
pub async fn backoff(dependency: &'static str, delay: Duration, resend_count: u32) {
    let span = tracing::info_span!(
        "retry.backoff",
        otel.name = "retry.backoff",
        otel.kind = "internal",
        dependency,
        retry.delay_ms = delay.as_secs_f64() * 1000.0,
        http.request.resend_count = i64::from(resend_count),
    );
    tokio::time::sleep(delay).instrument(span).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(jitter: RetryJitter) -> RetryConfig {
        RetryConfig {
            max_retries: 4,
            backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(300),
            jitter,
        }
    }

    #[test]
    fn without_jitter_the_waits_double_up_to_the_cap() {
        let c = config(RetryJitter::None);
        let waits: Vec<u128> = (0..4).map(|n| c.delay(n).unwrap().as_millis()).collect();
        // Allow the microsecond the policy's own clock read may cost.
        let expected = [50, 100, 200, 300];
        for (got, want) in waits.iter().zip(expected) {
            assert!(*got == want || *got + 1 == want, "{waits:?}");
        }
        assert_eq!(c.delay(4), None, "max_retries reached");
    }

    #[test]
    fn full_jitter_stays_between_zero_and_the_bound() {
        let c = config(RetryJitter::Full);
        for n in 0..4 {
            let bound = Duration::from_millis(50 * 2_u64.pow(n)).min(Duration::from_millis(300));
            for _ in 0..50 {
                let d = c.delay(n).unwrap();
                assert!(d <= bound, "retry {n}: {d:?} > {bound:?}");
            }
        }
    }

    #[test]
    fn zero_retries_never_retry_and_bad_bounds_do_not_panic() {
        let mut c = config(RetryJitter::None);
        c.max_retries = 0;
        assert_eq!(c.delay(0), None);
        c.max_retries = 1;
        c.max_backoff = Duration::from_millis(1);
        assert!(c.delay(0).is_some(), "a cap below the first wait is raised");
    }

    #[test]
    fn jitter_forms() {
        assert_eq!("full".parse(), Ok(RetryJitter::Full));
        assert_eq!("none".parse(), Ok(RetryJitter::None));
        assert!("some".parse::<RetryJitter>().is_err());
    }
}
