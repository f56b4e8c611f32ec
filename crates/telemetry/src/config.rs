//! Telemetry configuration from the standard OpenTelemetry environment
//! variables.
//!
//! The SDK reads some of these variables by itself, but it falls back to a
//! default with nothing more than an internal log line when a value is wrong.
//! We resolve them here, once, so that a typo such as
//! `OTEL_TRACES_SAMPLER=always-on` stops the service with a clear message, and
//! so that the resolution rules (which endpoint wins, which path is appended)
//! are unit-tested rather than assumed.
//!
//! Endpoints are `http://` or `https://`; for `https://` the TLS variables
//! (`OTEL_EXPORTER_OTLP_(TRACES_|METRICS_)CERTIFICATE`, `_CLIENT_CERTIFICATE`,
//! `_CLIENT_KEY`) are read here too, their files checked ([`crate::tls`]).

use std::time::Duration;

use crate::tls::{TlsConfig, TlsVars};
use crate::TelemetryError;

/// How spans leave the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// OTLP over gRPC, the OpenTelemetry default (port 4317).
    Grpc,
    /// OTLP over HTTP with protobuf bodies (port 4318, path `/v1/traces`).
    HttpProtobuf,
}

impl OtlpProtocol {
    fn parse(var: &'static str, value: &str) -> Result<Self, TelemetryError> {
        match value.trim() {
            "grpc" => Ok(Self::Grpc),
            "http/protobuf" => Ok(Self::HttpProtobuf),
            "http/json" => Err(invalid(
                var,
                value,
                "http/json is not built into latency-lab; use grpc or http/protobuf",
            )),
            _ => Err(invalid(var, value, "expected grpc or http/protobuf")),
        }
    }

    fn default_endpoint(self, signal: Signal) -> String {
        match self {
            Self::Grpc => "http://localhost:4317".to_owned(),
            Self::HttpProtobuf => format!("http://localhost:4318{}", signal.path()),
        }
    }
}

/// The two signals this crate exports, each with its own `OTEL_*_<SIGNAL>_*`
/// variables and its own OTLP/HTTP path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    Traces,
    Metrics,
}

impl Signal {
    fn protocol_var(self) -> &'static str {
        match self {
            Self::Traces => "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            Self::Metrics => "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
        }
    }

    fn endpoint_var(self) -> &'static str {
        match self {
            Self::Traces => "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            Self::Metrics => "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Self::Traces => "/v1/traces",
            Self::Metrics => "/v1/metrics",
        }
    }

    /// `OTEL_EXPORTER_OTLP_<SIGNAL>_HEADERS` (`export/headers.rs`).
    pub(crate) fn headers_var(self) -> &'static str {
        match self {
            Self::Traces => "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
            Self::Metrics => "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
        }
    }

    fn timeout_var(self) -> &'static str {
        match self {
            Self::Traces => "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
            Self::Metrics => "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
        }
    }

    /// The TLS variables of the signal, each before its generic fallback.
    fn tls_vars(self) -> TlsVars {
        match self {
            Self::Traces => TlsVars {
                certificate: [
                    "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
                    "OTEL_EXPORTER_OTLP_CERTIFICATE",
                ],
                client_certificate: [
                    "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
                    "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
                ],
                client_key: [
                    "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
                    "OTEL_EXPORTER_OTLP_CLIENT_KEY",
                ],
            },
            Self::Metrics => TlsVars {
                certificate: [
                    "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE",
                    "OTEL_EXPORTER_OTLP_CERTIFICATE",
                ],
                client_certificate: [
                    "OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE",
                    "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
                ],
                client_key: [
                    "OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY",
                    "OTEL_EXPORTER_OTLP_CLIENT_KEY",
                ],
            },
        }
    }

    /// The CA variable an error about the trust store points to.
    pub(crate) fn certificate_var(self) -> &'static str {
        self.tls_vars().certificate[1]
    }
}

/// The TLS set-up of a destination: read for `https://` only, where the
/// specification says the certificate variables apply.
fn resolve_tls(
    signal: Signal,
    endpoint: &str,
    non_empty: &impl Fn(&str) -> Option<String>,
) -> Result<Option<TlsConfig>, TelemetryError> {
    if endpoint.starts_with("https://") {
        TlsConfig::from_lookup(signal.tls_vars(), non_empty).map(Some)
    } else {
        Ok(None)
    }
}

/// Where one signal goes: protocol and the full URL, resolved by the same
/// rules for spans and metrics. The signal-specific variables win; the
/// signal-specific endpoint is used verbatim, while the generic one is a
/// base URL to which HTTP exporters append the signal path.
fn resolve_destination(
    signal: Signal,
    non_empty: &impl Fn(&str) -> Option<String>,
) -> Result<(OtlpProtocol, String), TelemetryError> {
    let protocol = match non_empty(signal.protocol_var()) {
        Some(v) => OtlpProtocol::parse(signal.protocol_var(), &v)?,
        None => match non_empty("OTEL_EXPORTER_OTLP_PROTOCOL") {
            Some(v) => OtlpProtocol::parse("OTEL_EXPORTER_OTLP_PROTOCOL", &v)?,
            None => OtlpProtocol::Grpc,
        },
    };
    let endpoint = if let Some(v) = non_empty(signal.endpoint_var()) {
        validate_endpoint(signal.endpoint_var(), v.trim())?
    } else if let Some(v) = non_empty("OTEL_EXPORTER_OTLP_ENDPOINT") {
        let base = validate_endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", v.trim())?;
        match protocol {
            OtlpProtocol::Grpc => base,
            OtlpProtocol::HttpProtobuf => {
                format!("{}{}", base.trim_end_matches('/'), signal.path())
            }
        }
    } else {
        protocol.default_endpoint(signal)
    };
    Ok((protocol, endpoint))
}

/// `OTEL_METRICS_EXPORTER`: the two values latency-lab builds in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsExporterKind {
    /// OTLP, beside the spans (the default).
    Otlp,
    /// Instruments still record (cheaply) but no reader or exporter is built.
    None,
}

/// How metrics leave the process ([`crate::metrics`]).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsConfig {
    pub exporter: MetricsExporterKind,
    pub protocol: OtlpProtocol,
    /// The full URL (for HTTP, including `/v1/metrics`).
    pub endpoint: String,
    /// `OTEL_METRIC_EXPORT_INTERVAL`: how often the periodic reader collects
    /// and exports.
    pub interval: Duration,
    /// `OTEL_EXPORTER_OTLP_METRICS_HEADERS`, else `OTEL_EXPORTER_OTLP_HEADERS`:
    /// sent with every metric export (an auth token must reach both signals).
    pub headers: http::HeaderMap,
    /// `OTEL_EXPORTER_OTLP_METRICS_TIMEOUT`, else `OTEL_EXPORTER_OTLP_TIMEOUT`.
    pub timeout: Duration,
    /// `Some` for an `https://` endpoint ([`crate::tls`]).
    pub tls: Option<TlsConfig>,
}

impl MetricsConfig {
    /// Whether an exporter is to be built at all: not with
    /// `OTEL_METRICS_EXPORTER=none`, not with `OTEL_SDK_DISABLED=true`.
    pub fn exports(&self, sdk_disabled: bool) -> bool {
        self.exporter == MetricsExporterKind::Otlp && !sdk_disabled
    }

    fn from_lookup(non_empty: &impl Fn(&str) -> Option<String>) -> Result<Self, TelemetryError> {
        let exporter =
            match non_empty("OTEL_METRICS_EXPORTER") {
                None => MetricsExporterKind::Otlp,
                Some(v) => match v.trim() {
                    "otlp" => MetricsExporterKind::Otlp,
                    "none" => MetricsExporterKind::None,
                    _ => return Err(invalid(
                        "OTEL_METRICS_EXPORTER",
                        &v,
                        "expected otlp or none (latency-lab builds in no other metrics exporter)",
                    )),
                },
            };
        let (protocol, endpoint) = resolve_destination(Signal::Metrics, non_empty)?;
        let interval = match non_empty("OTEL_METRIC_EXPORT_INTERVAL") {
            Some(v) => match v.trim().parse::<u64>() {
                Ok(ms) if ms > 0 => Duration::from_millis(ms),
                _ => {
                    return Err(invalid(
                        "OTEL_METRIC_EXPORT_INTERVAL",
                        &v,
                        "expected milliseconds as a positive integer",
                    ))
                }
            },
            None => DEFAULT_METRIC_EXPORT_INTERVAL,
        };
        let headers = crate::export::headers::from_lookup(Signal::Metrics, non_empty)?;
        let timeout = match positive_millis(non_empty, Signal::Metrics.timeout_var())? {
            Some(t) => t,
            None => positive_millis(non_empty, "OTEL_EXPORTER_OTLP_TIMEOUT")?
                .unwrap_or(DEFAULT_OTLP_TIMEOUT),
        };
        let tls = if exporter == MetricsExporterKind::Otlp {
            resolve_tls(Signal::Metrics, &endpoint, non_empty)?
        } else {
            None
        };
        Ok(Self {
            exporter,
            protocol,
            endpoint,
            interval,
            headers,
            timeout,
            tls,
        })
    }
}

/// Export interval when `OTEL_METRIC_EXPORT_INTERVAL` is not set. The SDK's
/// own default is 60 s: in a workshop someone sends a burst of requests and
/// looks at a dashboard or `latency-lab up`'s table a few seconds later, and
/// a minute of nothing reads as "metrics are broken". Five seconds keeps the
/// export cost negligible (a handful of series per service) while a rate or
/// a p99 moves within one Prometheus scrape of the change that caused it.
pub const DEFAULT_METRIC_EXPORT_INTERVAL: Duration = Duration::from_secs(5);

/// The head sampler, as named by `OTEL_TRACES_SAMPLER`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SamplerConfig {
    AlwaysOn,
    AlwaysOff,
    TraceIdRatio(f64),
    ParentBasedAlwaysOn,
    ParentBasedAlwaysOff,
    ParentBasedTraceIdRatio(f64),
}

impl SamplerConfig {
    fn parse(name: &str, arg: Option<&str>) -> Result<Self, TelemetryError> {
        let ratio = || -> Result<f64, TelemetryError> {
            match arg {
                None => Ok(1.0),
                Some(raw) => match raw.trim().parse::<f64>() {
                    Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
                    _ => Err(invalid(
                        "OTEL_TRACES_SAMPLER_ARG",
                        raw,
                        "expected a ratio between 0.0 and 1.0",
                    )),
                },
            }
        };
        match name.trim() {
            "always_on" => Ok(Self::AlwaysOn),
            "always_off" => Ok(Self::AlwaysOff),
            "traceidratio" => Ok(Self::TraceIdRatio(ratio()?)),
            "parentbased_always_on" => Ok(Self::ParentBasedAlwaysOn),
            "parentbased_always_off" => Ok(Self::ParentBasedAlwaysOff),
            "parentbased_traceidratio" => Ok(Self::ParentBasedTraceIdRatio(ratio()?)),
            other => Err(invalid(
                "OTEL_TRACES_SAMPLER",
                other,
                "expected one of always_on, always_off, traceidratio, parentbased_always_on, \
                 parentbased_always_off, parentbased_traceidratio",
            )),
        }
    }

    pub(crate) fn to_sdk(self) -> opentelemetry_sdk::trace::Sampler {
        use opentelemetry_sdk::trace::Sampler;
        match self {
            Self::AlwaysOn => Sampler::AlwaysOn,
            Self::AlwaysOff => Sampler::AlwaysOff,
            Self::TraceIdRatio(r) => Sampler::TraceIdRatioBased(r),
            Self::ParentBasedAlwaysOn => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
            Self::ParentBasedAlwaysOff => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
            Self::ParentBasedTraceIdRatio(r) => {
                Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(r)))
            }
        }
    }
}

/// Everything [`crate::init`] needs, resolved and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryConfig {
    /// `Some(name)` when the environment does not name the service itself and
    /// the service's built-in default must be applied. When the environment
    /// does name it, the SDK's resource detectors pick it up and this is `None`
    /// — setting it in code would override `OTEL_SERVICE_NAME`.
    pub default_service_name: Option<String>,
    /// The name the spans will carry, for log lines and tests.
    pub service_name: String,
    /// `service.version` of the resource: the version of the service's own
    /// crate, given by the service (`env!("CARGO_PKG_VERSION")` at its call
    /// site), not this crate's. `OTEL_RESOURCE_ATTRIBUTES` may override it.
    pub service_version: String,
    pub protocol: OtlpProtocol,
    /// The full URL the exporter sends to (for HTTP, including `/v1/traces`).
    pub endpoint: String,
    pub sampler: SamplerConfig,
    /// `OTEL_SDK_DISABLED=true`: spans are still created, so context still
    /// propagates to downstream services, but nothing is exported.
    pub sdk_disabled: bool,
    /// How long the batch processor waits before exporting a batch; the SDK's
    /// `OTEL_BSP_SCHEDULE_DELAY` when set, otherwise a short default so that a
    /// trace is searchable a moment after its response.
    pub schedule_delay: Duration,
    /// The span export queue, its batches and its time limits
    /// ([`crate::export`]).
    pub span_export: SpanExportConfig,
    /// `LATENCY_LAB_SPAN_SOURCE=true`: every span also carries where it was
    /// opened (`code.*`), on which thread (`thread.*`) and its `tracing`
    /// target. Off by default: those tags sort first in Jaeger's tag list and
    /// push the `http.*`/`db.*` attributes off its collapsed line.
    pub span_source: bool,
    /// Metrics: exporter, destination and interval.
    pub metrics: MetricsConfig,
    /// Which exporter sends the spans ([`SpanExporterKind`]).
    pub span_exporter: SpanExporterKind,
    /// `OTEL_EXPORTER_OTLP_TRACES_HEADERS`, else `OTEL_EXPORTER_OTLP_HEADERS`:
    /// sent with every span export request (`export/headers.rs`).
    pub otlp_headers: http::HeaderMap,
    /// `Some` for an `https://` span endpoint: the CA to trust and the
    /// client identity ([`crate::tls`]).
    pub tls: Option<TlsConfig>,
    /// `OTEL_PROPAGATORS`: which context goes in and out with requests.
    pub propagators: Propagators,
}

/// `OTEL_PROPAGATORS`: the specification's comma-separated list, of which
/// latency-lab builds in `tracecontext` (W3C Trace Context, with the
/// `traceresponse` answer) and `baggage` (W3C Baggage); `none` switches
/// propagation off. The default is both. A propagator this build does not
/// have (`b3`, `b3multi`, `jaeger`, `xray`, `ottrace`) stops the service
/// naming the variable, rather than silently breaking every trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Propagators {
    pub trace_context: bool,
    pub baggage: bool,
}

impl Default for Propagators {
    fn default() -> Self {
        Propagators {
            trace_context: true,
            baggage: true,
        }
    }
}

/// The variable [`Propagators`] is read from.
pub const PROPAGATORS_VAR: &str = "OTEL_PROPAGATORS";

impl Propagators {
    pub fn parse(value: &str) -> Result<Self, TelemetryError> {
        let mut chosen = Propagators {
            trace_context: false,
            baggage: false,
        };
        let mut none = false;
        for name in value.split(',').map(|n| n.trim().to_ascii_lowercase()) {
            match name.as_str() {
                "tracecontext" => chosen.trace_context = true,
                "baggage" => chosen.baggage = true,
                "none" => none = true,
                "" => {}
                "b3" | "b3multi" | "jaeger" | "xray" | "ottrace" => {
                    return Err(invalid(
                        PROPAGATORS_VAR,
                        value,
                        &format!("{name} is not built into latency-lab (it has tracecontext, baggage and none)"),
                    ))
                }
                _ => {
                    return Err(invalid(
                        PROPAGATORS_VAR,
                        value,
                        &format!("unknown propagator {name:?} (expected tracecontext, baggage or none)"),
                    ))
                }
            }
        }
        if none && (chosen.trace_context || chosen.baggage) {
            return Err(invalid(
                PROPAGATORS_VAR,
                value,
                "none switches propagation off: it goes alone",
            ));
        }
        Ok(chosen)
    }
}

/// Who sends the spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanExporterKind {
    /// The request written straight from the spans and sent by our own gRPC
    /// or HTTP client (`export/encode.rs` says why): the default.
    Direct,
    /// The OpenTelemetry OTLP exporter: asked for with
    /// `LATENCY_LAB_SPAN_EXPORTER=sdk` (to compare, or to step around the
    /// direct encoder), and taken for what only it handles: compression
    /// (`OTEL_EXPORTER_OTLP_(TRACES_)COMPRESSION`), which this build
    /// refuses with that exporter's own error. (`https://` endpoints are
    /// refused before either, by `resolve_destination`.)
    Sdk,
}

/// The variable that chooses [`TelemetryConfig::span_exporter`]: `direct`
/// (the default) or `sdk`.
pub const SPAN_EXPORTER_VAR: &str = "LATENCY_LAB_SPAN_EXPORTER";

impl SpanExporterKind {
    fn from_lookup(non_empty: &impl Fn(&str) -> Option<String>) -> Result<Self, TelemetryError> {
        let asked = match non_empty(SPAN_EXPORTER_VAR) {
            None => Self::Direct,
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "direct" => Self::Direct,
                "sdk" => Self::Sdk,
                _ => return Err(invalid(SPAN_EXPORTER_VAR, &v, "expected direct or sdk")),
            },
        };
        let compression = [
            "OTEL_EXPORTER_OTLP_COMPRESSION",
            "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
        ]
        .iter()
        .any(|var| non_empty(var).is_some());
        Ok(if compression { Self::Sdk } else { asked })
    }
}

/// The span export queue and its time limits: the `OTEL_BSP_*` variables and
/// the OTLP request timeout, applied by [`crate::export`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanExportConfig {
    /// `OTEL_BSP_MAX_QUEUE_SIZE`: spans held in memory (queued or being
    /// retried) before new ones are dropped and counted.
    pub max_queue_size: usize,
    /// `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`: spans per export request; at most
    /// the queue size.
    pub max_export_batch_size: usize,
    /// `OTEL_BSP_EXPORT_TIMEOUT`: the longest one export attempt may take,
    /// whatever the exporter does.
    pub export_timeout: Duration,
    /// `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`, else `OTEL_EXPORTER_OTLP_TIMEOUT`:
    /// the OTLP exporter's own request timeout.
    pub otlp_timeout: Duration,
}

/// Default of `OTEL_BSP_MAX_QUEUE_SIZE`, sized so that a collector outage of
/// 30 s at 100 requests/s loses no span: a request of the profile aggregator
/// makes a trace of 7 spans (its SERVER span and two CLIENT spans, and a
/// SERVER and a `db.query` span in each mock), so a process holding all of
/// them (`latency-lab serve`) queues 7 × 100 × 30 = 21,000 spans in such an
/// outage; 32,768 leaves half as much again for retries, hedges and bursts.
/// A queued span takes about 1 KB (`SpanData` is 352 bytes, plus its
/// attributes), so a full queue costs some 30 MB, and only during an outage
/// (the buffer is given back once drained). The SDK's 2048 lasts about 3 s.
pub const DEFAULT_MAX_QUEUE_SIZE: usize = 32_768;

/// Default of `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` (the specification's 512).
pub const DEFAULT_MAX_EXPORT_BATCH_SIZE: usize = 512;

/// Default of `OTEL_BSP_EXPORT_TIMEOUT` (the specification's 30 s).
pub const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(30);

/// Default of `OTEL_EXPORTER_OTLP_TIMEOUT` (the specification's 10 s).
pub const DEFAULT_OTLP_TIMEOUT: Duration = Duration::from_secs(10);

impl SpanExportConfig {
    fn from_lookup(non_empty: &impl Fn(&str) -> Option<String>) -> Result<Self, TelemetryError> {
        let count = |var: &'static str, default: usize| -> Result<usize, TelemetryError> {
            match non_empty(var) {
                None => Ok(default),
                Some(v) => match v.trim().parse::<usize>() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => Err(invalid(var, &v, "expected a positive integer")),
                },
            }
        };
        let max_queue_size = count("OTEL_BSP_MAX_QUEUE_SIZE", DEFAULT_MAX_QUEUE_SIZE)?;
        let max_export_batch_size = match non_empty("OTEL_BSP_MAX_EXPORT_BATCH_SIZE") {
            // Unset, the default batch follows a smaller queue down.
            None => DEFAULT_MAX_EXPORT_BATCH_SIZE.min(max_queue_size),
            Some(v) => {
                let n = count(
                    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
                    DEFAULT_MAX_EXPORT_BATCH_SIZE,
                )?;
                if n > max_queue_size {
                    return Err(invalid(
                        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
                        &v,
                        &format!("must not exceed OTEL_BSP_MAX_QUEUE_SIZE ({max_queue_size})"),
                    ));
                }
                n
            }
        };
        let export_timeout = positive_millis(non_empty, "OTEL_BSP_EXPORT_TIMEOUT")?
            .unwrap_or(DEFAULT_EXPORT_TIMEOUT);
        let otlp_timeout = match positive_millis(non_empty, Signal::Traces.timeout_var())? {
            Some(t) => t,
            None => positive_millis(non_empty, "OTEL_EXPORTER_OTLP_TIMEOUT")?
                .unwrap_or(DEFAULT_OTLP_TIMEOUT),
        };
        Ok(Self {
            max_queue_size,
            max_export_batch_size,
            export_timeout,
            otlp_timeout,
        })
    }
}

/// A timeout in milliseconds: a positive integer (a zero timeout could never
/// succeed, and the SDK's "0 means no limit" reading would let an export hang).
fn positive_millis(
    non_empty: &impl Fn(&str) -> Option<String>,
    var: &'static str,
) -> Result<Option<Duration>, TelemetryError> {
    match non_empty(var) {
        None => Ok(None),
        Some(v) => match v.trim().parse::<u64>() {
            Ok(ms) if ms > 0 => Ok(Some(Duration::from_millis(ms))),
            _ => Err(invalid(
                var,
                &v,
                "expected milliseconds as a positive integer",
            )),
        },
    }
}

/// The variable that turns [`TelemetryConfig::span_source`] on.
pub const SPAN_SOURCE_VAR: &str = "LATENCY_LAB_SPAN_SOURCE";

/// Export delay when `OTEL_BSP_SCHEDULE_DELAY` is not set. The SDK's own
/// default (5 s) makes people think the demo is broken.
pub const DEFAULT_SCHEDULE_DELAY: Duration = Duration::from_millis(500);

impl TelemetryConfig {
    /// Reads the process environment. `service_version` is the calling
    /// service's crate version (`env!("CARGO_PKG_VERSION")` where it calls).
    pub fn from_env(
        default_service_name: &str,
        service_version: &str,
    ) -> Result<Self, TelemetryError> {
        Self::from_lookup(default_service_name, service_version, |key| {
            std::env::var(key).ok()
        })
    }

    /// Resolves the configuration from any variable lookup (tests pass a map).
    pub fn from_lookup(
        default_service_name: &str,
        service_version: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, TelemetryError> {
        let non_empty = |key: &str| lookup(key).filter(|v| !v.trim().is_empty());

        let env_service_name = non_empty("OTEL_SERVICE_NAME")
            .map(|v| v.trim().to_owned())
            .or_else(|| {
                non_empty("OTEL_RESOURCE_ATTRIBUTES")
                    .and_then(|attrs| service_name_from_resource_attributes(&attrs))
            });
        let (default_service_name, service_name) = match env_service_name {
            Some(name) => (None, name),
            None => (
                Some(default_service_name.to_owned()),
                default_service_name.to_owned(),
            ),
        };

        let (protocol, endpoint) = resolve_destination(Signal::Traces, &non_empty)?;
        let metrics = MetricsConfig::from_lookup(&non_empty)?;

        let sampler = match non_empty("OTEL_TRACES_SAMPLER") {
            Some(name) => {
                SamplerConfig::parse(&name, non_empty("OTEL_TRACES_SAMPLER_ARG").as_deref())?
            }
            None => SamplerConfig::ParentBasedAlwaysOn,
        };

        let sdk_disabled = match non_empty("OTEL_SDK_DISABLED") {
            Some(v) => parse_bool("OTEL_SDK_DISABLED", &v)?,
            None => false,
        };
        let span_source = match non_empty(SPAN_SOURCE_VAR) {
            Some(v) => parse_bool(SPAN_SOURCE_VAR, &v)?,
            None => false,
        };

        let schedule_delay = match non_empty("OTEL_BSP_SCHEDULE_DELAY") {
            Some(v) => Duration::from_millis(v.trim().parse::<u64>().map_err(|_| {
                invalid(
                    "OTEL_BSP_SCHEDULE_DELAY",
                    &v,
                    "expected milliseconds as an integer",
                )
            })?),
            None => DEFAULT_SCHEDULE_DELAY,
        };
        let span_export = SpanExportConfig::from_lookup(&non_empty)?;
        let span_exporter = SpanExporterKind::from_lookup(&non_empty)?;
        let otlp_headers = crate::export::headers::from_lookup(Signal::Traces, &non_empty)?;
        let tls = resolve_tls(Signal::Traces, &endpoint, &non_empty)?;
        let propagators = match non_empty(PROPAGATORS_VAR) {
            Some(v) => Propagators::parse(&v)?,
            None => Propagators::default(),
        };

        Ok(Self {
            default_service_name,
            service_name,
            service_version: service_version.to_owned(),
            protocol,
            endpoint,
            sampler,
            sdk_disabled,
            schedule_delay,
            span_export,
            span_source,
            metrics,
            span_exporter,
            otlp_headers,
            tls,
            propagators,
        })
    }
}

/// `OTEL_RESOURCE_ATTRIBUTES` is `key=value,key=value` with percent-encoded
/// values; only `service.name` matters here.
fn service_name_from_resource_attributes(attrs: &str) -> Option<String> {
    attrs.split(',').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key.trim() == "service.name" && !value.trim().is_empty()).then(|| value.trim().to_owned())
    })
}

/// `true` or `false`, in any case (the OpenTelemetry boolean rule); anything
/// else is a mistake worth stopping for.
fn parse_bool(var: &'static str, value: &str) -> Result<bool, TelemetryError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(var, value, "expected true or false")),
    }
}

fn validate_endpoint(var: &'static str, value: &str) -> Result<String, TelemetryError> {
    let uri: http::Uri = value
        .parse()
        .map_err(|e| invalid(var, value, &format!("not a URL: {e}")))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(invalid(var, value, "expected an http:// or https:// URL")),
    }
    if uri.authority().is_none() {
        return Err(invalid(var, value, "the URL has no host"));
    }
    Ok(value.to_owned())
}

fn invalid(var: &'static str, value: &str, reason: &str) -> TelemetryError {
    TelemetryError::InvalidEnv {
        var,
        value: value.to_owned(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve(vars: &[(&str, &str)]) -> Result<TelemetryConfig, TelemetryError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        TelemetryConfig::from_lookup("user-service", "1.2.3", |k| map.get(k).cloned())
    }

    #[test]
    fn spans_go_the_direct_way_unless_sdk_or_compression_says_otherwise() {
        let kind = |vars: &[(&str, &str)]| resolve(vars).unwrap().span_exporter;
        assert_eq!(kind(&[]), SpanExporterKind::Direct);
        assert_eq!(
            kind(&[(SPAN_EXPORTER_VAR, "direct")]),
            SpanExporterKind::Direct
        );
        assert_eq!(kind(&[(SPAN_EXPORTER_VAR, " ")]), SpanExporterKind::Direct);
        assert_eq!(kind(&[(SPAN_EXPORTER_VAR, " SDK ")]), SpanExporterKind::Sdk);
        for var in [
            "OTEL_EXPORTER_OTLP_COMPRESSION",
            "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
        ] {
            assert_eq!(kind(&[(var, "gzip")]), SpanExporterKind::Sdk, "{var}");
            assert_eq!(kind(&[(var, "")]), SpanExporterKind::Direct, "{var} empty");
        }
        let error = resolve(&[(SPAN_EXPORTER_VAR, "stock")])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(SPAN_EXPORTER_VAR) && error.contains("direct or sdk"),
            "{error}"
        );
    }

    #[test]
    fn defaults_are_grpc_on_localhost_parent_based() {
        let c = resolve(&[]).unwrap();
        assert_eq!(c.protocol, OtlpProtocol::Grpc);
        assert_eq!(c.endpoint, "http://localhost:4317");
        assert_eq!(c.sampler, SamplerConfig::ParentBasedAlwaysOn);
        assert_eq!(c.service_name, "user-service");
        assert_eq!(c.default_service_name.as_deref(), Some("user-service"));
        assert!(!c.sdk_disabled);
        assert_eq!(c.schedule_delay, DEFAULT_SCHEDULE_DELAY);
        assert_eq!(c.service_version, "1.2.3");
        assert!(!c.span_source, "code.*, thread.* and target are opt-in");
        assert_eq!(
            c.span_export,
            SpanExportConfig {
                max_queue_size: DEFAULT_MAX_QUEUE_SIZE,
                max_export_batch_size: DEFAULT_MAX_EXPORT_BATCH_SIZE,
                export_timeout: DEFAULT_EXPORT_TIMEOUT,
                otlp_timeout: DEFAULT_OTLP_TIMEOUT,
            }
        );
    }

    #[test]
    fn the_default_queue_holds_a_30_s_outage_at_100_rps() {
        let spans_per_request = 7;
        assert!(DEFAULT_MAX_QUEUE_SIZE >= spans_per_request * 100 * 30 * 3 / 2);
    }

    #[test]
    fn span_export_variables_are_read() {
        let c = resolve(&[
            ("OTEL_BSP_MAX_QUEUE_SIZE", "100"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", " 10 "),
            ("OTEL_BSP_EXPORT_TIMEOUT", "2500"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "700"),
        ])
        .unwrap();
        assert_eq!(
            c.span_export,
            SpanExportConfig {
                max_queue_size: 100,
                max_export_batch_size: 10,
                export_timeout: Duration::from_millis(2500),
                otlp_timeout: Duration::from_millis(700),
            }
        );
    }

    #[test]
    fn a_small_queue_takes_the_default_batch_down_with_it() {
        let c = resolve(&[("OTEL_BSP_MAX_QUEUE_SIZE", "50")]).unwrap();
        assert_eq!(c.span_export.max_export_batch_size, 50);
    }

    #[test]
    fn the_traces_timeout_wins_over_the_generic_one() {
        let c = resolve(&[
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "700"),
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "300"),
        ])
        .unwrap();
        assert_eq!(c.span_export.otlp_timeout, Duration::from_millis(300));
    }

    #[test]
    fn span_source_is_a_strict_switch() {
        assert!(resolve(&[(SPAN_SOURCE_VAR, "true")]).unwrap().span_source);
        assert!(resolve(&[(SPAN_SOURCE_VAR, "True")]).unwrap().span_source);
        assert!(!resolve(&[(SPAN_SOURCE_VAR, "false")]).unwrap().span_source);
        for bad in ["1", "yes", "on"] {
            let err = resolve(&[(SPAN_SOURCE_VAR, bad)]).unwrap_err().to_string();
            assert!(err.starts_with(SPAN_SOURCE_VAR), "{err}");
        }
    }

    #[test]
    fn service_name_from_env_wins_and_is_not_forced_in_code() {
        let c = resolve(&[("OTEL_SERVICE_NAME", "users-eu")]).unwrap();
        assert_eq!(c.service_name, "users-eu");
        assert_eq!(c.default_service_name, None);

        let c = resolve(&[(
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment=lab,service.name=u2",
        )])
        .unwrap();
        assert_eq!(c.service_name, "u2");
        assert_eq!(c.default_service_name, None);
    }

    #[test]
    fn http_protocol_appends_signal_path_to_generic_endpoint_only() {
        let c = resolve(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
        ])
        .unwrap();
        assert_eq!(c.endpoint, "http://collector:4318/v1/traces");
        assert_eq!(
            resolve(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")])
                .unwrap()
                .endpoint,
            "http://localhost:4318/v1/traces"
        );

        let c = resolve(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://ignored:1"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://collector:9999/custom",
            ),
        ])
        .unwrap();
        assert_eq!(c.endpoint, "http://collector:9999/custom");
    }

    #[test]
    fn grpc_uses_the_generic_endpoint_as_is() {
        let c = resolve(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel-collector:4317")]).unwrap();
        assert_eq!(c.endpoint, "http://otel-collector:4317");
    }

    #[test]
    fn signal_specific_protocol_wins() {
        let c = resolve(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
        ])
        .unwrap();
        assert_eq!(c.protocol, OtlpProtocol::HttpProtobuf);
    }

    #[test]
    fn samplers_parse_with_ratio() {
        let c = resolve(&[
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
        ])
        .unwrap();
        assert_eq!(c.sampler, SamplerConfig::ParentBasedTraceIdRatio(0.25));
        let c = resolve(&[("OTEL_TRACES_SAMPLER", "always_off")]).unwrap();
        assert_eq!(c.sampler, SamplerConfig::AlwaysOff);
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (vars, var) in [
            (
                vec![("OTEL_TRACES_SAMPLER", "always-on")],
                "OTEL_TRACES_SAMPLER",
            ),
            (
                vec![
                    ("OTEL_TRACES_SAMPLER", "traceidratio"),
                    ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
                ],
                "OTEL_TRACES_SAMPLER_ARG",
            ),
            (
                vec![("OTEL_EXPORTER_OTLP_PROTOCOL", "udp")],
                "OTEL_EXPORTER_OTLP_PROTOCOL",
            ),
            (
                vec![("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")],
                "OTEL_EXPORTER_OTLP_PROTOCOL",
            ),
            (
                vec![("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317")],
                "OTEL_EXPORTER_OTLP_ENDPOINT",
            ),
            (
                vec![("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://c:4317")],
                "OTEL_EXPORTER_OTLP_ENDPOINT",
            ),
            (
                vec![
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://c:4317"),
                    ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem"),
                ],
                "OTEL_EXPORTER_OTLP_CERTIFICATE",
            ),
            (
                vec![
                    ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "https://c:4317"),
                    (
                        "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE",
                        "/nonexistent/ca.pem",
                    ),
                ],
                "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE",
            ),
            (
                vec![("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "bad name=1")],
                "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
            ),
            (
                vec![("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "5s")],
                "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
            ),
            (vec![("OTEL_SDK_DISABLED", "yes")], "OTEL_SDK_DISABLED"),
            (vec![(SPAN_SOURCE_VAR, "yes")], SPAN_SOURCE_VAR),
            (
                vec![("OTEL_BSP_SCHEDULE_DELAY", "1s")],
                "OTEL_BSP_SCHEDULE_DELAY",
            ),
            (
                vec![("OTEL_BSP_MAX_QUEUE_SIZE", "0")],
                "OTEL_BSP_MAX_QUEUE_SIZE",
            ),
            (
                vec![("OTEL_BSP_MAX_QUEUE_SIZE", "-1")],
                "OTEL_BSP_MAX_QUEUE_SIZE",
            ),
            (
                vec![("OTEL_BSP_MAX_QUEUE_SIZE", "32k")],
                "OTEL_BSP_MAX_QUEUE_SIZE",
            ),
            (
                vec![("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "0")],
                "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
            ),
            (
                vec![
                    ("OTEL_BSP_MAX_QUEUE_SIZE", "100"),
                    ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "101"),
                ],
                "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
            ),
            (
                vec![("OTEL_BSP_EXPORT_TIMEOUT", "30s")],
                "OTEL_BSP_EXPORT_TIMEOUT",
            ),
            (
                vec![("OTEL_BSP_EXPORT_TIMEOUT", "0")],
                "OTEL_BSP_EXPORT_TIMEOUT",
            ),
            (
                vec![("OTEL_EXPORTER_OTLP_TIMEOUT", "10s")],
                "OTEL_EXPORTER_OTLP_TIMEOUT",
            ),
            (
                vec![("OTEL_EXPORTER_OTLP_TIMEOUT", "0")],
                "OTEL_EXPORTER_OTLP_TIMEOUT",
            ),
            (
                vec![("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "1.5")],
                "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
            ),
            (
                vec![("OTEL_METRICS_EXPORTER", "prometheus")],
                "OTEL_METRICS_EXPORTER",
            ),
            (
                vec![("OTEL_METRICS_EXPORTER", "console")],
                "OTEL_METRICS_EXPORTER",
            ),
            (
                vec![("OTEL_METRIC_EXPORT_INTERVAL", "5s")],
                "OTEL_METRIC_EXPORT_INTERVAL",
            ),
            (
                vec![("OTEL_METRIC_EXPORT_INTERVAL", "0")],
                "OTEL_METRIC_EXPORT_INTERVAL",
            ),
            (
                vec![("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/json")],
                "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
            ),
            (
                vec![("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "collector:4317")],
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            ),
        ] {
            let err = resolve(&vars).unwrap_err();
            let msg = err.to_string();
            assert!(msg.starts_with(var), "{msg} should name {var}");
        }
    }

    #[test]
    fn metrics_default_to_otlp_beside_the_spans_every_five_seconds() {
        let c = resolve(&[]).unwrap();
        assert_eq!(
            c.metrics,
            MetricsConfig {
                exporter: MetricsExporterKind::Otlp,
                protocol: OtlpProtocol::Grpc,
                endpoint: "http://localhost:4317".into(),
                interval: Duration::from_secs(5),
                headers: http::HeaderMap::new(),
                timeout: DEFAULT_OTLP_TIMEOUT,
                tls: None,
            }
        );
        assert!(c.metrics.exports(c.sdk_disabled));
        let c = resolve(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")]).unwrap();
        assert_eq!(c.metrics.endpoint, "http://localhost:4318/v1/metrics");
    }

    #[test]
    fn metrics_follow_the_span_endpoint_rules_with_their_own_path() {
        let c = resolve(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
        ])
        .unwrap();
        assert_eq!(c.endpoint, "http://collector:4318/v1/traces");
        assert_eq!(c.metrics.endpoint, "http://collector:4318/v1/metrics");
        assert_eq!(c.metrics.protocol, OtlpProtocol::HttpProtobuf);

        // The signal-specific endpoint is used as is, and only for metrics.
        let c = resolve(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://m:9090/otlp"),
        ])
        .unwrap();
        assert_eq!(c.metrics.endpoint, "http://m:9090/otlp");
        assert_eq!(c.endpoint, "http://collector:4318/v1/traces");

        // The signal-specific protocol wins for metrics alone.
        let c = resolve(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
            ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/protobuf"),
        ])
        .unwrap();
        assert_eq!(c.protocol, OtlpProtocol::Grpc);
        assert_eq!(c.endpoint, "http://collector:4317");
        assert_eq!(c.metrics.protocol, OtlpProtocol::HttpProtobuf);
        assert_eq!(c.metrics.endpoint, "http://collector:4317/v1/metrics");
    }

    #[test]
    fn metrics_exporter_none_and_sdk_disabled_export_nothing() {
        let c = resolve(&[
            ("OTEL_METRICS_EXPORTER", "none"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "250"),
        ])
        .unwrap();
        assert_eq!(c.metrics.exporter, MetricsExporterKind::None);
        assert_eq!(c.metrics.interval, Duration::from_millis(250));
        assert!(!c.metrics.exports(false));
        let c = resolve(&[("OTEL_SDK_DISABLED", "true")]).unwrap();
        assert_eq!(c.metrics.exporter, MetricsExporterKind::Otlp);
        assert!(!c.metrics.exports(c.sdk_disabled));
    }

    #[test]
    fn sdk_disabled_is_case_insensitive() {
        assert!(
            resolve(&[("OTEL_SDK_DISABLED", "TRUE")])
                .unwrap()
                .sdk_disabled
        );
        assert!(
            !resolve(&[("OTEL_SDK_DISABLED", "false")])
                .unwrap()
                .sdk_disabled
        );
    }

    #[test]
    fn https_endpoints_read_the_tls_variables_and_http_ones_ignore_them() {
        // With http://, a certificate variable does not apply: not even read.
        let c = resolve(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem"),
        ])
        .unwrap();
        assert_eq!((c.tls, c.metrics.tls), (None, None));

        // With https:// and no certificate: the system's store, per signal.
        let c = resolve(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://gateway:4317")]).unwrap();
        assert_eq!(c.endpoint, "https://gateway:4317");
        let system = TlsConfig {
            ca: None,
            client: None,
        };
        assert_eq!(c.tls.as_ref(), Some(&system));
        assert_eq!(c.metrics.tls.as_ref(), Some(&system));

        // Only the signal whose endpoint is https:// reads them.
        let c = resolve(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
            (
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                "https://metrics:4317",
            ),
        ])
        .unwrap();
        assert_eq!(c.tls, None);
        assert_eq!(c.metrics.tls, Some(system));
    }

    #[test]
    fn headers_and_timeout_reach_the_metrics_with_their_own_variables_winning() {
        let c = resolve(&[
            ("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20t0ken"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "700"),
        ])
        .unwrap();
        assert_eq!(c.otlp_headers["authorization"], "Bearer t0ken");
        assert_eq!(c.metrics.headers["authorization"], "Bearer t0ken");
        assert_eq!(c.metrics.timeout, Duration::from_millis(700));
        let c = resolve(&[
            ("OTEL_EXPORTER_OTLP_HEADERS", "a=1"),
            ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "m=2"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "700"),
            ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "300"),
        ])
        .unwrap();
        assert_eq!(c.otlp_headers.len(), 1);
        assert_eq!(c.otlp_headers["a"], "1");
        assert_eq!(c.metrics.headers.len(), 1);
        assert_eq!(c.metrics.headers["m"], "2");
        assert_eq!(c.metrics.timeout, Duration::from_millis(300));
    }

    #[test]
    fn otel_propagators_is_read_strictly() {
        let both = Propagators::default();
        assert_eq!(Propagators::parse("tracecontext,baggage").unwrap(), both);
        assert_eq!(
            Propagators::parse(" Baggage , TraceContext ").unwrap(),
            both
        );
        assert_eq!(
            Propagators::parse("baggage").unwrap(),
            Propagators {
                trace_context: false,
                baggage: true
            }
        );
        assert_eq!(
            Propagators::parse("none").unwrap(),
            Propagators {
                trace_context: false,
                baggage: false
            }
        );
        for (value, says) in [
            ("b3", "b3 is not built into latency-lab"),
            ("tracecontext,xray", "xray is not built into latency-lab"),
            ("w3c", "unknown propagator \"w3c\""),
            ("none,baggage", "none switches propagation off"),
        ] {
            let error = Propagators::parse(value).unwrap_err().to_string();
            assert!(error.contains("OTEL_PROPAGATORS"), "{error}");
            assert!(error.contains(says), "{value}: {error}");
        }
    }
}
