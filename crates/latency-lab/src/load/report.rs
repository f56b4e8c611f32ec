//! The text report of a [`Run`]: how it was paced (and so what its
//! latencies mean), what came back, the percentiles up to p99.99, a
//! histogram, and the slowest requests with a link to each one's trace —
//! the tail is only useful when you can look at it.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::format_duration;
use super::record::{Outcome, Record, Run};
use super::summary::{
    is_success, PacingSummary, Percentiles, Summary, VariantSummary, PERCENTILES,
};

/// Jaeger's UI in the compose stack (`docker compose up`).
pub const DEFAULT_JAEGER_URL: &str = "http://localhost:16686";

/// What the text report shows beyond the numbers.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// How many of the slowest requests to list (0: none).
    pub slowest: usize,
    /// Jaeger's UI, for the slowest requests' links; `None`: the compose one.
    pub jaeger_url: Option<String>,
    /// Inside `up`: the folder where every received trace is saved as
    /// `<trace id>.json`; the links then name those files.
    pub traces_dir: Option<PathBuf>,
    /// Columns the report may use.
    pub width: usize,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            slowest: 5,
            jaeger_url: None,
            traces_dir: None,
            width: 100,
        }
    }
}

/// The whole report: the pacing, the numbers (one variant: answers,
/// percentiles and histogram; several: one table, a column per variant), and the
/// slowest requests.
pub fn render(run: &Run, options: &ReportOptions) -> String {
    let summary = Summary::of(run);
    let mut out = header(run, &summary);
    match summary.variants.as_slice() {
        [variant] => {
            let _ = writeln!(out, "  target     GET {}", variant.url);
            out.push_str(&variant_block(variant, options.width));
        }
        variants => {
            out.push_str(&table(&summary, options.width));
            for variant in variants.iter().filter(|v| v.errors > 0) {
                let _ = writeln!(
                    out,
                    "  errors of {}: {}",
                    variant.label,
                    errors_by_kind(variant)
                );
            }
        }
    }
    out.push_str(&slowest(run, options));
    out
}

/// Several variants side by side: one column each (requests, errors, p50 …
/// p99.99, max), each latency with its ratio to the first variant's.
#[cfg(test)]
fn render_compare(run: &Run, options: &ReportOptions) -> String {
    table(&Summary::of(run), options.width)
}

/// The pacing in words, throughput, late sends, send lag, interruption.
fn header(run: &Run, summary: &Summary) -> String {
    let mut out = String::new();
    let elapsed = format_duration(run.elapsed);
    match summary.pacing {
        PacingSummary::Open {
            rate_per_s: (from, to),
            asked_per_s,
            max_in_flight,
        } => {
            let asked = if from == to {
                format!("{} /s", rate(from))
            } else {
                format!(
                    "{} → {} /s (a linear ramp, {} /s on average)",
                    rate(from),
                    rate(to),
                    rate(asked_per_s)
                )
            };
            let _ = writeln!(
                out,
                "load: open loop, asked {asked} — latency from each request's intended send time"
            );
            let _ = writeln!(
                out,
                "  requests   {} in {elapsed}: {} /s achieved of {} /s asked",
                summary.requests,
                rate(summary.achieved_per_s),
                rate(asked_per_s)
            );
            if run.late > 0 {
                let _ = writeln!(
                    out,
                    "  late       {} sent late ({max_in_flight} in flight, --max-in-flight); \
                     latency counts from when they were due",
                    run.late
                );
            }
            if let Some(lag) = summary.send_lag_us {
                let _ = writeln!(
                    out,
                    "  send lag   p50 {}   p99 {}   max {}   (the generator's own: sent − intended)",
                    us(lag.p50),
                    us(lag.p99),
                    us(lag.max)
                );
            }
        }
        PacingSummary::Closed { concurrency } => {
            let _ = writeln!(
                out,
                "load: closed loop, {concurrency} in flight — latency from send, blind to stalls \
                 (coordinated omission)"
            );
            let _ = writeln!(
                out,
                "  requests   {} in {elapsed}: {} /s achieved",
                summary.requests,
                rate(summary.achieved_per_s)
            );
        }
    }
    if run.interrupted {
        let _ = writeln!(
            out,
            "  interrupted by Ctrl-C: this covers the {elapsed} until then"
        );
    }
    out
}

/// One variant's answers, errors, percentiles and histogram.
fn variant_block(variant: &VariantSummary, width: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "  answers    {}", answers(variant));
    if variant.errors > 0 {
        let _ = writeln!(
            out,
            "  errors     {} ({:.2} %): {}",
            variant.errors,
            variant.error_rate * 100.0,
            errors_by_kind(variant)
        );
    }
    let Some(percentiles) = variant.latency_us else {
        let _ = writeln!(out, "  no request was sent");
        return out;
    };
    let _ = writeln!(out, "  latency    {}", percentile_line(&percentiles));
    let _ = writeln!(
        out,
        "             (every request, failures included at the time they failed)"
    );
    out.push_str(&histogram(&variant.histogram, width));
    out
}

/// `200 ×980, 503 ×11` — every HTTP status, or `none`.
fn answers(variant: &VariantSummary) -> String {
    let statuses: Vec<String> = variant
        .statuses
        .iter()
        .map(|(status, n)| format!("{status} ×{n}"))
        .collect();
    if statuses.is_empty() {
        "none".to_owned()
    } else {
        statuses.join(", ")
    }
}

/// `5xx ×11 (503 ×11), timeout ×2, connect ×1, other ×1 (body: reset ×1)`.
fn errors_by_kind(variant: &VariantSummary) -> String {
    let mut kinds = Vec::new();
    for class in 4..=5u16 {
        let codes: Vec<(u16, u64)> = variant
            .statuses
            .iter()
            .filter(|(status, _)| **status / 100 == class)
            .map(|(s, n)| (*s, *n))
            .collect();
        if !codes.is_empty() {
            let total: u64 = codes.iter().map(|(_, n)| n).sum();
            let each: Vec<String> = codes.iter().map(|(s, n)| format!("{s} ×{n}")).collect();
            kinds.push(format!("{class}xx ×{total} ({})", each.join(", ")));
        }
    }
    let odd: u64 = variant
        .statuses
        .iter()
        .filter(|(s, _)| **s >= 600)
        .map(|(_, n)| n)
        .sum();
    if odd > 0 {
        kinds.push(format!("status ≥ 600 ×{odd}"));
    }
    if variant.timeouts > 0 {
        kinds.push(format!("timeout ×{}", variant.timeouts));
    }
    if variant.connect_errors > 0 {
        kinds.push(format!("connect ×{}", variant.connect_errors));
    }
    if !variant.other_errors.is_empty() {
        let total: u64 = variant.other_errors.values().sum();
        let each: Vec<String> = variant
            .other_errors
            .iter()
            .map(|(reason, n)| format!("{reason} ×{n}"))
            .collect();
        kinds.push(format!("other ×{total} ({})", each.join(", ")));
    }
    kinds.join(", ")
}

/// `p50 24.0 ms   p90 …   max 1.020 s`.
fn percentile_line(percentiles: &Percentiles) -> String {
    names()
        .zip(percentiles.values())
        .map(|(name, value)| format!("{name} {}", us(value)))
        .collect::<Vec<_>>()
        .join("  ")
}

/// The percentiles' names, then `max`.
fn names() -> impl Iterator<Item = &'static str> {
    PERCENTILES
        .iter()
        .map(|(name, _)| *name)
        .chain(std::iter::once("max"))
}

/// Ten equal-width latency buckets from the fastest to the slowest request,
/// each a bar proportional to its count: a bimodal tail shows as two humps.
pub(crate) fn histogram(latencies: &Histogram<u64>, width: usize) -> String {
    const BUCKETS: u64 = 10;
    let (min, max) = (latencies.min(), latencies.max());
    let step = ((max - min) / BUCKETS).max(1);
    let mut counts = vec![0u64; BUCKETS as usize];
    for value in latencies.iter_recorded() {
        let bucket = ((value.value_iterated_to() - min) / step).min(BUCKETS - 1);
        counts[bucket as usize] += value.count_at_value();
    }
    let (label_width, count_width) = (22, 8);
    let bar_width = width.saturating_sub(label_width + count_width + 4).max(10);
    let most = counts.iter().copied().max().unwrap_or(1).max(1);
    let mut out = String::new();
    for (i, count) in counts.iter().enumerate() {
        let low = min + step * i as u64;
        let high = if i as u64 == BUCKETS - 1 {
            max
        } else {
            low + step
        };
        let label = format!("{} – {}", us(low), us(high));
        let cells = (*count as usize * bar_width).div_ceil(most as usize);
        let _ = writeln!(
            out,
            "  {label:>label_width$} {}{} {count:>count_width$}",
            "█".repeat(cells),
            " ".repeat(bar_width - cells),
        );
        if max == min {
            break;
        }
    }
    out
}

/// The compare table; headed by the variants' labels when they fit in
/// `width`, else by `[1]`, `[2]` … with the labels listed above.
fn table(summary: &Summary, width: usize) -> String {
    let first = summary.variants.first().and_then(|v| v.latency_us);
    let mut rows: Vec<(String, Vec<String>)> = vec![
        (
            "requests".to_owned(),
            summary
                .variants
                .iter()
                .map(|v| v.requests.to_string())
                .collect(),
        ),
        (
            "errors".to_owned(),
            summary
                .variants
                .iter()
                .map(|v| format!("{} ({:.2} %)", v.errors, v.error_rate * 100.0))
                .collect(),
        ),
    ];
    for (i, name) in names().enumerate() {
        let cells = summary
            .variants
            .iter()
            .map(|v| match (v.latency_us, first) {
                (Some(p), Some(f)) => {
                    let (value, base) = (p.values()[i], f.values()[i]);
                    format!("{} {}", us(value), ratio(value, base))
                }
                (Some(p), None) => us(p.values()[i]),
                (None, _) => "–".to_owned(),
            })
            .collect();
        rows.push((name.to_owned(), cells));
    }
    let name_width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let layout = |headers: &[String]| -> Vec<usize> {
        headers
            .iter()
            .enumerate()
            .map(|(col, h)| {
                rows.iter()
                    .map(|(_, cells)| cells[col].chars().count())
                    .chain(std::iter::once(h.chars().count()))
                    .max()
                    .unwrap_or(0)
            })
            .collect()
    };
    let labels: Vec<String> = summary.variants.iter().map(|v| v.label.clone()).collect();
    let mut widths = layout(&labels);
    let total = |widths: &[usize]| 2 + name_width + widths.iter().map(|w| w + 3).sum::<usize>();
    let mut out = String::new();
    let headers = if total(&widths) <= width {
        labels
    } else {
        let numbered: Vec<String> = (1..=labels.len()).map(|i| format!("[{i}]")).collect();
        for (number, label) in numbered.iter().zip(&labels) {
            let _ = writeln!(out, "  {number} {label}");
        }
        widths = layout(&numbered);
        numbered
    };
    let mut line = format!("  {:name_width$}", "");
    for (header, w) in headers.iter().zip(&widths) {
        let _ = write!(line, "   {header:>w$}");
    }
    let _ = writeln!(out, "{}", line.trim_end());
    for (name, cells) in &rows {
        let mut line = format!("  {name:<name_width$}");
        for (cell, w) in cells.iter().zip(&widths) {
            let _ = write!(line, "   {cell:>w$}");
        }
        let _ = writeln!(out, "{line}");
    }
    if summary.variants.len() > 1 {
        let _ = writeln!(
            out,
            "  (×: latency against the first variant's; every request, failures included)"
        );
    }
    out
}

/// `×0.52`: `value` against `base`.
fn ratio(value: u64, base: u64) -> String {
    if base == 0 {
        "×–".to_owned()
    } else {
        format!("×{:.2}", value as f64 / base as f64)
    }
}

/// The `options.slowest` slowest requests, each with its trace's link.
fn slowest(run: &Run, options: &ReportOptions) -> String {
    let mut out = String::new();
    if options.slowest == 0 || run.records.is_empty() {
        return out;
    }
    let mut records: Vec<&Record> = run.records.iter().collect();
    // Slowest first; ties in send order, so the text is deterministic.
    records.sort_by(|a, b| b.latency.cmp(&a.latency).then(a.sent.cmp(&b.sent)));
    records.truncate(options.slowest);
    let _ = writeln!(out, "  slowest {} of {}:", records.len(), run.records.len());
    let show_variant = run.variants.len() > 1;
    let variant_width = run
        .variants
        .iter()
        .map(|v| v.label.chars().count())
        .max()
        .unwrap_or(0);
    for record in records {
        let mut line = format!(
            "    {:>10}  at {:>9}",
            format_duration(record.latency),
            format_duration(record.intended)
        );
        if show_variant {
            let label = run
                .variants
                .get(record.variant)
                .map_or("?", |v| v.label.as_str());
            let _ = write!(line, "  {label:<variant_width$}");
        }
        let _ = write!(line, "  {:<7}", outcome(&record.outcome));
        match record.trace_id {
            Some(id) => {
                let _ = write!(
                    line,
                    "  trace {id}  {}",
                    trace_link(&id.to_string(), options)
                );
            }
            None => line.push_str("  no trace id (no traceresponse header)"),
        }
        let _ = writeln!(out, "{line}");
    }
    out
}

/// Where to look at trace `id`: the saved file inside `up`, else Jaeger's UI.
pub fn trace_link(id: &str, options: &ReportOptions) -> String {
    match &options.traces_dir {
        Some(dir) => dir.join(format!("{id}.json")).display().to_string(),
        None => {
            let base = options.jaeger_url.as_deref().unwrap_or(DEFAULT_JAEGER_URL);
            format!("{}/trace/{id}", base.trim_end_matches('/'))
        }
    }
}

/// `200`, `503 (error)`, `timeout`, `connect`, `other: reason`.
fn outcome(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Status(status) if is_success(outcome) => status.to_string(),
        Outcome::Status(status) => format!("{status} ✗"),
        Outcome::Timeout => "timeout".to_owned(),
        Outcome::Connect => "connect".to_owned(),
        Outcome::Other(reason) => format!("other: {reason}"),
    }
}

fn us(micros: u64) -> String {
    format_duration(Duration::from_micros(micros))
}

/// `100`, `99.7`, `0.25`: a rate with the digits it needs.
fn rate(per_s: f64) -> String {
    if per_s >= 100.0 || per_s.fract() == 0.0 {
        format!("{per_s:.0}")
    } else if per_s >= 1.0 {
        format!("{per_s:.1}")
    } else {
        format!("{per_s:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::record::Pacing;
    use crate::load::summary::fixtures;

    fn options() -> ReportOptions {
        ReportOptions {
            slowest: 5,
            width: 100,
            ..ReportOptions::default()
        }
    }

    #[test]
    fn open_loop_report() {
        insta::assert_snapshot!(render(&fixtures::open_single(), &options()));
    }

    #[test]
    fn closed_loop_compare_report() {
        insta::assert_snapshot!(render(&fixtures::closed_three(), &options()));
    }

    #[test]
    fn compare_table_numbers_the_columns_when_labels_do_not_fit() {
        let narrow = ReportOptions {
            width: 60,
            ..options()
        };
        insta::assert_snapshot!(render_compare(&fixtures::closed_three(), &narrow));
    }

    #[test]
    fn the_report_says_what_the_numbers_mean() {
        let text = render(&fixtures::open_single(), &options());
        assert!(text.contains("open loop, asked 100 /s"), "{text}");
        assert!(text.contains("99.7 /s achieved of 100 /s asked"), "{text}");
        assert!(text.contains("12 sent late"), "{text}");
        assert!(
            text.contains("5xx ×11 (503 ×11), timeout ×2, connect ×1"),
            "{text}"
        );
        assert!(text.contains("p99.99"), "{text}");
        let closed = render(&fixtures::closed_three(), &options());
        assert!(closed.contains("coordinated omission"), "{closed}");
        assert!(closed.contains("interrupted by Ctrl-C"), "{closed}");
        assert!(!closed.contains("send lag"), "{closed}");
    }

    #[test]
    fn a_ramp_says_both_ends() {
        let mut run = fixtures::open_single();
        run.pacing = Pacing::Open {
            rate: (50.0, 150.0),
            max_in_flight: 64,
        };
        let text = render(&run, &options());
        assert!(
            text.contains("asked 50 → 150 /s (a linear ramp, 100 /s on average)"),
            "{text}"
        );
    }

    #[test]
    fn slowest_requests_link_to_their_traces() {
        let run = fixtures::open_single();
        let text = render(&run, &options());
        let slowest = text
            .split("slowest 5 of 1000:")
            .nth(1)
            .expect("a slowest list");
        assert_eq!(
            slowest.lines().filter(|l| !l.is_empty()).count(),
            5,
            "{text}"
        );
        // Request 500 was due first in the stall: the slowest, 1.020 s.
        assert!(
            slowest.lines().nth(1).unwrap().contains("1.020 s"),
            "{text}"
        );
        let id = "000000000000000000000000abc001f4";
        assert!(
            text.contains(&format!("http://localhost:16686/trace/{id}")),
            "{text}"
        );
        let in_up = ReportOptions {
            traces_dir: Some(PathBuf::from("traces")),
            ..options()
        };
        let text = render(&run, &in_up);
        assert!(text.contains(&format!("traces/{id}.json")), "{text}");
        let custom = ReportOptions {
            jaeger_url: Some("http://jaeger:16686/".to_owned()),
            ..options()
        };
        assert!(render(&run, &custom).contains(&format!("http://jaeger:16686/trace/{id}")));
        let none = ReportOptions {
            slowest: 0,
            ..options()
        };
        assert!(!render(&run, &none).contains("slowest"));
    }

    #[test]
    fn an_empty_run_says_so() {
        let mut run = fixtures::open_single();
        run.records.clear();
        let text = render(&run, &options());
        assert!(text.contains("no request was sent"), "{text}");
    }
}
