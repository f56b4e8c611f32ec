//! The numbers of a [`Run`], computed once from its records: the text
//! report, the compare table, `summary.json` and the plots all read these,
//! so they cannot disagree.
//!
//! Every request's latency counts, failures included (at the moment they
//! failed): a timeout *is* the tail, leaving it out would flatter the p99.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::record::{Outcome, Pacing, Record, Run};

/// Longest latency the histograms record (longer ones are counted at this).
pub const MAX_RECORDED_US: u64 = 3_600_000_000;

/// The percentiles every output shows, with their names.
pub const PERCENTILES: [(&str, f64); 5] = [
    ("p50", 0.5),
    ("p90", 0.9),
    ("p99", 0.99),
    ("p99.9", 0.999),
    ("p99.99", 0.9999),
];

/// An empty latency histogram in µs, 3 significant digits, 1 µs to 1 h.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_RECORDED_US, 3).expect("valid histogram bounds")
}

/// `d` in whole µs, clamped into the histogram's range.
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros())
        .unwrap_or(u64::MAX)
        .clamp(1, MAX_RECORDED_US)
}

/// The value a histogram reports at quantile `q`, in µs.
pub fn quantile_us(histogram: &Histogram<u64>, q: f64) -> u64 {
    histogram.median_equivalent(histogram.value_at_quantile(q))
}

/// A whole run in numbers (what `summary.json` holds).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub pacing: PacingSummary,
    /// From the first intended send to the last answer.
    pub elapsed_us: u64,
    pub requests: u64,
    /// Requests (any outcome) per second over `elapsed`.
    pub achieved_per_s: f64,
    /// Open loop: sent later than intended because `max_in_flight` was reached.
    pub late: u64,
    /// Stopped early by Ctrl-C.
    pub interrupted: bool,
    /// Open loop: the generator's own scheduling error (sent − intended).
    pub send_lag_us: Option<Percentiles>,
    /// One per variant, in the run's order.
    pub variants: Vec<VariantSummary>,
}

/// How the requests were paced, as `summary.json` says it.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "loop", rename_all = "snake_case")]
pub enum PacingSummary {
    Open {
        /// Asked at the start and at the end (a linear ramp between).
        rate_per_s: (f64, f64),
        /// The mean rate asked over the run.
        asked_per_s: f64,
        max_in_flight: u64,
    },
    Closed {
        concurrency: u64,
    },
}

/// One variant in numbers.
#[derive(Debug, Clone, Serialize)]
pub struct VariantSummary {
    pub label: String,
    pub url: String,
    pub requests: u64,
    /// Requests that did not get a 1xx–3xx answer.
    pub errors: u64,
    /// `errors / requests` (0 when there were none).
    pub error_rate: f64,
    /// Answers by HTTP status.
    pub statuses: BTreeMap<u16, u64>,
    pub timeouts: u64,
    pub connect_errors: u64,
    /// Other failures by reason.
    pub other_errors: BTreeMap<String, u64>,
    /// `None` when the variant sent nothing.
    pub latency_us: Option<Percentiles>,
    /// The variant's latencies, for the histogram bars and the plots.
    #[serde(skip)]
    pub histogram: Histogram<u64>,
}

/// Latency percentiles in µs.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Percentiles {
    pub min: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    #[serde(rename = "p99.9")]
    pub p99_9: u64,
    #[serde(rename = "p99.99")]
    pub p99_99: u64,
    pub max: u64,
}

impl Percentiles {
    /// `None` for an empty histogram.
    pub fn of(histogram: &Histogram<u64>) -> Option<Self> {
        (!histogram.is_empty()).then(|| {
            let at = |q| quantile_us(histogram, q);
            Percentiles {
                min: histogram.median_equivalent(histogram.min()),
                p50: at(0.5),
                p90: at(0.9),
                p99: at(0.99),
                p99_9: at(0.999),
                p99_99: at(0.9999),
                max: histogram.median_equivalent(histogram.max()),
            }
        })
    }

    /// The values in [`PERCENTILES`]' order, then the max.
    pub fn values(&self) -> [u64; 6] {
        [
            self.p50,
            self.p90,
            self.p99,
            self.p99_9,
            self.p99_99,
            self.max,
        ]
    }
}

impl Summary {
    pub fn of(run: &Run) -> Self {
        let mut variants: Vec<VariantSummary> = run
            .variants
            .iter()
            .map(|v| VariantSummary {
                label: v.label.clone(),
                url: v.url.to_string(),
                requests: 0,
                errors: 0,
                error_rate: 0.0,
                statuses: BTreeMap::new(),
                timeouts: 0,
                connect_errors: 0,
                other_errors: BTreeMap::new(),
                latency_us: None,
                histogram: new_histogram(),
            })
            .collect();
        for record in &run.records {
            // A record of an unknown variant is a bug in the engine: it is
            // still counted in the run's total, never a panic here.
            if let Some(variant) = variants.get_mut(record.variant) {
                variant.add(record);
            }
        }
        // The generator's own scheduling error, as the engine measured it:
        // requests held back by --max-in-flight are not its error.
        let mut send_lag = new_histogram();
        for lag in &run.send_lag {
            send_lag.saturating_record(micros(*lag));
        }
        for variant in &mut variants {
            variant.latency_us = Percentiles::of(&variant.histogram);
            variant.error_rate = ratio(variant.errors, variant.requests);
        }
        let requests = run.records.len() as u64;
        Summary {
            pacing: PacingSummary::of(&run.pacing),
            elapsed_us: u64::try_from(run.elapsed.as_micros()).unwrap_or(u64::MAX),
            requests,
            achieved_per_s: requests as f64 / run.elapsed.as_secs_f64().max(1e-9),
            late: run.late,
            interrupted: run.interrupted,
            send_lag_us: match run.pacing {
                Pacing::Open { .. } => Percentiles::of(&send_lag),
                // Closed loop: sent is intended by definition.
                Pacing::Closed { .. } => None,
            },
            variants,
        }
    }
}

impl PacingSummary {
    fn of(pacing: &Pacing) -> Self {
        match *pacing {
            Pacing::Open {
                rate,
                max_in_flight,
            } => PacingSummary::Open {
                rate_per_s: rate,
                asked_per_s: (rate.0 + rate.1) / 2.0,
                max_in_flight,
            },
            Pacing::Closed { concurrency } => PacingSummary::Closed { concurrency },
        }
    }
}

impl VariantSummary {
    fn add(&mut self, record: &Record) {
        self.requests += 1;
        self.histogram.saturating_record(micros(record.latency));
        if !is_success(&record.outcome) {
            self.errors += 1;
        }
        match &record.outcome {
            Outcome::Status(status) => *self.statuses.entry(*status).or_default() += 1,
            Outcome::Timeout => self.timeouts += 1,
            Outcome::Connect => self.connect_errors += 1,
            Outcome::Other(reason) => *self.other_errors.entry(reason.clone()).or_default() += 1,
        }
    }
}

/// A 1xx–3xx answer; anything else is an error.
pub fn is_success(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Status(s) if *s < 400)
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Synthetic runs for the reports' tests: deterministic, so snapshots
    //! stay put.

    use std::time::Duration;

    use trace_view::TraceId;

    use crate::load::record::{Outcome, Pacing, Record, Run, Variant};

    pub fn variant(label: &str) -> Variant {
        let url = format!("http://127.0.0.1:8080/user-profile/42?{label}");
        Variant {
            label: label.to_owned(),
            url: reqwest::Url::parse(&url).expect("valid URL"),
            headers: Vec::new(),
        }
    }

    /// One request every `1/rate` s; the latency in ms of request `i` is
    /// `latency_ms(i)`, scaled per variant by `scale[variant]`.
    fn records(
        count: u64,
        rate: f64,
        scale: &[f64],
        latency_ms: impl Fn(u64) -> f64,
        outcome: impl Fn(u64) -> Outcome,
        lag_us: impl Fn(u64) -> u64,
    ) -> Vec<Record> {
        (0..count)
            .map(|i| {
                let variant = (i % scale.len() as u64) as usize;
                let intended = Duration::from_secs_f64(i as f64 / rate);
                Record {
                    variant,
                    intended,
                    sent: intended + Duration::from_micros(lag_us(i)),
                    latency: Duration::from_secs_f64(latency_ms(i) * scale[variant] / 1000.0),
                    outcome: outcome(i),
                    trace_id: (i % 7 != 6).then_some(TraceId(0xabc0_0000 + u128::from(i))),
                }
            })
            .collect()
    }

    /// 1000 requests at 100/s, open loop: mostly 20–29 ms, a 1 s stall
    /// around t = 5 s (requests due in it wait for its end), a few 503s,
    /// timeouts, a connect error and a broken answer; 12 sent late.
    pub fn open_single() -> Run {
        let stall = 500..600u64; // the requests due from 5 s to 6 s
        Run {
            pacing: Pacing::Open {
                rate: (100.0, 100.0),
                max_in_flight: 64,
            },
            variants: vec![variant("mode=concurrent")],
            elapsed: Duration::from_millis(10_030),
            records: records(
                1000,
                100.0,
                &[1.0],
                |i| {
                    if stall.contains(&i) {
                        // Waits for the stall's end at 6 s.
                        20.0 + (600 - i) as f64 * 10.0
                    } else {
                        20.0 + (i * 37 % 10) as f64
                    }
                },
                |i| match i {
                    _ if i % 97 == 5 => Outcome::Status(503),
                    510 | 520 => Outcome::Timeout,
                    900 => Outcome::Connect,
                    901 => Outcome::Other("body: connection reset".to_owned()),
                    _ => Outcome::Status(200),
                },
                |i| {
                    if (500..512).contains(&i) {
                        2_000
                    } else {
                        40 + i % 60
                    }
                },
            ),
            late: 12,
            interrupted: false,
            // Requests 500..512 were held back (late): not the generator's lag.
            send_lag: (0..1000u64)
                .filter(|i| !(500..512).contains(i))
                .map(|i| Duration::from_micros(40 + i % 60))
                .collect(),
        }
    }

    /// 900 requests, closed loop with 4 in flight, three variants at 1.0,
    /// 0.5 and 0.8 of the same latencies; variant 0 has two 500s.
    pub fn closed_three() -> Run {
        Run {
            pacing: Pacing::Closed { concurrency: 4 },
            variants: vec![
                variant("mode=sequential"),
                variant("mode=concurrent"),
                variant("mode=concurrent&hedge_after=p95"),
            ],
            elapsed: Duration::from_secs(9),
            records: records(
                900,
                100.0,
                &[1.0, 0.5, 0.8],
                |i| 100.0 + (i * 53 % 100) as f64 + if i % 149 == 0 { 900.0 } else { 0.0 },
                |i| {
                    if i == 3 || i == 6 {
                        Outcome::Status(500)
                    } else {
                        Outcome::Status(200)
                    }
                },
                |_| 0,
            ),
            late: 0,
            interrupted: true,
            send_lag: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_errors_by_kind_and_percentiles_per_variant() {
        let summary = Summary::of(&fixtures::open_single());
        assert_eq!(summary.requests, 1000);
        let v = &summary.variants[0];
        assert_eq!(v.requests, 1000);
        let n503 = (0..1000).filter(|i| i % 97 == 5).count() as u64;
        assert_eq!(v.statuses.get(&503), Some(&n503));
        assert_eq!((v.timeouts, v.connect_errors), (2, 1));
        assert_eq!(v.other_errors.len(), 1);
        assert_eq!(v.errors, n503 + 4);
        let p = v.latency_us.unwrap();
        assert!(p.p50 >= 20_000 && p.p50 < 30_000, "{p:?}");
        // 10 % of the requests were due in the stall: the p99 sees it.
        assert!(p.p99 > 500_000, "{p:?}");
        assert!((1_000_000..1_030_000).contains(&p.max), "{p:?}");
        assert!((99.0..101.0).contains(&summary.achieved_per_s));
        let lag = summary.send_lag_us.unwrap();
        // The 12 requests held back by --max-in-flight (2 ms late) are not
        // the generator's own error: the send lag leaves them out.
        assert!(lag.max < 1_000 && lag.p50 < 200, "{lag:?}");
    }

    #[test]
    fn closed_loop_has_no_send_lag_and_splits_variants() {
        let summary = Summary::of(&fixtures::closed_three());
        assert!(summary.send_lag_us.is_none());
        assert_eq!(summary.pacing, PacingSummary::Closed { concurrency: 4 });
        let counts: Vec<u64> = summary.variants.iter().map(|v| v.requests).collect();
        assert_eq!(counts, [300, 300, 300]);
        assert_eq!(summary.variants[0].errors, 2);
        let p50 = |i: usize| summary.variants[i].latency_us.unwrap().p50 as f64;
        assert!((p50(1) / p50(0) - 0.5).abs() < 0.01);
    }
}
