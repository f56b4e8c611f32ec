//! Forwarding: every export the receiver takes in, sent on to an upstream
//! OTLP/HTTP endpoint (a collector, Jaeger), so the lab can sit in front of
//! the full stack.
//!
//! What goes upstream is the OTLP request as it was decoded — the wire
//! message, with its resources, scopes, links and dropped counts — encoded
//! again as protobuf, never rebuilt from the lab's own span model (which
//! keeps only what a waterfall needs). A protobuf export therefore arrives
//! protobuf-equal; a JSON or gRPC one arrives as the same message.
//!
//! Forwarding never slows the receiver down: exports queue in a bounded
//! channel and one task sends them in order. When the upstream is slow or
//! down, a batch is retried a few times and then counted as failed; when
//! the queue is full, the newest batch is counted as dropped. The counts
//! are [`ForwardStats`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use tokio::sync::mpsc;

use crate::ReceiverError;

/// Batches waiting to go upstream; past this a new one is dropped.
const QUEUE: usize = 512;
/// One attempt's limit.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Waits between attempts: three attempts in all.
const BACKOFF: [Duration; 2] = [Duration::from_millis(200), Duration::from_secs(1)];

/// The signal of a batch, and its OTLP/HTTP path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    Traces,
    Metrics,
}

impl Signal {
    fn path(self) -> &'static str {
        match self {
            Signal::Traces => crate::TRACES_PATH,
            Signal::Metrics => crate::METRICS_PATH,
        }
    }
}

/// What became of the forwarded batches so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ForwardStats {
    /// Accepted upstream (2xx).
    pub sent: u64,
    /// Refused or unreachable after every attempt.
    pub failed: u64,
    /// Not queued: the queue was full (the upstream cannot keep up).
    pub dropped: u64,
}

#[derive(Debug, Default)]
struct Counts {
    /// Queued or being sent.
    pending: AtomicU64,
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

/// The sending side, shared by both servers.
#[derive(Debug, Clone)]
pub(crate) struct Forwarder {
    queue: mpsc::Sender<(Signal, Vec<u8>)>,
    counts: Arc<Counts>,
    upstream: String,
}

impl Forwarder {
    /// Starts the sending task for `upstream`, a plain-http OTLP/HTTP base
    /// URL such as `http://localhost:4318` (`/v1/traces` and `/v1/metrics` are
    /// added, as `OTEL_EXPORTER_OTLP_ENDPOINT` does).
    pub(crate) fn start(upstream: &str) -> Result<Self, ReceiverError> {
        let base = reqwest::Url::parse(upstream)
            .ok()
            .filter(|u| u.scheme() == "http" && u.has_host())
            .ok_or_else(|| ReceiverError::Forward {
                url: upstream.to_owned(),
                reason: "give an OTLP/HTTP base URL such as http://localhost:4318 (plain http: no TLS is built in)".to_owned(),
            })?;
        let client = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .build()
            .map_err(|e| ReceiverError::Forward {
                url: upstream.to_owned(),
                reason: e.to_string(),
            })?;
        let (queue, batches) = mpsc::channel(QUEUE);
        let counts = Arc::new(Counts::default());
        let base = base.as_str().trim_end_matches('/').to_owned();
        tokio::spawn(send_all(client, base.clone(), batches, counts.clone()));
        Ok(Forwarder {
            queue,
            counts,
            upstream: base,
        })
    }

    /// Queues `message` for upstream; never waits.
    pub(crate) fn offer(&self, signal: Signal, message: &impl Message) {
        self.counts.pending.fetch_add(1, Ordering::SeqCst);
        if self
            .queue
            .try_send((signal, message.encode_to_vec()))
            .is_err()
        {
            self.counts.pending.fetch_sub(1, Ordering::SeqCst);
            self.counts.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits until every queued batch has been sent or given up, for at
    /// most `limit`; whether it got there.
    pub(crate) async fn flush(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while self.counts.pending.load(Ordering::SeqCst) > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    pub(crate) fn stats(&self) -> ForwardStats {
        ForwardStats {
            sent: self.counts.sent.load(Ordering::Relaxed),
            failed: self.counts.failed.load(Ordering::Relaxed),
            dropped: self.counts.dropped.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn upstream(&self) -> &str {
        &self.upstream
    }
}

/// Sends each batch in order until every sender is gone.
async fn send_all(
    client: reqwest::Client,
    base: String,
    mut batches: mpsc::Receiver<(Signal, Vec<u8>)>,
    counts: Arc<Counts>,
) {
    while let Some((signal, body)) = batches.recv().await {
        let url = format!("{base}{}", signal.path());
        let mut attempt = 0;
        loop {
            match send(&client, &url, body.clone()).await {
                Ok(()) => {
                    counts.sent.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Err(reason) if attempt < BACKOFF.len() => {
                    tracing::debug!(%url, %reason, "forwarding failed; retrying");
                    tokio::time::sleep(BACKOFF[attempt]).await;
                    attempt += 1;
                }
                Err(reason) => {
                    tracing::warn!(%url, %reason, "forwarding failed; batch given up");
                    counts.failed.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }
        counts.pending.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn send(client: &reqwest::Client, url: &str, body: Vec<u8>) -> Result<(), String> {
    let response = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {}", response.status()))
    }
}
