//! Span export that survives a collector outage.
//!
//! Why not the SDK's `BatchSpanProcessor` (0.32): it drops a batch whose
//! export failed, without retry (a 40 s collector outage lost 99.5 % of its
//! spans); it reads `OTEL_BSP_EXPORT_TIMEOUT` but does not apply it; its
//! dropped count is private and logged only at the first drop and at
//! shutdown; and the OTLP exporter's retries exist only behind experimental
//! features that need a Tokio runtime in the export path. So this module is
//! a small processor of our own, doing only what the guarantee needs:
//!
//! - a bounded queue (`OTEL_BSP_MAX_QUEUE_SIZE`, default
//!   [`DEFAULT_MAX_QUEUE_SIZE`](crate::config::DEFAULT_MAX_QUEUE_SIZE),
//!   sized for 30 s at 100 requests/s); beyond it a span is dropped and
//!   counted exactly ([`SpanExportStats`]);
//! - one thread that batches (`OTEL_BSP_SCHEDULE_DELAY`,
//!   `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`), exports (spans encoded as they
//!   ended, `encode.rs`, sent by `grpc.rs` or `http.rs`; or through the
//!   OpenTelemetry OTLP exporter) with each attempt bounded by
//!   `OTEL_BSP_EXPORT_TIMEOUT`, and retries a
//!   failed batch with capped exponential [`Backoff`] while new spans keep
//!   queuing behind it;
//! - few log lines (`report.rs`): one when export starts failing, one every
//!   few seconds at most while it fails or drops, one when it recovers;
//! - `force_flush`, and a `shutdown` that flushes within its deadline and
//!   reports what it had to abandon;
//! - the counts as `otel.sdk.processor.span.*` metrics ([`register_metrics`]).

mod backoff;
mod encode;
pub(crate) mod grpc;
pub(crate) mod headers;
pub(crate) mod http;
mod metrics;
mod processor;
pub(crate) mod report;
mod stats;
mod worker;

use std::time::Duration;

pub use backoff::Backoff;
pub use metrics::register_metrics;
pub use processor::RetryingBatchProcessor;
pub use stats::SpanExportStats;
pub use worker::Queued;

use crate::config::TelemetryConfig;

/// How often at most each kind of report line is repeated.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(5);

/// Everything the processor needs to know, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportSettings {
    pub max_queue_size: usize,
    pub max_export_batch_size: usize,
    pub scheduled_delay: Duration,
    pub export_timeout: Duration,
    pub backoff: Backoff,
    pub report_interval: Duration,
}

impl ExportSettings {
    /// From the resolved `OTEL_*` configuration.
    pub fn from_config(config: &TelemetryConfig) -> Self {
        let export = &config.span_export;
        Self {
            max_queue_size: export.max_queue_size,
            max_export_batch_size: export.max_export_batch_size.min(export.max_queue_size),
            scheduled_delay: config.schedule_delay,
            export_timeout: export.export_timeout,
            backoff: Backoff::DEFAULT,
            report_interval: REPORT_INTERVAL,
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod sink_tests;
