//! The crate's one error type.

use std::net::SocketAddr;
use std::time::Duration;

use crate::model::CollectedSpan;

/// Errors a caller of this crate can act on.
#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    /// A listener could not be bound, typically because the port is taken.
    #[error("cannot bind the OTLP receiver to {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },

    /// `--forward`'s URL cannot be used.
    #[error("cannot forward to {url:?}: {reason}")]
    Forward { url: String, reason: String },

    /// A wait on the store ended before its condition held. Carries what had arrived by then,
    /// so a failing test can print the spans it did get instead of only "timed out".
    #[error("timed out after {waited:?} waiting for spans; {} span(s) seen", spans.len())]
    Timeout {
        waited: Duration,
        spans: Vec<CollectedSpan>,
    },

    /// A wait on the metric store ended before its condition held; names the series that
    /// had arrived (none at all usually means the sender exports no metrics).
    #[error("timed out after {waited:?} waiting for metrics; {} series seen: {}", seen.len(), seen.join("; "))]
    MetricsTimeout { waited: Duration, seen: Vec<String> },
}
