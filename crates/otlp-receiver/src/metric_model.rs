//! The metric points the suite reads, and their conversion from OTLP protobuf.
//!
//! Like spans, each received data point is flattened into one self-contained value carrying
//! its service, resource, scope and instrument (name, unit), so a reader never walks
//! `ResourceMetrics → ScopeMetrics → Metric → data point`. Only the kinds the suite's services
//! export are kept: explicit-bucket histograms, sums and gauges. Exponential histograms and
//! summaries are counted as ignored rather than half-converted.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, HistogramDataPoint, NumberDataPoint,
};

use crate::model::{service_name_of, AttrValue};

/// How a point's values relate to earlier points of the same series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Temporality {
    /// Everything since `start`: the latest point replaces the earlier ones.
    Cumulative,
    /// Only what happened since the previous point: the store adds points up.
    Delta,
    /// Not said by the sender; treated as cumulative (the SDK default).
    Unspecified,
}

impl Temporality {
    /// Maps the wire value; unknown values become `Unspecified`.
    pub fn from_proto(value: i32) -> Self {
        match AggregationTemporality::try_from(value) {
            Ok(AggregationTemporality::Cumulative) => Self::Cumulative,
            Ok(AggregationTemporality::Delta) => Self::Delta,
            Ok(AggregationTemporality::Unspecified) | Err(_) => Self::Unspecified,
        }
    }
}

/// What every point carries besides its values: where it came from and which series it is.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricOrigin {
    /// Resource attribute `service.name`, or [`UNKNOWN_SERVICE`](crate::UNKNOWN_SERVICE) when absent.
    pub service_name: String,
    pub resource: BTreeMap<String, AttrValue>,
    pub scope_name: String,
    /// The instrument's name, e.g. `http.server.request.duration`.
    pub name: String,
    /// UCUM unit as sent, e.g. `s`.
    pub unit: String,
    pub description: String,
    /// The point's own attributes (the series, within one service and metric).
    pub attributes: BTreeMap<String, AttrValue>,
}

impl MetricOrigin {
    pub fn attr(&self, key: &str) -> Option<&AttrValue> {
        self.attributes.get(key)
    }

    pub fn attr_str(&self, key: &str) -> Option<&str> {
        self.attr(key).and_then(AttrValue::as_str)
    }

    pub fn attr_i64(&self, key: &str) -> Option<i64> {
        self.attr(key).and_then(AttrValue::as_i64)
    }
}

/// One explicit-bucket histogram point: bucket `i` counts values in
/// `(explicit_bounds[i-1], explicit_bounds[i]]`, the last bucket everything above the last
/// bound (so there is one more count than bounds).
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramPoint {
    pub origin: MetricOrigin,
    pub temporality: Temporality,
    pub start_unix_nanos: u64,
    /// When the point was taken (its end).
    pub time_unix_nanos: u64,
    pub count: u64,
    pub sum: Option<f64>,
    pub bucket_counts: Vec<u64>,
    pub explicit_bounds: Vec<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl HistogramPoint {
    /// Adds a later delta point of the same series. Only called when both are deltas with the
    /// same bounds; the covered interval grows to include both.
    pub(crate) fn accumulate(&mut self, later: &HistogramPoint) {
        self.count += later.count;
        self.sum = match (self.sum, later.sum) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        for (total, add) in self.bucket_counts.iter_mut().zip(&later.bucket_counts) {
            *total += add;
        }
        self.min = combine(self.min, later.min, f64::min);
        self.max = combine(self.max, later.max, f64::max);
        self.start_unix_nanos = self.start_unix_nanos.min(later.start_unix_nanos);
        self.time_unix_nanos = self.time_unix_nanos.max(later.time_unix_nanos);
        self.origin = later.origin.clone();
    }
}

/// Combines two optional extremes; one side missing leaves the other.
fn combine(a: Option<f64>, b: Option<f64>, pick: fn(f64, f64) -> f64) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(pick(a, b)),
        (a, b) => a.or(b),
    }
}

/// A sum or gauge value as sent: integers stay integers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NumberValue {
    Int(i64),
    Double(f64),
}

impl NumberValue {
    /// The value as a float, whatever the wire type (counts fit in an `f64` exactly up to 2^53).
    pub fn as_f64(self) -> f64 {
        match self {
            Self::Int(i) => i as f64,
            Self::Double(d) => d,
        }
    }

    fn add(self, other: NumberValue) -> NumberValue {
        match (self, other) {
            (Self::Int(a), Self::Int(b)) => Self::Int(a.saturating_add(b)),
            (a, b) => Self::Double(a.as_f64() + b.as_f64()),
        }
    }
}

/// Whether a number point is a sum (a counter or up-down counter) or a gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberKind {
    Sum {
        monotonic: bool,
        temporality: Temporality,
    },
    Gauge,
}

/// One sum or gauge point.
#[derive(Debug, Clone, PartialEq)]
pub struct NumberPoint {
    pub origin: MetricOrigin,
    pub kind: NumberKind,
    pub start_unix_nanos: u64,
    pub time_unix_nanos: u64,
    pub value: NumberValue,
}

impl NumberPoint {
    pub(crate) fn is_delta_sum(&self) -> bool {
        matches!(
            self.kind,
            NumberKind::Sum {
                temporality: Temporality::Delta,
                ..
            }
        )
    }

    /// Adds a later delta point of the same series.
    pub(crate) fn accumulate(&mut self, later: &NumberPoint) {
        self.value = self.value.add(later.value);
        self.start_unix_nanos = self.start_unix_nanos.min(later.start_unix_nanos);
        self.time_unix_nanos = self.time_unix_nanos.max(later.time_unix_nanos);
        self.origin = later.origin.clone();
    }
}

/// Everything one export request carried, flattened.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReceivedMetrics {
    pub histograms: Vec<HistogramPoint>,
    pub numbers: Vec<NumberPoint>,
    /// Points of kinds the store does not keep (exponential histograms, summaries) or
    /// metrics without data.
    pub ignored: u64,
}

impl ReceivedMetrics {
    pub fn is_empty(&self) -> bool {
        self.histograms.is_empty() && self.numbers.is_empty() && self.ignored == 0
    }
}

/// Flattens an export request, in request order. Never fails, like [`spans_from_request`]:
/// a point with odd fields is kept as sent rather than dropped.
///
/// [`spans_from_request`]: crate::spans_from_request
pub fn metrics_from_request(request: &ExportMetricsServiceRequest) -> ReceivedMetrics {
    let mut out = ReceivedMetrics::default();
    for resource_metrics in &request.resource_metrics {
        let resource = resource_metrics
            .resource
            .as_ref()
            .map(|r| attributes(&r.attributes))
            .unwrap_or_default();
        let service_name = service_name_of(&resource);
        for scope_metrics in &resource_metrics.scope_metrics {
            let scope_name = scope_metrics
                .scope
                .as_ref()
                .map(|s| s.name.clone())
                .unwrap_or_default();
            for m in &scope_metrics.metrics {
                let origin = |point_attributes: &[KeyValue]| MetricOrigin {
                    service_name: service_name.clone(),
                    resource: resource.clone(),
                    scope_name: scope_name.clone(),
                    name: m.name.clone(),
                    unit: m.unit.clone(),
                    description: m.description.clone(),
                    attributes: attributes(point_attributes),
                };
                match &m.data {
                    Some(metric::Data::Histogram(h)) => {
                        let temporality = Temporality::from_proto(h.aggregation_temporality);
                        out.histograms.extend(
                            h.data_points
                                .iter()
                                .map(|p| histogram_point(p, origin(&p.attributes), temporality)),
                        );
                    }
                    Some(metric::Data::Sum(s)) => {
                        let kind = NumberKind::Sum {
                            monotonic: s.is_monotonic,
                            temporality: Temporality::from_proto(s.aggregation_temporality),
                        };
                        for p in &s.data_points {
                            out.push_number(p, origin(&p.attributes), kind);
                        }
                    }
                    Some(metric::Data::Gauge(g)) => {
                        for p in &g.data_points {
                            out.push_number(p, origin(&p.attributes), NumberKind::Gauge);
                        }
                    }
                    Some(metric::Data::ExponentialHistogram(h)) => {
                        out.ignored += h.data_points.len() as u64;
                    }
                    Some(metric::Data::Summary(s)) => out.ignored += s.data_points.len() as u64,
                    None => out.ignored += 1,
                }
            }
        }
    }
    out
}

fn histogram_point(
    p: &HistogramDataPoint,
    origin: MetricOrigin,
    temporality: Temporality,
) -> HistogramPoint {
    HistogramPoint {
        origin,
        temporality,
        start_unix_nanos: p.start_time_unix_nano,
        time_unix_nanos: p.time_unix_nano,
        count: p.count,
        sum: p.sum,
        bucket_counts: p.bucket_counts.clone(),
        explicit_bounds: p.explicit_bounds.clone(),
        min: p.min,
        max: p.max,
    }
}

impl ReceivedMetrics {
    /// Keeps a sum or gauge point; one without a value (invalid per the OTLP specification,
    /// and what this proto crate's JSON decoder makes of a quoted `"asInt": "7"`) is counted
    /// as ignored rather than stored as a made-up zero.
    fn push_number(&mut self, p: &NumberDataPoint, origin: MetricOrigin, kind: NumberKind) {
        let value = match p.value {
            Some(number_data_point::Value::AsInt(i)) => NumberValue::Int(i),
            Some(number_data_point::Value::AsDouble(d)) => NumberValue::Double(d),
            None => {
                self.ignored += 1;
                return;
            }
        };
        self.numbers.push(NumberPoint {
            origin,
            kind,
            start_unix_nanos: p.start_time_unix_nano,
            time_unix_nanos: p.time_unix_nano,
            value,
        });
    }
}

fn attributes(kvs: &[KeyValue]) -> BTreeMap<String, AttrValue> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), AttrValue::from_proto(kv.value.as_ref())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
    use opentelemetry_proto::tonic::metrics::v1::{
        Gauge, Histogram, Metric, ResourceMetrics, ScopeMetrics, Sum, Summary,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;

    fn kv(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            key_strindex: 0,
        }
    }

    fn request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: vec![kv(
                        "service.name",
                        any_value::Value::StringValue("svc".into()),
                    )],
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    metrics,
                    ..Default::default()
                }],
                schema_url: String::new(),
            }],
        }
    }

    #[test]
    fn converts_histograms_sums_gauges_and_counts_the_rest() {
        let histogram = Metric {
            name: "http.server.request.duration".into(),
            unit: "s".into(),
            data: Some(metric::Data::Histogram(Histogram {
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                data_points: vec![HistogramDataPoint {
                    attributes: vec![kv("http.route", any_value::Value::StringValue("/a".into()))],
                    start_time_unix_nano: 1,
                    time_unix_nano: 2,
                    count: 3,
                    sum: Some(0.6),
                    bucket_counts: vec![1, 2, 0],
                    explicit_bounds: vec![0.1, 0.5],
                    min: Some(0.05),
                    max: Some(0.3),
                    ..Default::default()
                }],
            })),
            ..Default::default()
        };
        let sum = Metric {
            name: "retries".into(),
            data: Some(metric::Data::Sum(Sum {
                aggregation_temporality: AggregationTemporality::Delta as i32,
                is_monotonic: true,
                data_points: vec![NumberDataPoint {
                    value: Some(number_data_point::Value::AsInt(4)),
                    ..Default::default()
                }],
            })),
            ..Default::default()
        };
        let gauge = Metric {
            name: "pool".into(),
            data: Some(metric::Data::Gauge(Gauge {
                data_points: vec![NumberDataPoint {
                    value: Some(number_data_point::Value::AsDouble(0.5)),
                    ..Default::default()
                }],
            })),
            ..Default::default()
        };
        let summary = Metric {
            name: "old".into(),
            data: Some(metric::Data::Summary(Summary {
                data_points: vec![Default::default(), Default::default()],
            })),
            ..Default::default()
        };
        let got = metrics_from_request(&request(vec![histogram, sum, gauge, summary]));
        assert_eq!(got.histograms.len(), 1);
        let h = &got.histograms[0];
        assert_eq!(h.origin.service_name, "svc");
        assert_eq!(h.origin.unit, "s");
        assert_eq!(h.origin.attr_str("http.route"), Some("/a"));
        assert_eq!(h.temporality, Temporality::Cumulative);
        assert_eq!(
            (h.count, h.sum, h.min, h.max),
            (3, Some(0.6), Some(0.05), Some(0.3))
        );
        assert_eq!(h.bucket_counts, [1, 2, 0]);
        assert_eq!(h.explicit_bounds, [0.1, 0.5]);
        assert_eq!(got.numbers.len(), 2);
        assert_eq!(got.numbers[0].value, NumberValue::Int(4));
        assert!(got.numbers[0].is_delta_sum());
        assert_eq!(got.numbers[1].kind, NumberKind::Gauge);
        assert_eq!(got.numbers[1].value.as_f64(), 0.5);
        assert_eq!(got.ignored, 2);
    }

    #[test]
    fn delta_histograms_add_up() {
        let point = |count, buckets: Vec<u64>, min, max, start, time| HistogramPoint {
            origin: MetricOrigin {
                service_name: "s".into(),
                resource: BTreeMap::new(),
                scope_name: String::new(),
                name: "h".into(),
                unit: "s".into(),
                description: String::new(),
                attributes: BTreeMap::new(),
            },
            temporality: Temporality::Delta,
            start_unix_nanos: start,
            time_unix_nanos: time,
            count,
            sum: Some(count as f64),
            bucket_counts: buckets,
            explicit_bounds: vec![1.0],
            min: Some(min),
            max: Some(max),
        };
        let mut total = point(2, vec![2, 0], 0.5, 0.9, 10, 20);
        total.accumulate(&point(3, vec![1, 2], 0.2, 4.0, 20, 30));
        assert_eq!(total.count, 5);
        assert_eq!(total.sum, Some(5.0));
        assert_eq!(total.bucket_counts, [3, 2]);
        assert_eq!((total.min, total.max), (Some(0.2), Some(4.0)));
        assert_eq!((total.start_unix_nanos, total.time_unix_nanos), (10, 30));
    }
}
