//! Flushing spans and metrics on exit.
//!
//! The batch processor holds spans in memory for up to the schedule delay. A
//! process that exits without shutting the provider down loses exactly the
//! spans of its last requests — the ones people look for after a crash or a
//! `docker compose down`. The periodic metric reader likewise holds the
//! counts since its last export; shutting it down exports them once more.

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;

/// The two providers, shut down together: spans first, then metrics.
struct Providers {
    tracer: SdkTracerProvider,
    meter: SdkMeterProvider,
}

impl Providers {
    fn shutdown(self) -> OTelSdkResult {
        let spans = self.tracer.shutdown();
        let metrics = self.meter.shutdown();
        spans.and(metrics)
    }
}

/// Keeps the tracer and meter providers alive and shuts them down (flushing
/// every pending span and a last export of the metrics) when
/// [`TelemetryGuard::shutdown`] is awaited.
#[must_use = "dropping the guard early stops span and metric export"]
pub struct TelemetryGuard {
    provider: Option<Providers>,
    span_export: Option<crate::SpanExportStats>,
}

impl TelemetryGuard {
    pub(crate) fn new(tracer: SdkTracerProvider, meter: SdkMeterProvider) -> Self {
        Self {
            provider: Some(Providers { tracer, meter }),
            span_export: None,
        }
    }

    pub(crate) fn with_span_export(mut self, stats: Option<crate::SpanExportStats>) -> Self {
        self.span_export = stats;
        self
    }

    /// The span export queue's counts (exported, dropped, …); `None` when
    /// spans are not exported (`OTEL_SDK_DISABLED=true`).
    pub fn span_export_stats(&self) -> Option<&crate::SpanExportStats> {
        self.span_export.as_ref()
    }

    /// Flushes pending spans and metrics and stops the exporters.
    ///
    /// Runs the blocking SDK shutdown on Tokio's blocking pool: called on a
    /// runtime thread it would starve the gRPC exporter of the very runtime
    /// it needs, time out and lose the spans.
    pub async fn shutdown(mut self) {
        if let Some(provider) = self.provider.take() {
            let outcome = tokio::task::spawn_blocking(move || provider.shutdown()).await;
            match outcome {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("telemetry: shutdown did not complete cleanly: {e}"),
                Err(e) => eprintln!("telemetry: shutdown task failed: {e}"),
            }
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        let Some(provider) = self.provider.take() else {
            return;
        };
        // Best effort when `shutdown` was not awaited (an early `?` return).
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
                let _ = tokio::task::block_in_place(|| provider.shutdown());
            }
            Ok(_) => {
                // A current-thread runtime cannot be blocked while the exporter
                // needs it; shut down on a helper thread without waiting.
                std::thread::spawn(move || {
                    let _ = provider.shutdown();
                });
            }
            Err(_) => {
                let _ = provider.shutdown();
            }
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM — the two ways a terminal user and a
/// container runtime ask a service to stop.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
