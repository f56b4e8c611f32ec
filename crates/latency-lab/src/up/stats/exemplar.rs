//! The exemplar idea without Prometheus: for a percentile's bucket, one
//! trace whose request fell in that bucket, picked from the spans the
//! embedded receiver holds — so a bad p99 leads straight to a waterfall.

use otlp_receiver::{CollectedSpan, SpanKind};

use super::buckets::Bucket;
use super::table::EndpointRow;

/// How far outside the bucket a span may lie and still stand for it: the
/// span and the metric time one request with separate clocks, which part by
/// well under a millisecond here; two leave room for a loaded machine.
const EDGE: f64 = 0.002;

/// The slowest SERVER span of the row's service, route and method whose
/// duration falls in `bucket`: the request that best stands for that tail.
/// Span and metric time the same request with separate clocks, so a request
/// right at a bucket edge may be counted in the neighbouring bucket: when no
/// span lies inside, the one nearest the bucket, within [`EDGE`], is that
/// request.
pub(crate) fn pick<'a>(
    spans: &'a [CollectedSpan],
    row: &EndpointRow,
    bucket: &Bucket,
) -> Option<&'a CollectedSpan> {
    let of_row = spans.iter().filter(|span| {
        span.kind == SpanKind::Server
            && span.service_name == row.service
            && span.attr_str("http.route") == row.route.as_deref()
            && span.attr_str("http.request.method").unwrap_or("-") == row.method
    });
    let outside = |span: &CollectedSpan| bucket.distance(span.duration().as_secs_f64());
    of_row
        .clone()
        .filter(|span| bucket.contains(span.duration().as_secs_f64()))
        .max_by_key(|span| span.duration())
        .or_else(|| {
            of_row
                .filter(|span| outside(span) <= EDGE)
                .min_by(|a, b| outside(a).total_cmp(&outside(b)))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use otlp_receiver::{AttrValue, StatusCode};
    use std::collections::BTreeMap;

    fn span(trace: &str, service: &str, route: &str, kind: SpanKind, ms: u64) -> CollectedSpan {
        CollectedSpan {
            service_name: service.into(),
            resource: BTreeMap::new(),
            scope_name: String::new(),
            trace_id: trace.into(),
            span_id: "00000000000000aa".into(),
            parent_span_id: None,
            trace_state: String::new(),
            flags: 1,
            name: format!("GET {route}"),
            kind,
            start_unix_nanos: 1_000_000_000,
            end_unix_nanos: 1_000_000_000 + ms * 1_000_000,
            attributes: BTreeMap::from([
                ("http.route".to_owned(), AttrValue::String(route.into())),
                (
                    "http.request.method".to_owned(),
                    AttrValue::String("GET".into()),
                ),
            ]),
            events: vec![],
            links: vec![],
            status_code: StatusCode::Unset,
            status_message: String::new(),
        }
    }

    fn row(service: &str, route: &str) -> EndpointRow {
        EndpointRow {
            service: service.into(),
            route: Some(route.into()),
            method: "GET".into(),
            requests: 0,
            errors: 0,
            rate_per_s: None,
            buckets: None,
        }
    }

    #[test]
    fn picks_the_slowest_matching_server_span_inside_the_bucket() {
        let spans = [
            span("t1", "agg", "/p/{id}", SpanKind::Server, 300),
            span("t2", "agg", "/p/{id}", SpanKind::Server, 450),
            // Slower, but outside the bucket.
            span("t3", "agg", "/p/{id}", SpanKind::Server, 700),
            // In the bucket, but not this endpoint's SERVER span.
            span("t4", "agg", "/p/{id}", SpanKind::Client, 480),
            span("t5", "users", "/p/{id}", SpanKind::Server, 490),
            span("t6", "agg", "/other", SpanKind::Server, 495),
            // Exactly on the lower edge: the bucket below's.
            span("t7", "agg", "/p/{id}", SpanKind::Server, 250),
        ];
        let bucket = Bucket {
            lower: Some(0.25),
            upper: Some(0.5),
        };
        let picked = pick(&spans, &row("agg", "/p/{id}"), &bucket).unwrap();
        assert_eq!(picked.trace_id, "t2");

        let open = Bucket {
            lower: Some(0.5),
            upper: None,
        };
        assert_eq!(
            pick(&spans, &row("agg", "/p/{id}"), &open)
                .unwrap()
                .trace_id,
            "t3"
        );
        let empty = Bucket {
            lower: Some(1.0),
            upper: Some(2.5),
        };
        assert!(pick(&spans, &row("agg", "/p/{id}"), &empty).is_none());
    }

    /// The metric counted a request just above 50 ms; its span, timed by
    /// another clock, ended a hair earlier: that span still stands for the
    /// bucket, and a span further away does not.
    #[test]
    fn a_bucket_with_no_span_inside_takes_the_one_at_its_edge() {
        let bucket = Bucket {
            lower: Some(0.05),
            upper: Some(0.075),
        };
        let spans = [
            span("t1", "agg", "/p/{id}", SpanKind::Server, 40),
            span("t2", "agg", "/p/{id}", SpanKind::Server, 49),
            span("t3", "agg", "/p/{id}", SpanKind::Server, 50),
            span("t4", "agg", "/p/{id}", SpanKind::Server, 80),
        ];
        let picked = pick(&spans, &row("agg", "/p/{id}"), &bucket).unwrap();
        assert_eq!(
            picked.trace_id, "t3",
            "on the lower edge (the bucket below's), 0 ms off"
        );
        let far = [
            span("t1", "agg", "/p/{id}", SpanKind::Server, 40),
            span("t4", "agg", "/p/{id}", SpanKind::Server, 80),
        ];
        assert!(
            pick(&far, &row("agg", "/p/{id}"), &bucket).is_none(),
            "5 ms and more away stand for another bucket"
        );
        // Inside beats nearer-to-the-edge outside.
        let both = [
            span("t3", "agg", "/p/{id}", SpanKind::Server, 50),
            span("t5", "agg", "/p/{id}", SpanKind::Server, 60),
        ];
        assert_eq!(
            pick(&both, &row("agg", "/p/{id}"), &bucket)
                .unwrap()
                .trace_id,
            "t5"
        );
    }
}
