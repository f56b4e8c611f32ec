//! Shared OpenTelemetry set-up for every latency-lab service.
//!
//! Every service calls [`init`] once at start-up and keeps the returned
//! [`TelemetryGuard`] alive until it exits. Keeping the set-up in one crate
//! means the three services cannot drift apart in how they name spans,
//! propagate context or flush on shutdown — a drift that would show up as
//! broken traces, which is exactly what this suite is meant to teach people
//! to avoid.
//!
//! The pieces:
//! - [`config`]: reads the standard `OTEL_*` environment variables.
//! - [`init`]: builds the tracer provider, exporter and `tracing` subscriber.
//! - [`export`]: the span export queue that retries through a collector
//!   outage and counts what it has to drop.
//! - [`metrics`]: the meter provider beside it, and the histogram boundaries
//!   of every duration (the HTTP instruments are recorded by [`server`] and
//!   [`client`]).
//! - [`resource`]: who sent a span (version, instance, host, process).
//! - [`propagation`]: W3C Trace Context + Baggage, on requests and in the
//!   `traceresponse` of answers: the only global state.
//! - [`server`]: an axum middleware that opens the SERVER span of a request.
//! - [`client`]: a reqwest client whose CLIENT spans inject the context.
//! - [`tls`]: `https://` endpoints (the CA to trust, mutual TLS).
//! - [`shutdown`]: the guard that flushes spans and metrics on exit and the
//!   signal future.

pub mod bounded_log;
pub mod client;
pub mod config;
mod error;
pub mod export;
pub mod init;
mod log_fields;
pub mod logging;
pub mod metrics;
pub mod propagation;
pub mod resource;
pub mod server;
pub mod shutdown;
pub mod tls;

pub use client::{
    traced_client, traced_client_with, traced_client_with_pool, HttpClient, PoolConfig,
};
pub use config::{
    MetricsConfig, MetricsExporterKind, OtlpProtocol, SamplerConfig, SpanExportConfig,
    SpanExporterKind, TelemetryConfig, SPAN_EXPORTER_VAR, SPAN_SOURCE_VAR,
};
pub use error::TelemetryError;
pub use export::SpanExportStats;
pub use init::init;
pub use logging::LogFormat;
pub use shutdown::{shutdown_signal, TelemetryGuard};

/// The current span's trace id as 32 lowercase hex digits, or `None` when no
/// valid trace is active (for example when the request is not sampled and no
/// parent was given).
pub fn current_trace_id() -> Option<String> {
    current_ids().map(|(trace_id, _)| trace_id)
}

/// The current span's OpenTelemetry `(trace_id, span_id)` in hex.
pub fn current_ids() -> Option<(String, String)> {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    let cx = tracing::Span::current().context();
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid()
        .then(|| (sc.trace_id().to_string(), sc.span_id().to_string()))
}
