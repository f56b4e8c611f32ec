//! Latency quantiles of a run's records, from an HDR histogram: exact to
//! three significant digits from a microsecond to an hour, whatever the
//! number of requests (the gate and the `up --load` summary use it; the
//! reports may build their own the same way).

use std::time::Duration;

use hdrhistogram::Histogram;

use super::record::{Outcome, Record};

/// Longest latency recorded (longer ones are counted at this).
pub const MAX_RECORDED_US: u64 = 3_600_000_000;

/// Whether a record's latency belongs in the distribution: every answer
/// (any status) and every timeout (a request that waited that long; leaving
/// it out would hide the worst of the tail). A refused connection or a
/// broken answer has no meaningful latency.
pub fn has_latency(record: &Record) -> bool {
    matches!(record.outcome, Outcome::Status(_) | Outcome::Timeout)
}

/// Whether a record counts as an error: anything but a 2xx or 3xx answer.
pub fn is_error(outcome: &Outcome) -> bool {
    !matches!(outcome, Outcome::Status(status) if (200..400).contains(status))
}

/// An empty histogram with the bounds every latency histogram here uses.
pub fn empty() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_RECORDED_US, 3).expect("valid histogram bounds")
}

/// Adds one latency, in µs, clamped to the histogram's bounds.
pub fn record(histogram: &mut Histogram<u64>, latency: Duration) {
    let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
    histogram.saturating_record(us.clamp(1, MAX_RECORDED_US));
}

/// The latencies of the records that have one (see [`has_latency`]).
pub fn latencies<'a>(records: impl IntoIterator<Item = &'a Record>) -> Histogram<u64> {
    let mut histogram = empty();
    for r in records.into_iter().filter(|r| has_latency(r)) {
        record(&mut histogram, r.latency);
    }
    histogram
}

/// The latency at quantile `q` (0..=1), `None` when nothing was recorded.
pub fn quantile(histogram: &Histogram<u64>, q: f64) -> Option<Duration> {
    (!histogram.is_empty()).then(|| {
        let value = histogram.value_at_quantile(q);
        Duration::from_micros(histogram.median_equivalent(value))
    })
}

/// The largest latency recorded, `None` when nothing was recorded.
pub fn max(histogram: &Histogram<u64>) -> Option<Duration> {
    (!histogram.is_empty())
        .then(|| Duration::from_micros(histogram.median_equivalent(histogram.max())))
}
