//! What one connection is doing, for the timeouts hyper does not keep.
//!
//! hyper 1 has no idle timeout for HTTP/1 keep-alive connections, and
//! hyper-util's `auto` builder waits without bound for the bytes that tell
//! HTTP/1 from HTTP/2; an HTTP/2 connection with no stream open is never
//! closed either. hyper's own header-read timer starts when it begins to
//! wait for a head, which on a keep-alive connection is when the previous
//! response ended: it bounds idle time and head time together. So each
//! connection keeps this small record — requests in flight, since when it
//! is idle, when the first byte of the next head arrived (seen by
//! [`Watched`], a wrapper around the socket) — and a watchdog
//! ([`Activity::expired`]) closes it when a bound passes. A watchdog per
//! connection sleeps until its next deadline, so it costs nothing while
//! requests flow.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

use super::ServerLimits;

/// No byte of a next request head yet.
const NONE: u64 = u64::MAX;

/// How an HTTP/2 connection begins (RFC 9113, 3.4).
const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// One connection's activity. Times are microseconds since it was accepted.
pub(crate) struct Activity {
    accepted: Instant,
    in_flight: AtomicUsize,
    started: AtomicU64,
    idle_since: AtomicU64,
    head_started: AtomicU64,
    /// HTTP/2: bytes between requests are control frames (window updates,
    /// pings, settings acks), not a request head.
    http2: AtomicBool,
    changed: Notify,
}

/// Why the watchdog closes a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expired {
    /// No complete request head within the header-read timeout.
    Head,
    /// No request for the idle timeout.
    Idle,
}

impl Expired {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Expired::Head => "header-read timeout",
            Expired::Idle => "idle timeout",
        }
    }
}

impl Activity {
    pub(crate) fn new() -> Arc<Activity> {
        Arc::new(Activity {
            accepted: Instant::now(),
            in_flight: AtomicUsize::new(0),
            started: AtomicU64::new(0),
            idle_since: AtomicU64::new(0),
            head_started: AtomicU64::new(NONE),
            http2: AtomicBool::new(false),
            changed: Notify::new(),
        })
    }

    fn now(&self) -> u64 {
        u64::try_from(self.accepted.elapsed().as_micros()).unwrap_or(NONE - 1)
    }

    fn at(&self, micros: u64) -> Instant {
        self.accepted + Duration::from_micros(micros)
    }

    /// Requests whose response has not been written out yet.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Whether part of a request head arrived and no request started since
    /// (for HTTP/2: a preface and no request yet): a stalled client, when
    /// it lasts.
    pub(crate) fn reading_head(&self) -> bool {
        self.in_flight() == 0
            && (self.head_started.load(Ordering::Acquire) != NONE
                || (self.http2.load(Ordering::Acquire)
                    && self.started.load(Ordering::Acquire) == 0))
    }

    /// A request starts; it counts as in flight until the guard is dropped
    /// (with the response body, once it is written out).
    pub(crate) fn start_request(self: &Arc<Self>) -> InFlight {
        self.started.fetch_add(1, Ordering::AcqRel);
        if self.in_flight.fetch_add(1, Ordering::AcqRel) == 0 {
            self.head_started.store(NONE, Ordering::Release);
            self.changed.notify_waiters();
        }
        InFlight(Arc::clone(self))
    }

    /// The connection's first bytes: they tell HTTP/2 from HTTP/1 (four
    /// are enough: `PRI ` is no HTTP/1 method in use; an HTTP/2 client
    /// writes its 24-byte preface at once).
    fn first_bytes(&self, bytes: &[u8]) {
        let n = bytes.len().min(HTTP2_PREFACE.len());
        if n >= 4 && bytes[..n] == HTTP2_PREFACE[..n] {
            self.http2.store(true, Ordering::Release);
        }
    }

    fn bytes_read(&self) {
        if self.http2.load(Ordering::Acquire) {
            return;
        }
        if self.in_flight() == 0 && self.head_started.load(Ordering::Acquire) == NONE {
            self.head_started.store(self.now(), Ordering::Release);
            self.changed.notify_waiters();
        }
    }

    /// When the connection must be closed as things stand, and why; `None`
    /// while a request is in flight.
    fn deadline(&self, limits: &ServerLimits) -> Option<(Instant, Expired)> {
        if self.in_flight() > 0 {
            return None;
        }
        let head = self.head_started.load(Ordering::Acquire);
        if head != NONE {
            return Some((self.at(head) + limits.header_read_timeout, Expired::Head));
        }
        let idle = self.at(self.idle_since.load(Ordering::Acquire));
        Some(if self.started.load(Ordering::Acquire) == 0 {
            // A new connection owes us a request, not a keep-alive pause.
            (idle + limits.header_read_timeout, Expired::Head)
        } else {
            (idle + limits.idle_timeout, Expired::Idle)
        })
    }

    /// Completes when the connection outlived a bound: a head not complete
    /// within the header-read timeout, or no request for the idle timeout.
    pub(crate) async fn expired(&self, limits: &ServerLimits) -> Expired {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            match self.deadline(limits) {
                None => changed.await,
                Some((deadline, why)) if deadline <= Instant::now() => return why,
                Some((deadline, _)) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(deadline.into()) => {}
                        () = changed => {}
                    }
                }
            }
        }
    }

    /// Completes once no request is in flight.
    pub(crate) async fn quiet(&self) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.in_flight() == 0 {
                return;
            }
            changed.await;
        }
    }

    /// Completes once a request is in flight.
    pub(crate) async fn busy(&self) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.in_flight() > 0 {
                return;
            }
            changed.await;
        }
    }
}

/// A request in flight on its connection.
pub(crate) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0;
        // Idle from now: set before the count reaches 0, so a watchdog that
        // sees 0 never measures from an older idle time.
        activity.idle_since.store(activity.now(), Ordering::Release);
        if activity.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            activity.head_started.store(NONE, Ordering::Release);
            activity.changed.notify_waiters();
        }
    }
}

/// The connection's socket, noting when bytes arrive between requests.
pub(crate) struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
    first_read: bool,
}

impl<S> Watched<S> {
    pub(crate) fn new(inner: S, activity: Arc<Activity>) -> Self {
        Self {
            inner,
            activity,
            first_read: true,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            if std::mem::take(&mut self.first_read) {
                self.activity.first_bytes(&buf.filled()[before..]);
            }
            self.activity.bytes_read();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: Duration = Duration::from_millis(100);
    const IDLE: Duration = Duration::from_millis(400);

    fn limits() -> ServerLimits {
        ServerLimits {
            header_read_timeout: HEAD,
            idle_timeout: IDLE,
            ..ServerLimits::DEFAULT
        }
    }

    #[tokio::test]
    async fn a_silent_new_connection_expires_after_the_header_read_timeout() {
        let activity = Activity::new();
        let started = Instant::now();
        assert_eq!(activity.expired(&limits()).await, Expired::Head);
        assert!(started.elapsed() >= HEAD);
        assert!(started.elapsed() < IDLE, "{:?}", started.elapsed());
    }

    #[tokio::test]
    async fn after_a_request_the_idle_timeout_applies_then_a_partial_head_the_header_one() {
        let activity = Activity::new();
        drop(activity.start_request());
        assert_eq!(activity.deadline(&limits()).unwrap().1, Expired::Idle);
        let started = Instant::now();
        assert_eq!(activity.expired(&limits()).await, Expired::Idle);
        assert!(started.elapsed() >= IDLE);

        activity.bytes_read();
        assert!(activity.reading_head());
        let (deadline, why) = activity.deadline(&limits()).unwrap();
        assert_eq!(why, Expired::Head);
        assert!(deadline <= Instant::now() + HEAD);
    }

    #[test]
    fn http2_control_frames_between_requests_are_not_a_head() {
        let activity = Activity::new();
        activity.first_bytes(b"PRI * HTTP/2.0\r\n");
        activity.bytes_read();
        // Before its first request, the header-read timeout still applies.
        assert!(activity.reading_head());
        assert_eq!(activity.deadline(&limits()).unwrap().1, Expired::Head);
        drop(activity.start_request());
        activity.bytes_read(); // a WINDOW_UPDATE, a PING
        assert!(!activity.reading_head());
        assert_eq!(activity.deadline(&limits()).unwrap().1, Expired::Idle);

        let http1 = Activity::new();
        http1.first_bytes(b"GET / HTTP/1.1\r\n");
        http1.bytes_read();
        assert!(http1.reading_head());
    }

    #[tokio::test]
    async fn a_request_in_flight_never_expires_and_quiet_waits_for_it() {
        let activity = Activity::new();
        let request = activity.start_request();
        activity.bytes_read(); // body bytes, not a new head
        assert!(!activity.reading_head());
        assert!(activity.deadline(&limits()).is_none());
        let expired = tokio::time::timeout(IDLE * 2, activity.expired(&limits())).await;
        assert!(expired.is_err(), "no expiry while a request is in flight");
        activity.busy().await;
        let waiter = {
            let activity = Arc::clone(&activity);
            tokio::spawn(async move { activity.quiet().await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(request);
        waiter.await.unwrap();
        assert_eq!(activity.in_flight(), 0);
        // Idle from the moment the response was done, not from the accept.
        assert_eq!(activity.deadline(&limits()).unwrap().1, Expired::Idle);
    }
}
