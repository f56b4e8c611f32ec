//! The bounds every server keeps, whatever its clients do.

use std::time::Duration;

/// What a server allows a client, and how long it drains at shutdown.
///
/// Every field is a flag of [`crate::cli::ServerArgs`]; the defaults are
/// the flags' defaults, chosen for a service answering within seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// A client must send a complete request head within this long of its
    /// first byte (and, on a new connection, send that first byte within
    /// this long). Default 10 s: ample for any real client, short for a
    /// slowloris.
    pub header_read_timeout: Duration,
    /// A keep-alive connection (HTTP/1 or HTTP/2) with no request in flight
    /// is closed after this long. Default 60 s: longer than the idle timeout
    /// of common client pools, so a client rarely reuses a connection just
    /// as the server closes it.
    pub idle_timeout: Duration,
    /// Connections open at once. Beyond it a new connection is accepted and
    /// answered 503 `Connection: close`, not left in the kernel's backlog.
    /// Default 1024: far above what the lab's load generator opens, and
    /// below any sane open-file limit.
    pub max_connections: usize,
    /// A request still without a response after this long is answered 503
    /// `request_timeout`. Default 60 s: above every deadline the services
    /// set themselves (the mocks' longest delay defaults to 30 s), so it
    /// only ever stops a request nothing else would.
    pub request_timeout: Duration,
    /// At shutdown, requests in flight get this long to finish before their
    /// connections are closed. Default 5 s.
    pub shutdown_grace: Duration,
    /// Longest request target (path and query) answered with anything but
    /// a JSON 414. Default 8 KiB.
    pub max_uri_bytes: usize,
    /// Largest header block (names and values) answered with anything but
    /// a JSON 431. Default 32 KiB: room for W3C baggage's 8 KiB and more.
    pub max_header_bytes: usize,
}

impl ServerLimits {
    pub const DEFAULT: ServerLimits = ServerLimits {
        header_read_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        max_connections: 1024,
        request_timeout: Duration::from_secs(60),
        shutdown_grace: Duration::from_secs(5),
        max_uri_bytes: 8 * 1024,
        max_header_bytes: 32 * 1024,
    };
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}
