//! For tests only (feature `testing`, a dev-dependency): a meter provider
//! that exports into memory, installed globally, and readers of what it
//! collected.
//!
//! Each test binary is its own process, so it may install the global
//! provider once ([`global_in_memory`]) and have every instrument of the
//! code under test record into it; the instruments are cumulative, so a
//! test reads totals and should use attribute values (routes, pool names)
//! of its own when tests of one binary run concurrently.

use std::sync::OnceLock;

use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, Metric, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::{
    InMemoryMetricExporter, InMemoryMetricExporterBuilder, PeriodicReader, SdkMeterProvider,
    Temporality,
};

/// A provider whose periodic reader exports into memory on demand
/// ([`InMemoryMetrics::collect`]).
#[derive(Clone, Debug)]
pub struct InMemoryMetrics {
    pub provider: SdkMeterProvider,
    pub exporter: InMemoryMetricExporter,
}

impl InMemoryMetrics {
    /// A new provider (not installed globally), cumulative like production.
    pub fn new() -> Self {
        let exporter = InMemoryMetricExporterBuilder::new()
            .with_temporality(Temporality::Cumulative)
            .build();
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(exporter.clone()).build())
            .build();
        Self { provider, exporter }
    }

    /// Flushes and returns the latest export: one snapshot of every
    /// instrument's cumulative state.
    pub fn collect(&self) -> Snapshot {
        self.exporter.reset();
        self.provider.force_flush().expect("force_flush");
        let exports = self.exporter.get_finished_metrics().expect("metrics");
        Snapshot(exports.into_iter().last())
    }
}

impl Default for InMemoryMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The process-wide in-memory provider, installed as the global meter
/// provider on first call. Call it before building anything instrumented.
pub fn global_in_memory() -> &'static InMemoryMetrics {
    static GLOBAL: OnceLock<InMemoryMetrics> = OnceLock::new();
    GLOBAL.get_or_init(|| {
        let metrics = InMemoryMetrics::new();
        opentelemetry::global::set_meter_provider(metrics.provider.clone());
        metrics
    })
}

/// One export.
#[derive(Debug)]
pub struct Snapshot(Option<ResourceMetrics>);

/// One data point, whatever its instrument kind, flattened for assertions.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub attributes: Vec<KeyValue>,
    /// Sum or gauge value; for a histogram, its sum.
    pub value: f64,
    /// Histogram sample count (0 for sums and gauges).
    pub count: u64,
    /// Histogram bounds (empty for sums and gauges).
    pub bounds: Vec<f64>,
}

impl Point {
    /// The value of attribute `key`, if present.
    pub fn attr(&self, key: &str) -> Option<&Value> {
        self.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| &kv.value)
    }

    /// Whether every `(key, value)` of `wanted` is among the attributes
    /// (values compared as strings).
    pub fn has(&self, wanted: &[(&str, &str)]) -> bool {
        wanted
            .iter()
            .all(|(k, v)| self.attr(k).is_some_and(|got| got.as_str() == *v))
    }

    /// The attribute keys, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .attributes
            .iter()
            .map(|kv| kv.key.as_str().to_owned())
            .collect();
        keys.sort();
        keys
    }
}

impl Snapshot {
    /// The metric named `name`, if exported.
    pub fn metric(&self, name: &str) -> Option<&Metric> {
        self.0
            .as_ref()?
            .scope_metrics()
            .flat_map(|s| s.metrics())
            .find(|m| m.name() == name)
    }

    /// The unit of metric `name`.
    pub fn unit(&self, name: &str) -> Option<String> {
        self.metric(name).map(|m| m.unit().to_owned())
    }

    /// Every data point of metric `name` (empty when not exported).
    pub fn points(&self, name: &str) -> Vec<Point> {
        self.metric(name).map(points).unwrap_or_default()
    }

    /// Data points of `name` having every attribute of `wanted`.
    pub fn points_with(&self, name: &str, wanted: &[(&str, &str)]) -> Vec<Point> {
        self.points(name)
            .into_iter()
            .filter(|p| p.has(wanted))
            .collect()
    }

    /// Sum of histogram counts, or of sum values, over the points of `name`
    /// having every attribute of `wanted`.
    pub fn total(&self, name: &str, wanted: &[(&str, &str)]) -> f64 {
        self.points_with(name, wanted)
            .iter()
            .map(|p| {
                if p.bounds.is_empty() {
                    p.value
                } else {
                    p.count as f64
                }
            })
            .sum()
    }

    /// The resource of the export.
    pub fn resource(&self) -> Option<&opentelemetry_sdk::Resource> {
        self.0.as_ref().map(ResourceMetrics::resource)
    }
}

fn points(metric: &Metric) -> Vec<Point> {
    match metric.data() {
        AggregatedMetrics::F64(data) => points_of(data, |v| v),
        AggregatedMetrics::I64(data) => points_of(data, |v| v as f64),
        AggregatedMetrics::U64(data) => points_of(data, |v| v as f64),
    }
}

fn points_of<T: Copy>(data: &MetricData<T>, to_f64: impl Fn(T) -> f64) -> Vec<Point> {
    let point = |attributes: Vec<KeyValue>, value: f64, count: u64, bounds: Vec<f64>| Point {
        attributes,
        value,
        count,
        bounds,
    };
    match data {
        MetricData::Sum(sum) => sum
            .data_points()
            .map(|p| {
                point(
                    p.attributes().cloned().collect(),
                    to_f64(p.value()),
                    0,
                    vec![],
                )
            })
            .collect(),
        MetricData::Gauge(gauge) => gauge
            .data_points()
            .map(|p| {
                point(
                    p.attributes().cloned().collect(),
                    to_f64(p.value()),
                    0,
                    vec![],
                )
            })
            .collect(),
        MetricData::Histogram(histogram) => histogram
            .data_points()
            .map(|p| {
                point(
                    p.attributes().cloned().collect(),
                    to_f64(p.sum()),
                    p.count(),
                    p.bounds().collect(),
                )
            })
            .collect(),
        MetricData::ExponentialHistogram(_) => Vec::new(),
    }
}
