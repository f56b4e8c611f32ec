use thiserror::Error;

/// Everything that can go wrong while setting up telemetry.
///
/// Configuration mistakes are reported at start-up with the offending
/// variable and value, rather than being silently replaced by a default:
/// a demo that quietly exports nowhere is the most common tracing complaint.
#[derive(Debug, Error)]
pub enum TelemetryError {
    #[error("{var}={value:?} is not valid: {reason}")]
    InvalidEnv {
        var: &'static str,
        value: String,
        reason: String,
    },
    #[error("could not build an OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("could not install the tracing subscriber (was telemetry initialised twice?): {0}")]
    Subscriber(#[from] tracing_subscriber::util::TryInitError),
    #[error("could not build the HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}
