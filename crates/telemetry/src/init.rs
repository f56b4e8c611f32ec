//! Builds the tracer provider, the meter provider and the `tracing`
//! subscriber.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::trace::{RandomIdGenerator, SdkTracerProvider};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use crate::config::{OtlpProtocol, Signal, SpanExporterKind, TelemetryConfig};
use crate::export::grpc::GrpcSpanSink;
use crate::export::http::HttpSpanSink;
use crate::export::{self, ExportSettings, RetryingBatchProcessor, SpanExportStats};
use crate::tls::{self, TlsConfig};
use crate::{logging, metrics, propagation, resource, LogFormat, TelemetryError, TelemetryGuard};
use opentelemetry_otlp::ExporterBuildError;

/// Name of the instrumentation scope our spans are recorded under.
pub(crate) const SCOPE: &str = "latency-lab";

/// Installs propagation, the tracer provider, the meter provider and the
/// global `tracing` subscriber. Call once, inside the Tokio runtime (the gRPC
/// exporters' channels live on it), before creating any instrument, and keep
/// the guard until the process ends.
pub fn init(
    config: &TelemetryConfig,
    log_format: LogFormat,
) -> Result<TelemetryGuard, TelemetryError> {
    propagation::install_chosen(config.propagators);

    // One resource for both signals: a series and a span of this process
    // name the same service and instance.
    let resource = resource::resource(config);
    let (provider, span_export) = build_provider_with(config, resource.clone())?;
    let meter_provider = metrics::build_meter_provider(config, resource)?;
    opentelemetry::global::set_tracer_provider(provider.clone());
    opentelemetry::global::set_meter_provider(meter_provider.clone());
    if let Some(stats) = &span_export {
        export::register_metrics(stats);
    }
    let tracer = provider.tracer(SCOPE);

    // Spans at INFO and above become OpenTelemetry spans. This filter belongs
    // to this layer alone, so `RUST_LOG=warn` quietens logs without silently
    // switching tracing off.
    //
    // `busy_ns`/`idle_ns` stay (time entered vs not: roughly working vs
    // waiting, lesson 4). Source location, thread and target are for someone
    // debugging the instrumentation itself; Jaeger sorts tags by name, so
    // they would come first and push `http.*`/`db.*` off the collapsed line.
    let otel_layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_tracked_inactivity(true)
        .with_location(config.span_source)
        .with_threads(config.span_source)
        .with_target(config.span_source)
        .with_filter(LevelFilter::INFO);

    tracing_subscriber::registry()
        .with(otel_layer)
        .with(logging::layer(log_format))
        .try_init()?;

    if config.sdk_disabled {
        tracing::info!(service.name = %config.service_name, "OTEL_SDK_DISABLED=true: spans are not exported");
    } else {
        tracing::info!(
            service.name = %config.service_name,
            endpoint = %config.endpoint,
            protocol = ?config.protocol,
            tls = %tls_summary(config.tls.as_ref()),
            queue = config.span_export.max_queue_size,
            "exporting spans over OTLP"
        );
    }
    if config.metrics.exports(config.sdk_disabled) {
        tracing::info!(
            endpoint = %config.metrics.endpoint,
            protocol = ?config.metrics.protocol,
            tls = %tls_summary(config.metrics.tls.as_ref()),
            interval_ms = config.metrics.interval.as_millis() as u64,
            "exporting metrics over OTLP"
        );
    } else {
        tracing::info!(
            service.name = %config.service_name,
            "metrics are not exported (OTEL_METRICS_EXPORTER=none or OTEL_SDK_DISABLED=true)"
        );
    }
    Ok(TelemetryGuard::new(provider, meter_provider).with_span_export(span_export))
}

/// The provider alone, without touching global state: `init` uses it, and so
/// can tests that need a provider of their own.
pub fn build_provider(config: &TelemetryConfig) -> Result<SdkTracerProvider, TelemetryError> {
    build_provider_and_stats(config).map(|(provider, _)| provider)
}

/// As [`build_provider`], with the export queue's counts (`None` with
/// `OTEL_SDK_DISABLED=true`: nothing is queued).
pub fn build_provider_and_stats(
    config: &TelemetryConfig,
) -> Result<(SdkTracerProvider, Option<SpanExportStats>), TelemetryError> {
    build_provider_with(config, resource::resource(config))
}

fn build_provider_with(
    config: &TelemetryConfig,
    resource: opentelemetry_sdk::Resource,
) -> Result<(SdkTracerProvider, Option<SpanExportStats>), TelemetryError> {
    // Random trace-ids, said explicitly: the propagator sets the W3C Level 2
    // `random` flag on traces this process starts on that promise
    // (`W3cTraceContextPropagator::new`). Change one, change the other.
    let mut builder = SdkTracerProvider::builder()
        .with_resource(resource)
        .with_id_generator(RandomIdGenerator::default())
        .with_sampler(config.sampler.to_sdk());

    let mut stats = None;
    if !config.sdk_disabled {
        // The tonic exporter's channel is created here, on the caller's
        // runtime; the processor's thread then only drives its futures.
        let timeout = config.span_export.otlp_timeout;
        let settings = ExportSettings::from_config(config);
        if config.span_exporter == SpanExporterKind::Direct {
            let headers = config.otlp_headers.clone();
            let report = Box::new(export::report::log);
            let processor = match (config.protocol, &config.tls) {
                (OtlpProtocol::Grpc, tls) => {
                    let tls = match tls {
                        Some(tls) => Some(tls::checked_tonic_config(
                            tls,
                            Signal::Traces.certificate_var(),
                        )?),
                        None => None,
                    };
                    let sink = GrpcSpanSink::new(&config.endpoint, timeout, headers, tls).map_err(
                        |e| ExporterBuildError::InvalidUri(config.endpoint.clone(), e.to_string()),
                    )?;
                    RetryingBatchProcessor::start(sink, settings, report)
                }
                (OtlpProtocol::HttpProtobuf, None) => {
                    let sink = HttpSpanSink::new(&config.endpoint, timeout, headers)
                        .map_err(ExporterBuildError::InternalFailure)?;
                    RetryingBatchProcessor::start(sink, settings, report)
                }
                (OtlpProtocol::HttpProtobuf, Some(tls)) => {
                    let mut headers = headers;
                    headers.insert(
                        http::header::USER_AGENT,
                        http::HeaderValue::from_str(&export::headers::user_agent())
                            .expect("the user agent is ASCII"),
                    );
                    let client = tls::https_client(
                        tls,
                        Signal::Traces.certificate_var(),
                        timeout,
                        headers,
                        None,
                    )?;
                    RetryingBatchProcessor::start(
                        HttpSpanSink::over_tls(&config.endpoint, client),
                        settings,
                        report,
                    )
                }
            };
            stats = Some(processor.stats());
            return Ok((builder.with_span_processor(processor).build(), stats));
        }
        // The SDK exporters read the headers variables themselves.
        let exporter = match config.protocol {
            OtlpProtocol::Grpc => {
                let mut builder = SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(config.endpoint.clone())
                    .with_timeout(timeout);
                if let Some(tls) = &config.tls {
                    builder = builder.with_tls_config(tls::checked_tonic_config(
                        tls,
                        Signal::Traces.certificate_var(),
                    )?);
                }
                builder.build()?
            }
            OtlpProtocol::HttpProtobuf => {
                let mut builder = SpanExporter::builder()
                    .with_http()
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                    .with_endpoint(config.endpoint.clone())
                    .with_timeout(timeout);
                if let Some(tls) = &config.tls {
                    let client = tls::https_client(
                        tls,
                        Signal::Traces.certificate_var(),
                        timeout,
                        http::HeaderMap::new(),
                        None,
                    )?;
                    builder = builder.with_http_client(client);
                }
                builder.build()?
            }
        };
        let processor = RetryingBatchProcessor::new(exporter, settings);
        stats = Some(processor.stats());
        builder = builder.with_span_processor(processor);
    }
    Ok((builder.build(), stats))
}

/// The start-up line's `tls` field.
fn tls_summary(tls: Option<&TlsConfig>) -> String {
    tls.map_or_else(|| "none (http://)".to_owned(), TlsConfig::describe)
}
