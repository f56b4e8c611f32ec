//! `--fail-if`: conditions a run must not meet, so `latency-lab load` can
//! guard a CI job. Each is `METRIC>LIMIT` (also `>=`, `<`, `<=`): `p99>300ms`
//! (any quantile: `p50`, `p99.9`, …), `max>2s`, `errors>1%` (share of
//! requests) or `errors>5` (a count). Evaluated per variant when comparing.

use std::fmt;
use std::time::Duration;

use service_kit::cli::parse_duration;

use super::format_duration;
use super::quantiles;
use super::record::Run;

/// One `--fail-if` condition, as parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// As the user wrote it.
    pub text: String,
    metric: Metric,
    op: Op,
    limit: Limit,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Metric {
    /// A quantile, 0..=1.
    Quantile(f64),
    Max,
    Errors,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Above,
    AtLeast,
    Below,
    AtMost,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Limit {
    Latency(Duration),
    Share(f64),
    Count(u64),
}

impl Op {
    fn holds<T: PartialOrd>(self, value: T, limit: T) -> bool {
        match self {
            Op::Above => value > limit,
            Op::AtLeast => value >= limit,
            Op::Below => value < limit,
            Op::AtMost => value <= limit,
        }
    }
}

/// Parses `p99>300ms`, `errors>1%`, `max>=2s`, …
pub fn parse_condition(value: &str) -> Result<Condition, String> {
    let text: String = value.split_whitespace().collect();
    let usage = "expected METRIC>LIMIT, e.g. 'p99>300ms', 'max>2s', 'errors>1%' or 'errors>5'";
    let (at, op, width) = [
        (">=", Op::AtLeast),
        ("<=", Op::AtMost),
        (">", Op::Above),
        ("<", Op::Below),
    ]
    .iter()
    .find_map(|(symbol, op)| text.find(symbol).map(|at| (at, *op, symbol.len())))
    .ok_or_else(|| format!("{value:?}: {usage}"))?;
    let (name, limit) = (&text[..at], &text[at + width..]);
    let metric = match name {
        "max" => Metric::Max,
        "errors" => Metric::Errors,
        _ => {
            let digits = name
                .strip_prefix('p')
                .ok_or_else(|| format!("{value:?}: unknown metric {name:?}; {usage}"))?;
            let percent: f64 = digits
                .parse()
                .map_err(|_| format!("{value:?}: unknown metric {name:?}; {usage}"))?;
            if !(percent > 0.0 && percent <= 100.0) {
                return Err(format!("{value:?}: a percentile is between p0 and p100"));
            }
            Metric::Quantile(percent / 100.0)
        }
    };
    let limit = match metric {
        Metric::Errors => match limit.strip_suffix('%') {
            Some(percent) => {
                let share: f64 = percent
                    .parse()
                    .map_err(|_| format!("{value:?}: {limit:?} is not a percentage"))?;
                if !(0.0..=100.0).contains(&share) {
                    return Err(format!("{value:?}: a percentage is between 0% and 100%"));
                }
                Limit::Share(share / 100.0)
            }
            None => Limit::Count(limit.parse().map_err(|_| {
                format!("{value:?}: {limit:?} is neither a percentage (1%) nor a count (5)")
            })?),
        },
        _ => Limit::Latency(parse_duration(limit).map_err(|e| format!("{value:?}: {e}"))?),
    };
    Ok(Condition {
        text,
        metric,
        op,
        limit,
    })
}

/// A condition the run met (so the gate fails), with what was measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Missed {
    pub condition: String,
    /// The variant's label when the run compared several.
    pub variant: Option<String>,
    pub measured: String,
}

impl fmt::Display for Missed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "--fail-if {}: measured {}",
            self.condition, self.measured
        )?;
        if let Some(variant) = &self.variant {
            write!(f, " ({variant})")?;
        }
        Ok(())
    }
}

/// Every condition that holds on the run, per variant.
pub fn evaluate(run: &Run, conditions: &[Condition]) -> Vec<Missed> {
    let mut missed = Vec::new();
    for (index, variant) in run.variants.iter().enumerate() {
        let records: Vec<_> = run.records.iter().filter(|r| r.variant == index).collect();
        let latencies = quantiles::latencies(records.iter().copied());
        let errors = records
            .iter()
            .filter(|r| quantiles::is_error(&r.outcome))
            .count() as u64;
        let total = records.len() as u64;
        for condition in conditions {
            let measured = match (condition.metric, condition.limit) {
                (Metric::Errors, Limit::Share(limit)) => {
                    let share = if total == 0 {
                        0.0
                    } else {
                        errors as f64 / total as f64
                    };
                    condition
                        .op
                        .holds(share, limit)
                        .then(|| format!("{:.2}% errors ({errors} of {total})", share * 100.0))
                }
                (Metric::Errors, Limit::Count(limit)) => condition
                    .op
                    .holds(errors, limit)
                    .then(|| format!("{errors} errors of {total}")),
                (Metric::Quantile(q), Limit::Latency(limit)) => quantiles::quantile(&latencies, q)
                    .filter(|value| condition.op.holds(*value, limit))
                    .map(|value| format!("{} {}", percentile_name(q), format_duration(value))),
                // The exact max, not its histogram bucket's.
                (Metric::Max, Limit::Latency(limit)) => records
                    .iter()
                    .filter(|r| quantiles::has_latency(r))
                    .map(|r| r.latency)
                    .max()
                    .filter(|value| condition.op.holds(*value, limit))
                    .map(|value| format!("max {}", format_duration(value))),
                _ => unreachable!("parse_condition pairs errors with counts and shares"),
            };
            if let Some(measured) = measured {
                missed.push(Missed {
                    condition: condition.text.clone(),
                    variant: (run.variants.len() > 1).then(|| variant.label.clone()),
                    measured,
                });
            }
        }
    }
    missed
}

/// `p99`, `p99.9`, `p50`.
fn percentile_name(q: f64) -> String {
    let percent = format!("{:.4}", q * 100.0);
    format!("p{}", percent.trim_end_matches('0').trim_end_matches('.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::record::{Outcome, Pacing, Record, Variant};

    fn run(latencies_ms: &[(usize, u64, u16)], variants: usize) -> Run {
        Run {
            pacing: Pacing::Closed { concurrency: 1 },
            variants: (0..variants)
                .map(|i| Variant {
                    label: format!("v{i}"),
                    url: reqwest::Url::parse("http://127.0.0.1/").unwrap(),
                    headers: vec![],
                })
                .collect(),
            elapsed: Duration::from_secs(1),
            records: latencies_ms
                .iter()
                .map(|(variant, ms, status)| Record {
                    variant: *variant,
                    intended: Duration::ZERO,
                    sent: Duration::ZERO,
                    latency: Duration::from_millis(*ms),
                    outcome: Outcome::Status(*status),
                    trace_id: None,
                })
                .collect(),
            late: 0,
            interrupted: false,
            send_lag: Vec::new(),
        }
    }

    fn conditions(texts: &[&str]) -> Vec<Condition> {
        texts.iter().map(|t| parse_condition(t).unwrap()).collect()
    }

    #[test]
    fn conditions_are_read_or_refused_with_the_expected_form() {
        let c = parse_condition("p99 > 300ms").unwrap();
        assert_eq!(c.text, "p99>300ms");
        assert_eq!(c.metric, Metric::Quantile(0.99));
        assert_eq!(c.limit, Limit::Latency(Duration::from_millis(300)));
        let Metric::Quantile(q) = parse_condition("p99.9>=1s").unwrap().metric else {
            panic!("p99.9 is a quantile")
        };
        assert!((q - 0.999).abs() < 1e-12, "{q}");
        assert_eq!(
            parse_condition("errors>1%").unwrap().limit,
            Limit::Share(0.01)
        );
        assert_eq!(parse_condition("errors>5").unwrap().limit, Limit::Count(5));
        assert_eq!(parse_condition("max<2s").unwrap().op, Op::Below);
        for bad in [
            "p99",
            "p99>fast",
            "q99>1s",
            "p0>1s",
            "p101>1s",
            "errors>lots",
            "errors>150%",
            ">1s",
        ] {
            let error = parse_condition(bad).unwrap_err();
            assert!(error.contains(bad.trim()), "{bad}: {error}");
        }
    }

    #[test]
    fn a_missed_latency_condition_names_what_was_measured() {
        let mut values: Vec<(usize, u64, u16)> = (0..98).map(|_| (0, 100, 200)).collect();
        values.extend([(0, 900, 200), (0, 900, 200)]);
        let r = run(&values, 1);
        let missed = evaluate(&r, &conditions(&["p99>300ms", "p50>300ms", "max>=900ms"]));
        let lines: Vec<String> = missed.iter().map(ToString::to_string).collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        // p99 from the histogram: 900 ms to three significant digits.
        assert!(
            lines[0].starts_with("--fail-if p99>300ms: measured p99 89"),
            "{lines:?}"
        );
        assert_eq!(lines[1], "--fail-if max>=900ms: measured max 900.0 ms");
        assert!(evaluate(&r, &conditions(&["p99>1s", "p99.99>1s"])).is_empty());
    }

    #[test]
    fn errors_count_as_a_share_or_a_number() {
        let mut values: Vec<(usize, u64, u16)> = (0..97).map(|_| (0, 10, 200)).collect();
        values.extend([(0, 10, 503), (0, 10, 404), (0, 10, 500)]);
        let r = run(&values, 1);
        assert_eq!(evaluate(&r, &conditions(&["errors>2%"])).len(), 1);
        assert!(evaluate(&r, &conditions(&["errors>3%"])).is_empty());
        assert_eq!(
            evaluate(&r, &conditions(&["errors>=3"]))[0].measured,
            "3 errors of 100"
        );
    }

    #[test]
    fn each_variant_is_judged_on_its_own() {
        let values: Vec<(usize, u64, u16)> = (0..100)
            .map(|i| (i % 2, if i % 2 == 0 { 50 } else { 500 }, 200))
            .collect();
        let missed = evaluate(&run(&values, 2), &conditions(&["p90>100ms"]));
        assert_eq!(missed.len(), 1);
        assert_eq!(missed[0].variant.as_deref(), Some("v1"));
        assert!(missed[0].to_string().ends_with("(v1)"), "{}", missed[0]);
    }

    #[test]
    fn percentiles_are_named_as_written() {
        assert_eq!(percentile_name(0.99), "p99");
        assert_eq!(percentile_name(0.999), "p99.9");
        assert_eq!(percentile_name(0.5), "p50");
    }
}
