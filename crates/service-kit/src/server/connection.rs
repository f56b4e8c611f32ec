//! One connection, from accept to close: served by hyper (HTTP/1 or
//! HTTP/2, whichever the client speaks), closed by its watchdog when it
//! stalls or idles, drained at shutdown and cut off when the grace period
//! ends.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use super::activity::{Activity, Watched};
use super::request::RequestService;
use super::ServerLimits;

/// How long a connection told to close, with no request in flight, may
/// take to do so by itself (flush its last response, send HTTP/2's
/// GOAWAY) before it is dropped. hyper's own graceful close waits for a
/// partial head to complete, or for an HTTP/2 PING reply, which a stalled
/// client never sends.
const CLOSE_LINGER: Duration = Duration::from_millis(250);

/// What every connection of one server shares.
pub(crate) struct Shared {
    pub(crate) router: Router,
    pub(crate) limits: ServerLimits,
    pub(crate) builder: auto::Builder<TokioExecutor>,
    /// Shutdown began: finish what is in flight, take nothing new.
    pub(crate) drain: CancellationToken,
    /// The grace period is over: close now.
    pub(crate) abort: CancellationToken,
    pub(crate) tally: Tally,
}

/// What the shutdown cut short, for its log line.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Closed at shutdown with no request in flight and part of a head
    /// read (for HTTP/2: a preface and no request yet).
    pub(crate) stalled: AtomicUsize,
    /// Closed when the grace period ended, with requests in flight.
    pub(crate) aborted_connections: AtomicUsize,
    pub(crate) aborted_requests: AtomicUsize,
}

/// hyper's builder with a timer, so its own timers work: the HTTP/1
/// header-read timer (kept as a backstop behind the watchdog, which is
/// stricter) and HTTP/2 keep-alive.
pub(crate) fn builder(limits: &ServerLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // hyper starts this timer when it begins waiting for a head, i.e.
        // at the start of a keep-alive pause: a bound on pause and head
        // together, never shorter than the watchdog's.
        .header_read_timeout(limits.idle_timeout + limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        // Room above our own header limit, so ours answers first with JSON.
        .max_header_list_size(
            u32::try_from(limits.max_header_bytes.saturating_mul(2)).unwrap_or(u32::MAX),
        );
    builder
}

/// Serves one accepted connection until it closes; `permit` is its place
/// under the connection cap, given back when this returns.
pub(crate) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    permit: OwnedSemaphorePermit,
) {
    let _permit = permit;
    let limits = shared.limits;
    let activity = Activity::new();
    let service = RequestService {
        router: shared.router.clone(),
        peer,
        activity: Arc::clone(&activity),
        limits,
    };
    let io = TokioIo::new(Watched::new(stream, Arc::clone(&activity)));
    let connection = shared.builder.serve_connection(io, service);
    tokio::pin!(connection);

    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
            return;
        }
        why = activity.expired(&limits) => {
            tracing::debug!(%peer, "closing the connection: {}", why.as_str());
            connection.as_mut().graceful_shutdown();
            tokio::select! {
                _ = connection.as_mut() => {}
                () = tokio::time::sleep(CLOSE_LINGER) => {}
                () = shared.abort.cancelled() => {}
            }
            return;
        }
        () = shared.drain.cancelled() => {}
    }

    // Draining: no new request on this connection; the ones in flight
    // finish until the grace period ends.
    if activity.reading_head() {
        shared.tally.stalled.fetch_add(1, Ordering::Relaxed);
    }
    connection.as_mut().graceful_shutdown();
    loop {
        tokio::select! {
            _ = connection.as_mut() => return,
            () = shared.abort.cancelled() => {
                let in_flight = activity.in_flight();
                if in_flight > 0 {
                    shared.tally.aborted_connections.fetch_add(1, Ordering::Relaxed);
                    shared.tally.aborted_requests.fetch_add(in_flight, Ordering::Relaxed);
                }
                return;
            }
            () = activity.quiet() => {
                tokio::select! {
                    _ = connection.as_mut() => return,
                    () = tokio::time::sleep(CLOSE_LINGER) => return,
                    // A request whose head was already read: let it finish.
                    () = activity.busy() => {}
                    () = shared.abort.cancelled() => return,
                }
            }
        }
    }
}
