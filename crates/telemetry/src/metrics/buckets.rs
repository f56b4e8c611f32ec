//! Histogram bucket boundaries for every duration of the suite.
//!
//! A percentile read from a histogram is only as precise as the bucket it
//! falls in: Prometheus' `histogram_quantile` interpolates linearly inside
//! it. The semantic conventions' default boundaries (0.005 … 10 s) stop at
//! 10 s — this suite's hangs, timeouts and `--max-delay` reach 30 s and a
//! retried call longer still, all of which would land in `+Inf` — and jump
//! from 0.25 to 0.5 to 0.75 to 1 s, exactly where the lessons' tails live
//! (a `lognormal(median=80ms,p99=900ms)` order service, a 200 ms timeout, a
//! p95 hedge delay). So these boundaries:
//!
//! - start at 0.5 ms, where a mock's in-process answer and a rejected call
//!   (breaker open, bulkhead full) fall, so "fast failure" is visible;
//! - are dense from 50 ms to 1 s (steps of 25–100 ms), so a p99 of 900 ms and
//!   one of 700 ms do not share a bucket;
//! - end at 30 s, the mocks' `--max-delay`, with a 60 s bucket above for the
//!   longest timeout a request may ask for (1 minute).
//!
//! Thirty-one bounds (32 buckets) per series: cheap for a handful of routes.

/// Upper bounds in seconds, ascending.
pub const DURATION_BOUNDARIES: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.4,
    0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 2.0, 2.5, 5.0, 7.5, 10.0, 15.0, 30.0, 60.0,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascending_from_sub_millisecond_to_past_the_longest_delay() {
        assert!(DURATION_BOUNDARIES.windows(2).all(|w| w[0] < w[1]));
        assert!(DURATION_BOUNDARIES[0] < 0.001);
        assert!(DURATION_BOUNDARIES.contains(&30.0), "--max-delay");
        assert!(*DURATION_BOUNDARIES.last().unwrap() >= 60.0, "MAX_DELAY");
        // Dense where the tails live: at least ten bounds in [50 ms, 1 s].
        let dense = DURATION_BOUNDARIES
            .iter()
            .filter(|b| (0.05..=1.0).contains(*b))
            .count();
        assert!(dense >= 10, "{dense}");
    }
}
