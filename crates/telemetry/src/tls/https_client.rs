//! The OTLP/HTTP client for `https://` endpoints: hyper's client over
//! hyper-rustls, on a Tokio runtime of its own.
//!
//! Why a runtime of its own: span export runs on the processor's thread
//! and metric export on the SDK's periodic-reader thread, neither of which
//! is inside Tokio (an async client driven there panics with "no reactor
//! running"). reqwest's blocking client, used for `http://`, solves this the
//! same way (a thread with a runtime). Each request is spawned onto that
//! runtime and its answer awaited from the caller's thread, bounded by the
//! request timeout. The thread ends when the last clone of the client is
//! dropped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use opentelemetry_http::HttpError;
use tokio::sync::oneshot;

use super::TlsError;
use crate::export::grpc::chain;

/// A cheap-to-clone HTTPS client for OTLP requests.
#[derive(Clone)]
pub(crate) struct HttpsClient {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    runtime: tokio::runtime::Handle,
    timeout: Duration,
    /// Added to every request that does not set them itself (user agent,
    /// `OTEL_EXPORTER_OTLP_*HEADERS`).
    default_headers: HeaderMap,
    /// When set, failures are logged here, once per run of failures (the
    /// SDK's metric exporter keeps the reason to itself); span export
    /// reports its own.
    log_failures: Option<&'static str>,
    failing: AtomicBool,
    /// Dropped with the last clone: the runtime thread then returns.
    _stop: oneshot::Sender<()>,
}

impl std::fmt::Debug for HttpsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpsClient")
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl HttpsClient {
    /// `tls` must leave ALPN empty (HTTP/1.1 is negotiated here).
    /// `log_failures` names the signal when failures are to be logged here.
    pub(crate) fn new(
        tls: rustls::ClientConfig,
        timeout: Duration,
        default_headers: HeaderMap,
        log_failures: Option<&'static str>,
    ) -> Result<Self, TlsError> {
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("otlp-https".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = handle_tx.send(Err(e));
                        return;
                    }
                };
                let _ = handle_tx.send(Ok(runtime.handle().clone()));
                runtime.block_on(async move {
                    let _ = stopped.await;
                });
            })
            .map_err(TlsError::Thread)?;
        let runtime = handle_rx
            .recv()
            .map_err(|_| TlsError::Thread(std::io::Error::other("the thread ended at start")))?
            .map_err(TlsError::Thread)?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                runtime,
                timeout,
                default_headers,
                log_failures,
                failing: AtomicBool::new(false),
                _stop: stop,
            }),
        })
    }

    /// One request, its whole answer read, within the timeout. Any status
    /// is an answer; the error is a failure to get one, with its causes
    /// (say, `invalid peer certificate: UnknownIssuer`).
    pub(crate) async fn send(&self, request: Request<Bytes>) -> Result<Response<Bytes>, String> {
        let result = self.round_trip(request).await;
        if let Some(signal) = self.inner.log_failures {
            let was_failing = self.inner.failing.swap(result.is_err(), Ordering::Relaxed);
            match &result {
                Err(reason) if !was_failing => {
                    tracing::warn!(%reason, "OTLP {signal} export over HTTPS failed; retried at the next interval");
                }
                Ok(_) if was_failing => {
                    tracing::info!("OTLP {signal} export over HTTPS works again");
                }
                _ => {}
            }
        }
        result
    }

    async fn round_trip(&self, request: Request<Bytes>) -> Result<Response<Bytes>, String> {
        let inner = self.inner.clone();
        let (mut parts, body) = request.into_parts();
        for (name, value) in &inner.default_headers {
            if !parts.headers.contains_key(name) {
                parts.headers.insert(name, value.clone());
            }
        }
        let request = Request::from_parts(parts, Full::new(body));
        let timeout = inner.timeout;
        let runtime = inner.runtime.clone();
        let task = runtime.spawn(async move {
            let exchange = async {
                let response = inner
                    .client
                    .request(request)
                    .await
                    .map_err(|e| format!("export failed: {}", chain(&e)))?;
                let (parts, body) = response.into_parts();
                let body = body
                    .collect()
                    .await
                    .map_err(|e| format!("export failed reading the answer: {}", chain(&e)))?
                    .to_bytes();
                Ok(Response::from_parts(parts, body))
            };
            tokio::time::timeout(timeout, exchange)
                .await
                .unwrap_or_else(|_| {
                    Err(format!(
                        "export timed out after {} ms (OTEL_EXPORTER_OTLP_TIMEOUT)",
                        timeout.as_millis()
                    ))
                })
        });
        task.await
            .map_err(|e| format!("export failed: the HTTPS client's runtime stopped: {e}"))?
            .map_err(super::explain)
    }
}

/// For the SDK's OTLP/HTTP exporters (metrics, and spans with
/// `LATENCY_LAB_SPAN_EXPORTER=sdk`), which check the status themselves.
#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for HttpsClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        self.send(request).await.map_err(HttpError::from)
    }
}
