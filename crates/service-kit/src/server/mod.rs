//! The accept loop every service runs: hyper's connection builders (HTTP/1
//! and HTTP/2) with the bounds axum's own `serve` does not keep —
//! header-read and idle timeouts, a cap on open connections, a request
//! timeout, JSON errors for oversized requests, and a shutdown that drains
//! for at most a grace period, whatever clients do.
//!
//! - [`limits`]: the bounds, [`ServerLimits`].
//! - [`activity`]: per-connection activity and the watchdog that closes
//!   stalled and idle connections.
//! - [`connection`]: one connection, from accept to close.
//! - [`request`]: each request on its way to the router.
//! - [`refuse`]: the 503 for a connection beyond the cap.
//!
//! The layout follows axum's `serve-with-hyper` example.

mod activity;
mod connection;
pub mod limits;
mod refuse;
pub mod request;

use std::future::Future;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

pub use limits::ServerLimits;
pub use request::{enforce_request_timeout, RequestTimeout};

use connection::{Shared, Tally};
use refuse::Refusal;

/// How long to wait, after the grace period, for the connections that
/// were cut off to finish closing (they only drop their sockets).
const ABORT_WAIT: Duration = Duration::from_secs(1);

/// Serves `router` on `listener` within `limits` until `shutdown`
/// completes; then takes no new connection, closes idle and stalled ones,
/// lets requests in flight finish for at most `limits.shutdown_grace`, and
/// closes what is left (logging how many requests that cut short). Handlers
/// may extract the peer's address (`ConnectInfo<SocketAddr>`).
///
/// Returns once every connection is closed: the caller then flushes
/// telemetry and exits.
pub async fn serve_with<F>(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: F,
) -> io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let max_connections = limits.max_connections.clamp(1, u32::MAX as usize);
    let places = Arc::new(Semaphore::new(max_connections));
    let shared = Arc::new(Shared {
        router,
        limits,
        builder: connection::builder(&limits),
        drain: CancellationToken::new(),
        abort: CancellationToken::new(),
        tally: Tally::default(),
    });
    let refusal = Refusal::new(max_connections);
    let mut errors = AcceptErrors::default();

    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                errors.recovered();
                match Arc::clone(&places).try_acquire_owned() {
                    Ok(place) => {
                        tokio::spawn(connection::serve(stream, peer, Arc::clone(&shared), place));
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "connection refused: at the connection limit");
                        refusal.refuse(stream);
                    }
                }
            }
            // The client gave up before we took it: nothing to do.
            Err(error) if is_connection_error(&error) => {}
            Err(error) => {
                let wait = errors.failed(&error);
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(wait) => {}
                }
            }
        }
    }

    drop(listener);
    let open = max_connections - places.available_permits();
    tracing::info!(open, "shutting down: draining connections");
    shared.drain.cancel();
    let all_closed = Arc::clone(&places).acquire_many_owned(max_connections as u32);
    tokio::pin!(all_closed);
    if tokio::time::timeout(limits.shutdown_grace, all_closed.as_mut())
        .await
        .is_err()
    {
        shared.abort.cancel();
        let _ = tokio::time::timeout(ABORT_WAIT, all_closed).await;
    }
    report(&shared.tally, limits.shutdown_grace);
    Ok(())
}

/// One line for what the shutdown cut short.
fn report(tally: &Tally, grace: Duration) {
    let stalled = tally.stalled.load(Ordering::Relaxed);
    if stalled > 0 {
        tracing::info!(
            connections = stalled,
            "closed {stalled} stalled connections (part of a request head, or an HTTP/2 preface and no request)"
        );
    }
    let connections = tally.aborted_connections.load(Ordering::Relaxed);
    let requests = tally.aborted_requests.load(Ordering::Relaxed);
    if connections > 0 {
        tracing::warn!(
            connections,
            requests,
            "the shutdown grace period ({}) ended: closed {connections} connections with {requests} requests in flight",
            humantime::format_duration(grace)
        );
    }
}

/// Errors of one connection that accept(2) reports, not of the listener.
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

/// Accept failures of the listener itself — above all `EMFILE`, out of
/// file descriptors: retried with a growing pause (a failing accept
/// returns at once, so retrying without one spins), and logged at most
/// every [`AcceptErrors::LOG_EVERY`] with the count since the last line.
#[derive(Default)]
struct AcceptErrors {
    failures: u64,
    unlogged: u64,
    last_logged: Option<Instant>,
    pause: Duration,
}

impl AcceptErrors {
    const FIRST_PAUSE: Duration = Duration::from_millis(5);
    const MAX_PAUSE: Duration = Duration::from_secs(1);
    const LOG_EVERY: Duration = Duration::from_secs(10);

    /// Counts a failure; how long to pause before the next accept.
    fn failed(&mut self, error: &io::Error) -> Duration {
        self.failures += 1;
        self.unlogged += 1;
        if self
            .last_logged
            .is_none_or(|at| at.elapsed() >= Self::LOG_EVERY)
        {
            tracing::error!(
                %error,
                failures = self.unlogged,
                "cannot accept connections ({} failures since the last such line); retrying with a pause of up to {}",
                self.unlogged,
                humantime::format_duration(Self::MAX_PAUSE)
            );
            self.unlogged = 0;
            self.last_logged = Some(Instant::now());
        }
        self.pause = (self.pause * 2).clamp(Self::FIRST_PAUSE, Self::MAX_PAUSE);
        self.pause
    }

    /// An accept succeeded: say so once if it had been failing.
    fn recovered(&mut self) {
        if self.failures > 0 {
            tracing::info!(
                failures = self.failures,
                "accepting connections again after {} failures",
                self.failures
            );
            *self = Self::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_failures_pause_longer_each_time_up_to_a_second_then_reset() {
        let mut errors = AcceptErrors::default();
        let emfile = io::Error::from_raw_os_error(libc::EMFILE);
        let pauses: Vec<Duration> = (0..12).map(|_| errors.failed(&emfile)).collect();
        assert_eq!(pauses[0], Duration::from_millis(5));
        assert_eq!(pauses[1], Duration::from_millis(10));
        assert!(pauses.windows(2).all(|w| w[0] <= w[1]), "{pauses:?}");
        assert_eq!(*pauses.last().unwrap(), Duration::from_secs(1));
        // Logged once: the rest are counted for the next line.
        assert_eq!(errors.unlogged, 11);
        errors.recovered();
        assert_eq!(errors.failed(&emfile), Duration::from_millis(5));
    }

    #[test]
    fn a_client_that_gave_up_is_not_a_listener_failure() {
        assert!(is_connection_error(&io::Error::from(
            io::ErrorKind::ConnectionAborted
        )));
        assert!(!is_connection_error(&io::Error::from_raw_os_error(
            libc::EMFILE
        )));
    }
}
