//! The metric exporter with its failures logged: one line when export
//! starts failing (with the reason), one when it works again.
//!
//! The SDK's periodic reader hands a failed export's error to its internal
//! log only, so a collector that refuses the metrics (an untrusted
//! certificate, a wrong token) would go unnoticed. No retry is added: the
//! next interval's export carries the whole cumulative count again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::Temporality;

#[derive(Debug)]
pub(crate) struct Reported<E> {
    inner: E,
    failing: AtomicBool,
}

impl<E> Reported<E> {
    pub(crate) fn new(inner: E) -> Self {
        Self {
            inner,
            failing: AtomicBool::new(false),
        }
    }

    /// Logs a change between working and failing; `true` when one was logged.
    fn note(&self, result: &OTelSdkResult) -> bool {
        let was_failing = self.failing.swap(result.is_err(), Ordering::Relaxed);
        match result {
            Err(error) if !was_failing => {
                let error = crate::tls::explain(error.to_string());
                tracing::warn!(
                    %error,
                    "metric export failing: retried at every interval (each export carries the \
                     whole count, so nothing is lost once it works)"
                );
                true
            }
            Ok(()) if was_failing => {
                tracing::info!("metric export works again");
                true
            }
            _ => false,
        }
    }
}

impl<E: PushMetricExporter> PushMetricExporter for Reported<E> {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let result = self.inner.export(metrics).await;
        self.note(&result);
        result
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> Temporality {
        self.inner.temporality()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_sdk::error::OTelSdkError;

    #[test]
    fn one_line_when_failing_starts_and_one_when_it_ends() {
        let reported = Reported::new(());
        let failed: OTelSdkResult = Err(OTelSdkError::InternalFailure("refused".into()));
        assert!(!reported.note(&Ok(())), "working: nothing to say");
        assert!(reported.note(&failed), "failing starts");
        assert!(!reported.note(&failed), "still failing: said already");
        assert!(reported.note(&Ok(())), "works again");
        assert!(!reported.note(&Ok(())));
    }
}
