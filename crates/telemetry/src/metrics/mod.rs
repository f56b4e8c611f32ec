//! Metrics beside the spans: the meter provider, its OTLP exporter, and the
//! histogram boundaries every duration in the suite is recorded with.
//!
//! Traces explain one request; metrics show the *distribution* — p50 against
//! p99 per endpoint, how much of it is the database, when the tail goes bad.
//! The provider follows the same rules as the tracer provider (endpoint,
//! protocol, `OTEL_SDK_DISABLED`, flushed on exit by [`crate::TelemetryGuard`])
//! and carries the same resource, so a series and a span of one process name
//! the same `service.name` and `service.instance.id`.
//!
//! Temporality is cumulative: what Prometheus (through the collector's
//! Prometheus exporter) expects, and what survives a lost export — the next
//! one carries the whole count again.
//!
//! Instruments come from [`meter`], the global meter provider's meter for
//! this suite. The global provider must be installed ([`crate::init`]) before
//! an instrument is created: an instrument created earlier stays a no-op.
//! Every service builds its instruments after `init` (service-kit's start-up
//! order), and the server middleware and traced client create theirs on
//! first use.
//!
//! | instrument | where | attributes |
//! | --- | --- | --- |
//! | `http.server.request.duration` (s) | [`crate::server`] | `http.request.method`, `http.route`, `http.response.status_code`, `url.scheme`, `error.type` |
//! | `http.client.request.duration` (s), one sample per attempt | [`crate::client`] | `http.request.method`, `server.address`, `server.port`, `url.template`, `http.response.status_code`, `error.type` |
//!
//! The mocks' database and pool instruments live in `mock-db`, the
//! aggregator's remedies in `profile-aggregator`'s `resilience` module; all
//! take their meter and duration histograms from here.

mod buckets;
mod reported;
#[cfg(feature = "testing")]
pub mod testing;

use opentelemetry::metrics::{Histogram, Meter};
use opentelemetry_otlp::{MetricExporter, WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};
use opentelemetry_sdk::Resource;
use tonic::metadata::MetadataMap;

pub use buckets::DURATION_BOUNDARIES;

use crate::config::{OtlpProtocol, Signal, TelemetryConfig};
use crate::tls;
use crate::TelemetryError;

/// Instrumentation scope of every instrument of the suite (the same name as
/// the spans' scope).
pub const SCOPE: &str = "latency-lab";

/// The meter every instrument of the suite is created from: the global
/// provider's, installed by [`crate::init`].
pub fn meter() -> Meter {
    opentelemetry::global::meter(SCOPE)
}

/// A duration histogram as the semantic conventions want it — seconds,
/// unit `s`, `f64` — with [`DURATION_BOUNDARIES`].
pub fn duration_histogram(
    meter: &Meter,
    name: &'static str,
    description: &'static str,
) -> Histogram<f64> {
    meter
        .f64_histogram(name)
        .with_unit("s")
        .with_description(description)
        .with_boundaries(DURATION_BOUNDARIES.to_vec())
        .build()
}

/// The meter provider alone, without touching global state. With
/// `OTEL_METRICS_EXPORTER=none` or `OTEL_SDK_DISABLED=true` it has no reader:
/// instruments record into nothing and nothing is ever sent.
pub fn build_meter_provider(
    config: &TelemetryConfig,
    resource: Resource,
) -> Result<SdkMeterProvider, TelemetryError> {
    let builder = SdkMeterProvider::builder().with_resource(resource);
    let provider = match exporter(config)? {
        Some(exporter) => builder
            .with_reader(
                PeriodicReader::builder(reported::Reported::new(exporter))
                    .with_interval(config.metrics.interval)
                    .build(),
            )
            .build(),
        None => builder.build(),
    };
    Ok(provider)
}

/// The OTLP metric exporter, or `None` when metrics are not to be exported.
pub fn exporter(config: &TelemetryConfig) -> Result<Option<MetricExporter>, TelemetryError> {
    let metrics = &config.metrics;
    if !metrics.exports(config.sdk_disabled) {
        return Ok(None);
    }
    // The headers are given explicitly, resolved by the same rules as the
    // spans' (a bad value stopped the start); the SDK would also read the
    // variables itself, and drop a pair it cannot use without a word.
    let exporter = match metrics.protocol {
        OtlpProtocol::Grpc => {
            let mut builder = MetricExporter::builder()
                .with_tonic()
                .with_temporality(Temporality::Cumulative)
                .with_endpoint(metrics.endpoint.clone())
                .with_timeout(metrics.timeout)
                .with_metadata(MetadataMap::from_headers(metrics.headers.clone()));
            if let Some(tls) = &metrics.tls {
                builder = builder.with_tls_config(tls::checked_tonic_config(
                    tls,
                    Signal::Metrics.certificate_var(),
                )?);
            }
            builder.build()?
        }
        OtlpProtocol::HttpProtobuf => {
            let mut builder = MetricExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_temporality(Temporality::Cumulative)
                .with_endpoint(metrics.endpoint.clone())
                .with_timeout(metrics.timeout)
                .with_headers(header_strings(&metrics.headers));
            if let Some(tls) = &metrics.tls {
                // The SDK keeps a failure's reason to itself: this client
                // logs it (once per run of failures).
                let client = tls::https_client(
                    tls,
                    Signal::Metrics.certificate_var(),
                    metrics.timeout,
                    http::HeaderMap::new(),
                    Some("metrics"),
                )?;
                builder = builder.with_http_client(client);
            }
            builder.build()?
        }
    };
    Ok(Some(exporter))
}

/// The SDK's HTTP exporter takes its extra headers as strings (every value
/// here came from a string, so none is lost).
fn header_strings(headers: &http::HeaderMap) -> std::collections::HashMap<String, String> {
    headers
        .iter()
        .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_owned())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> TelemetryConfig {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        TelemetryConfig::from_lookup("svc", "0", |k| map.get(k).cloned()).unwrap()
    }

    #[tokio::test]
    async fn none_and_sdk_disabled_build_no_exporter() {
        assert!(exporter(&config(&[("OTEL_METRICS_EXPORTER", "none")]))
            .unwrap()
            .is_none());
        assert!(exporter(&config(&[("OTEL_SDK_DISABLED", "true")]))
            .unwrap()
            .is_none());
        assert!(exporter(&config(&[])).unwrap().is_some());
        assert!(exporter(&config(&[(
            "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
            "http/protobuf"
        )]))
        .unwrap()
        .is_some());
    }
}
