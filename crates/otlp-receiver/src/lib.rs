//! An in-process OTLP trace and metrics receiver.
//!
//! latency-lab's integration tests run the services as child processes and need to see the
//! spans and metrics those processes export, without an external collector or Jaeger to
//! install and poll. This crate is that collector: [`start`] binds OTLP/gRPC and OTLP/HTTP
//! listeners and puts every received span into a [`SpanStore`] and every metric point into a
//! [`MetricStore`] (the latest point per series), both of which tests can wait on. The
//! all-in-one lab binary embeds the same receiver as its trace and metric store.
//! [`RunningReceiver::stop`] and [`StoppedReceiver::restart`] take it down and bring it back
//! on the same ports with the same stores: a collector outage, for the export tests.
//!
//! ```no_run
//! # async fn demo() -> Result<(), otlp_receiver::ReceiverError> {
//! use std::time::Duration;
//! let receiver = otlp_receiver::start(otlp_receiver::ReceiverConfig::default()).await?;
//! // point a service at receiver.grpc_endpoint() or receiver.http_endpoint(), then:
//! let spans = receiver
//!     .store()
//!     .wait_for(Duration::from_secs(5), |spans| spans.len() >= 2)
//!     .await?;
//! # drop(spans);
//! receiver.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod error;
pub mod forward;
mod grpc;
mod http;
mod metric_model;
mod metric_store;
mod model;
mod store;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use error::ReceiverError;
pub use forward::ForwardStats;
pub use http::{METRICS_PATH, TRACES_PATH};
pub use metric_model::{
    metrics_from_request, HistogramPoint, MetricOrigin, NumberKind, NumberPoint, NumberValue,
    ReceivedMetrics, Temporality,
};
pub use metric_store::{MetricStore, MAX_METRIC_SERIES};
pub use model::{
    spans_from_request, AttrValue, CollectedSpan, SpanEvent, SpanKind, SpanLink, StatusCode,
    UNKNOWN_SERVICE,
};
pub use store::SpanStore;

/// Largest accepted export, on either transport (after decompression). Generous, so that a
/// big batch in a load scenario is never refused, yet bounded.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// How long [`RunningReceiver::shutdown`] lets in-flight exports finish before it stops
/// waiting; exporters keep idle connections open, which must not stall a test's teardown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Where to listen and how much to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverConfig {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    /// Upper bound on stored traces; see [`SpanStore::new`].
    pub max_traces: usize,
    /// Send every export on to this OTLP/HTTP base URL as well ([`forward`]).
    pub forward_to: Option<String>,
}

/// Loopback with OS-chosen ports: parallel tests never collide and nothing is exposed.
impl Default for ReceiverConfig {
    fn default() -> Self {
        let loopback = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
        Self {
            grpc_addr: loopback,
            http_addr: loopback,
            max_traces: 1000,
            forward_to: None,
        }
    }
}

/// Binds both listeners, then serves them in background tasks.
///
/// Binding happens before this returns, so the actual ports are known and connections are
/// accepted (queued by the kernel) from that moment: a child process started right after
/// cannot lose its first export to a race.
pub async fn start(config: ReceiverConfig) -> Result<RunningReceiver, ReceiverError> {
    let forward = config
        .forward_to
        .as_deref()
        .map(forward::Forwarder::start)
        .transpose()?;
    let stores = Stores {
        spans: SpanStore::new(config.max_traces),
        metrics: MetricStore::new(MAX_METRIC_SERIES),
        forward,
    };
    serve(config.grpc_addr, config.http_addr, stores).await
}

/// What outlives a stop: the received spans and metrics.
#[derive(Debug, Clone)]
struct Stores {
    spans: SpanStore,
    metrics: MetricStore,
    forward: Option<forward::Forwarder>,
}

/// Binds both addresses and serves them into `stores`.
async fn serve(
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    stores: Stores,
) -> Result<RunningReceiver, ReceiverError> {
    let grpc_listener = bind(grpc_addr).await?;
    let http_listener = bind(http_addr).await?;
    let grpc_addr = local_addr(&grpc_listener, grpc_addr)?;
    let http_addr = local_addr(&http_listener, http_addr)?;

    let Stores {
        spans: store,
        metrics,
        forward,
    } = stores;
    let (stop_tx, stop_rx) = watch::channel(false);

    let grpc_task = tokio::spawn(grpc::serve(
        grpc_listener,
        store.clone(),
        metrics.clone(),
        forward.clone(),
        stopped(stop_rx.clone()),
    ));
    let router = http::router(store.clone(), metrics.clone(), forward.clone());
    let http_task = tokio::spawn(async move {
        axum::serve(http_listener, router)
            .with_graceful_shutdown(stopped(stop_rx))
            .await
    });

    Ok(RunningReceiver {
        store,
        metrics,
        forward,
        grpc_addr,
        http_addr,
        stop: stop_tx,
        grpc_task: Some(grpc_task),
        http_task: Some(http_task),
    })
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, ReceiverError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ReceiverError::Bind { addr, source })
}

fn local_addr(listener: &TcpListener, requested: SocketAddr) -> Result<SocketAddr, ReceiverError> {
    listener.local_addr().map_err(|source| ReceiverError::Bind {
        addr: requested,
        source,
    })
}

/// Resolves once a stop is requested or the [`RunningReceiver`] is gone.
async fn stopped(mut stop: watch::Receiver<bool>) {
    // An error means the sender was dropped: stop as well.
    let _ = stop.wait_for(|stop| *stop).await;
}

/// A receiver serving in the background. Dropping it also stops both servers (without
/// waiting for them); call [`shutdown`](Self::shutdown) to wait.
#[derive(Debug)]
pub struct RunningReceiver {
    store: SpanStore,
    metrics: MetricStore,
    forward: Option<forward::Forwarder>,
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    stop: watch::Sender<bool>,
    grpc_task: Option<JoinHandle<Result<(), tonic::transport::Error>>>,
    http_task: Option<JoinHandle<std::io::Result<()>>>,
}

impl RunningReceiver {
    /// The store every received span goes to; clone it to keep it past the receiver.
    pub fn store(&self) -> &SpanStore {
        &self.store
    }

    /// The store every received metric point goes to (the latest point of each series).
    pub fn metrics(&self) -> &MetricStore {
        &self.metrics
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Where exports are forwarded (`forward_to`, as used) and what became
    /// of them so far; `None` without forwarding.
    pub fn forwarded(&self) -> Option<(&str, ForwardStats)> {
        self.forward.as_ref().map(|f| (f.upstream(), f.stats()))
    }

    /// Waits, at most `limit`, until every export received so far has been
    /// forwarded (or given up); whether it got there. True without
    /// forwarding.
    pub async fn flush_forwarding(&self, limit: Duration) -> bool {
        match &self.forward {
            Some(forward) => forward.flush(limit).await,
            None => true,
        }
    }

    /// `http://HOST:PORT` for an OTLP/gRPC exporter.
    pub fn grpc_endpoint(&self) -> String {
        endpoint(self.grpc_addr)
    }

    /// `http://HOST:PORT`, the OTLP/HTTP base endpoint: exporters configured through
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` append [`TRACES_PATH`] and [`METRICS_PATH`] themselves.
    pub fn http_endpoint(&self) -> String {
        endpoint(self.http_addr)
    }

    /// Stops accepting, lets in-flight exports finish (up to a few seconds), and waits for
    /// both servers to end. Server errors are logged, not returned: at teardown nobody can
    /// act on them.
    pub async fn shutdown(self) {
        self.stop().await;
    }

    /// Stops both servers as [`shutdown`](Self::shutdown) does, but keeps the stores and
    /// the port numbers, so that [`StoppedReceiver::restart`] serves the same addresses into
    /// the same stores: a collector outage, as exporters see one (connections refused).
    pub async fn stop(mut self) -> StoppedReceiver {
        self.stop_servers().await;
        StoppedReceiver {
            stores: Stores {
                spans: self.store.clone(),
                metrics: self.metrics.clone(),
                forward: self.forward.clone(),
            },
            grpc_addr: self.grpc_addr,
            http_addr: self.http_addr,
        }
    }

    async fn stop_servers(&mut self) {
        self.stop.send_replace(true);
        if let Some(task) = self.grpc_task.take() {
            match finish(task).await {
                Some(Ok(())) | None => {}
                Some(Err(error)) => tracing::warn!(%error, "OTLP gRPC server ended with an error"),
            }
        }
        if let Some(task) = self.http_task.take() {
            match finish(task).await {
                Some(Ok(())) | None => {}
                Some(Err(error)) => tracing::warn!(%error, "OTLP HTTP server ended with an error"),
            }
        }
    }
}

/// A receiver stopped by [`RunningReceiver::stop`]: nothing listens on its ports, and its
/// stores keep what had arrived.
#[derive(Debug)]
pub struct StoppedReceiver {
    stores: Stores,
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
}

impl StoppedReceiver {
    /// The store of the stopped receiver (and of the restarted one).
    pub fn store(&self) -> &SpanStore {
        &self.stores.spans
    }

    /// The metric store of the stopped receiver (and of the restarted one).
    pub fn metrics(&self) -> &MetricStore {
        &self.stores.metrics
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Binds the same two ports again and serves into the same stores. Fails with
    /// [`ReceiverError::Bind`] if another process took a port meanwhile.
    pub async fn restart(self) -> Result<RunningReceiver, ReceiverError> {
        serve(self.grpc_addr, self.http_addr, self.stores).await
    }
}

impl Drop for RunningReceiver {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

/// Awaits a server task within the grace period, aborting it past that. `None` when the task
/// did not end normally (aborted, timed out or panicked).
async fn finish<T: Send + 'static>(mut task: JoinHandle<T>) -> Option<T> {
    match tokio::time::timeout(SHUTDOWN_GRACE, &mut task).await {
        Ok(Ok(result)) => Some(result),
        Ok(Err(join_error)) => {
            tracing::warn!(%join_error, "OTLP receiver task failed");
            None
        }
        Err(_) => {
            tracing::warn!("OTLP receiver did not stop within {SHUTDOWN_GRACE:?}; aborting it");
            task.abort();
            None
        }
    }
}

/// A URL clients can dial: a wildcard bind address is replaced with loopback of the same
/// family.
fn endpoint(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}
