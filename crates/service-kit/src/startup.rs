//! Start-up and shutdown of a service process, from small pieces:
//! build the router, [`bind`] a listener, hand both to [`serve`] — the
//! layout of mini-redis, Zero To Production and the axum examples, so a
//! test can serve a router in process on port 0 exactly as a process does.
//!
//! [`run_until`] composes them for a process, and order matters: telemetry
//! first (so start-up errors are logged and the propagator is installed
//! before the first request), then build the router (it may create the
//! traced client), bind, announce readiness on stdout
//! ([`crate::readiness`]), serve until Ctrl-C/SIGTERM, drain for at most
//! the grace period ([`crate::server`]), and finally flush the spans and
//! metrics of the last requests — then the process exits 0, whatever its
//! clients do.

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use telemetry::{LogFormat, TelemetryConfig, TelemetryError};
use thiserror::Error;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::server::ServerLimits;

/// What a service tells [`run`] about itself.
pub struct Service {
    /// Default `service.name` (`OTEL_SERVICE_NAME` overrides it).
    pub name: &'static str,
    /// `service.version`: the service crate's own version, so pass
    /// `env!("CARGO_PKG_VERSION")` from the service's crate.
    pub version: &'static str,
    pub listen: SocketAddr,
    pub log_format: LogFormat,
    /// Timeouts, connection cap and shutdown grace of its server.
    pub limits: ServerLimits,
}

#[derive(Debug, Error)]
pub enum ServeError {
    #[error(transparent)]
    Telemetry(#[from] TelemetryError),
    /// The cause is the `source`, printed once by whoever prints the chain
    /// (`{:#}` in `latency-lab`, `Caused by:` from a plain `main`).
    #[error("cannot listen on {addr} (choose another address with --listen ADDR)")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot build the service: {0}")]
    Build(String),
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// Wraps a service's routes with the request-tracing middleware and adds the
/// untraced `GET /healthz` (health probes every few seconds would otherwise
/// bury the interesting traces in Jaeger), a JSON 404 fallback and a JSON
/// 405 for a known path asked with the wrong method. The server's request
/// timeout applies inside the traced part, so a request it stops has a
/// span with the 503.
pub fn finish(routes: Router) -> Router {
    routes
        .fallback(crate::error::route_not_found)
        .method_not_allowed_fallback(crate::error::method_not_allowed)
        .layer(axum::middleware::from_fn(
            crate::server::enforce_request_timeout,
        ))
        .layer(axum::middleware::from_fn(telemetry::server::trace_request))
        .merge(Router::new().route("/healthz", axum::routing::get(healthz)))
}

async fn healthz() -> &'static str {
    "ok"
}

/// Binds a listener (port 0 picks a free port: ask the listener which).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

/// Serves `router` on `listener` with the default [`ServerLimits`] until
/// `shutdown` completes, then drains the requests in flight for at most the
/// grace period. Handlers may extract the peer's address
/// (`ConnectInfo<SocketAddr>`). [`crate::server::serve_with`] takes the
/// limits.
pub async fn serve<F>(listener: TcpListener, router: Router, shutdown: F) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    crate::server::serve_with(listener, router, ServerLimits::DEFAULT, shutdown).await
}

/// Runs a service process until Ctrl-C or SIGTERM. `build` is called after
/// telemetry is initialised, because building the router may create the
/// traced client.
///
/// Once the socket is bound, prints the readiness line on stdout
/// ([`crate::readiness`]), which tests and the all-in-one runner wait for
/// (they start services on port 0).
pub async fn run<F>(service: Service, build: F) -> Result<(), ServeError>
where
    F: FnOnce() -> Result<Router, ServeError>,
{
    run_until(service, CancellationToken::new(), build).await
}

/// [`run`], plus a token that is cancelled when the shutdown signal
/// arrives (and that stops the server when cancelled by anyone else).
///
/// Graceful shutdown waits for the requests in flight, for at most the
/// grace period; a handler that may wait without bound (a mock's injected
/// hang) watches this token, so a hung request ends at once instead of
/// being cut off at the end of the grace period.
pub async fn run_until<F>(
    service: Service,
    shutdown: CancellationToken,
    build: F,
) -> Result<(), ServeError>
where
    F: FnOnce() -> Result<Router, ServeError>,
{
    let config = TelemetryConfig::from_env(service.name, service.version)?;
    let guard = telemetry::init(&config, service.log_format)?;

    let result = async {
        let router = build()?;
        let listener = bind(service.listen).await?;
        let local = listener.local_addr()?;
        crate::readiness::announce(&config.service_name, local);
        tracing::info!(address = %local, "{} ready", config.service_name);

        crate::server::serve_with(listener, router, service.limits, async move {
            tokio::select! {
                () = crate::signals::shutdown_signal() => shutdown.cancel(),
                () = shutdown.cancelled() => {}
            }
        })
        .await?;
        tracing::info!("{} stopping: flushing spans", config.service_name);
        Ok(())
    }
    .await;

    guard.shutdown().await;
    result
}
