//! The per-endpoint rows — one per (service, route, method) — built from the
//! `http.server.request.duration` points the services exported, and their
//! rendering.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use otlp_receiver::HistogramPoint;

use super::buckets::{Bucket, Buckets, Quantile};
use crate::load::format_duration;

/// One endpoint of one service, all its status codes together.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EndpointRow {
    pub(crate) service: String,
    /// `None` for requests no route matched (404s).
    pub(crate) route: Option<String>,
    pub(crate) method: String,
    pub(crate) requests: u64,
    /// Requests whose point has an `error.type` or a 5xx status.
    pub(crate) errors: u64,
    /// Requests per second over the time the points cover: from their
    /// cumulative start (the SDK starts a series at its first measurement)
    /// to the latest export; `None` when that time is zero.
    pub(crate) rate_per_s: Option<f64>,
    /// `None` when the series of this endpoint have different bounds.
    pub(crate) buckets: Option<Buckets>,
}

impl EndpointRow {
    pub(crate) fn quantile(&self, q: f64) -> Option<Quantile> {
        self.buckets.as_ref()?.quantile(q)
    }

    pub(crate) fn route_label(&self) -> &str {
        self.route.as_deref().unwrap_or("-")
    }
}

/// Whether a point counts its requests as failed: the semantic conventions
/// set `error.type` on failures; a 5xx without one is still the server's
/// failure.
fn is_error(point: &HistogramPoint) -> bool {
    point.origin.attr("error.type").is_some()
        || point
            .origin
            .attr_i64("http.response.status_code")
            .is_some_and(|status| status >= 500)
}

/// Groups the points by (service, route, method), sorted that way.
pub(crate) fn rows(points: &[HistogramPoint]) -> Vec<EndpointRow> {
    type Key = (String, Option<String>, String);
    let mut groups: BTreeMap<Key, Vec<&HistogramPoint>> = BTreeMap::new();
    for point in points {
        let origin = &point.origin;
        let key = (
            origin.service_name.clone(),
            origin.attr_str("http.route").map(str::to_owned),
            origin
                .attr_str("http.request.method")
                .unwrap_or("-")
                .to_owned(),
        );
        groups.entry(key).or_default().push(point);
    }
    groups
        .into_iter()
        .map(|((service, route, method), points)| {
            let requests = points.iter().map(|p| p.count).sum();
            let errors = points.iter().filter(|p| is_error(p)).map(|p| p.count).sum();
            let start = points.iter().map(|p| p.start_unix_nanos).min().unwrap_or(0);
            let end = points.iter().map(|p| p.time_unix_nanos).max().unwrap_or(0);
            let lifetime = Duration::from_nanos(end.saturating_sub(start)).as_secs_f64();
            let mut buckets = Buckets::from_point(points[0]);
            for point in &points[1..] {
                let merged = match (&mut buckets, Buckets::from_point(point)) {
                    (Some(total), Some(more)) => total.merge(&more),
                    _ => false,
                };
                if !merged {
                    buckets = None;
                }
            }
            EndpointRow {
                service,
                route,
                method,
                requests,
                errors,
                rate_per_s: (lifetime > 0.0).then(|| requests as f64 / lifetime),
                buckets,
            }
        })
        .collect()
}

/// The row with the highest p99: where the tail is worst.
pub(crate) fn worst_p99(rows: &[EndpointRow]) -> Option<(&EndpointRow, Quantile)> {
    rows.iter()
        .filter_map(|row| Some((row, row.quantile(0.99)?)))
        .max_by(|(_, a), (_, b)| a.seconds.total_cmp(&b.seconds))
}

/// The heading of the footer line, also what tests look for.
pub(crate) const FOOTER: &str = "from histogram buckets:";

/// The table, in `load`'s layout: a title line, then two-space indented
/// rows, durations as `format_duration` writes them.
pub(crate) fn render(rows: &[EndpointRow], when: &str) -> String {
    let header = [
        "service", "method", "route", "requests", "rate", "errors", "p50", "p90", "p99", "max",
    ];
    let mut table: Vec<[String; 10]> = vec![header.map(str::to_owned)];
    for row in rows {
        let q = |q| {
            row.quantile(q)
                .map(|q| seconds(q.seconds))
                .unwrap_or_else(|| "-".to_owned())
        };
        let max = row
            .buckets
            .as_ref()
            .and_then(|b| b.max)
            .map(seconds)
            .unwrap_or_else(|| "-".to_owned());
        let errors = if row.requests == 0 {
            "-".to_owned()
        } else {
            format!("{:.1}%", 100.0 * row.errors as f64 / row.requests as f64)
        };
        table.push([
            row.service.clone(),
            row.method.clone(),
            row.route_label().to_owned(),
            row.requests.to_string(),
            row.rate_per_s
                .map(|r| format!("{r:.2}/s"))
                .unwrap_or_else(|| "-".to_owned()),
            errors,
            q(0.5),
            q(0.9),
            q(0.99),
            max,
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            table
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "endpoints ({when}): http.server.request.duration as the services exported it"
    );
    for cells in &table {
        let mut line = String::from(" ");
        for (c, cell) in cells.iter().enumerate() {
            // Text columns to the left, numbers to the right.
            if c < 3 {
                let _ = write!(line, " {cell:<w$}", w = widths[c]);
            } else {
                let _ = write!(line, "  {cell:>w$}", w = widths[c]);
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let _ = writeln!(
        out,
        "  {FOOTER} each pN interpolated within its bucket as Prometheus' histogram_quantile does (p99 ≤ its bucket's upper bound)"
    );
    let _ = writeln!(
        out,
        "  max as recorded; rate = requests ÷ the time the cumulative points cover (first request to latest export)"
    );
    out
}

/// `1.2 ms`, from seconds.
pub(crate) fn seconds(s: f64) -> String {
    format_duration(Duration::from_secs_f64(s.max(0.0)))
}

/// `≤ 100.0 ms`, `(100.0 ms, 250.0 ms]`, `> 10.000 s`.
pub(crate) fn bucket_label(bucket: &Bucket) -> String {
    match (bucket.lower, bucket.upper) {
        (None, Some(upper)) => format!("≤ {}", seconds(upper)),
        (Some(lower), Some(upper)) => format!("({}, {}]", seconds(lower), seconds(upper)),
        (Some(lower), None) => format!("> {}", seconds(lower)),
        (None, None) => "(all values)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use otlp_receiver::{AttrValue, MetricOrigin, Temporality};

    fn point(
        service: &str,
        route: &str,
        status: i64,
        counts: Vec<u64>,
        max: f64,
    ) -> HistogramPoint {
        let mut attributes = BTreeMap::from([
            ("http.route".to_owned(), AttrValue::String(route.into())),
            (
                "http.request.method".to_owned(),
                AttrValue::String("GET".into()),
            ),
            (
                "http.response.status_code".to_owned(),
                AttrValue::Int(status),
            ),
        ]);
        if status >= 500 {
            attributes.insert("error.type".into(), AttrValue::String(status.to_string()));
        }
        HistogramPoint {
            origin: MetricOrigin {
                service_name: service.into(),
                resource: BTreeMap::new(),
                scope_name: String::new(),
                name: "http.server.request.duration".into(),
                unit: "s".into(),
                description: String::new(),
                attributes,
            },
            temporality: Temporality::Cumulative,
            start_unix_nanos: 1_000_000_000,
            time_unix_nanos: 11_000_000_000,
            count: counts.iter().sum(),
            sum: None,
            bucket_counts: counts,
            explicit_bounds: vec![0.1, 0.25, 0.5, 1.0],
            min: None,
            max: Some(max),
        }
    }

    #[test]
    fn rows_merge_statuses_count_errors_and_rate() {
        let points = [
            point("agg", "/p/{id}", 200, vec![50, 30, 10, 0, 0], 0.45),
            point("agg", "/p/{id}", 503, vec![0, 0, 5, 5, 0], 0.9),
            point("users", "/u/{id}", 200, vec![20, 0, 0, 0, 0], 0.09),
        ];
        let rows = rows(&points);
        assert_eq!(rows.len(), 2);
        let agg = &rows[0];
        assert_eq!(
            (agg.service.as_str(), agg.route_label(), agg.method.as_str()),
            ("agg", "/p/{id}", "GET")
        );
        assert_eq!((agg.requests, agg.errors), (100, 10));
        assert_eq!(agg.rate_per_s, Some(10.0));
        assert_eq!(agg.buckets.as_ref().unwrap().counts, [50, 30, 15, 5, 0]);
        assert_eq!(agg.buckets.as_ref().unwrap().max, Some(0.9));
        let (worst, p99) = worst_p99(&rows).unwrap();
        assert_eq!(worst.service, "agg");
        // Rank 99 is the 4th of 5 in (0.5, 1]; the recorded max 0.9 s caps the bucket.
        assert_eq!(p99.bucket.upper, Some(1.0));
        assert!(
            (p99.seconds - (0.5 + 0.4 * 4.0 / 5.0)).abs() < 1e-9,
            "{p99:?}"
        );

        let text = render(&rows, "at exit");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 6, "{text}");
        assert!(lines[0].starts_with("endpoints (at exit): "), "{text}");
        let cells: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(
            &cells[..6],
            ["agg", "GET", "/p/{id}", "100", "10.00/s", "10.0%"],
            "{text}"
        );
        assert!(lines[2].ends_with("900.0 ms"), "{text}");
        assert!(lines[4].trim_start().starts_with(FOOTER), "{text}");
    }

    #[test]
    fn different_bounds_leave_the_percentiles_unknown() {
        let mut odd = point("agg", "/p", 200, vec![1, 1], 0.2);
        odd.explicit_bounds = vec![0.1];
        let rows = rows(&[point("agg", "/p", 200, vec![1, 0, 0, 0, 0], 0.05), odd]);
        assert_eq!(rows[0].requests, 3);
        assert_eq!(rows[0].quantile(0.5), None);
        assert!(worst_p99(&rows).is_none());
    }

    #[test]
    fn bucket_labels() {
        let b = |lower, upper| bucket_label(&Bucket { lower, upper });
        assert_eq!(b(None, Some(0.1)), "≤ 100.0 ms");
        assert_eq!(b(Some(0.1), Some(0.25)), "(100.0 ms, 250.0 ms]");
        assert_eq!(b(Some(10.0), None), "> 10.000 s");
    }
}
