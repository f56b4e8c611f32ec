//! The readiness line: how a service process tells whoever started it that
//! it is serving, and where.
//!
//! Services are started on port 0 by the tests and by `latency-lab up`, so
//! only the service knows its port. Once its socket is bound it prints one
//! line on stdout, `<name> listening on http://<addr>`, readable by a
//! person and by a program. It is written by [`announce`] and read by
//! [`parse`] — nowhere else — so the format can change in one place.

use std::fmt;
use std::io::Write;
use std::net::SocketAddr;

const SEPARATOR: &str = " listening on http://";

/// A service's announcement that it accepts connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    /// Its `service.name`.
    pub service: String,
    /// The address it is bound to (the real port, never 0).
    pub addr: SocketAddr,
}

impl Ready {
    /// `http://<addr>`: the base URL to send requests to.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl fmt::Display for Ready {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{SEPARATOR}{}", self.service, self.addr)
    }
}

/// Prints the readiness line on stdout and flushes it (stdout is a pipe
/// when a program waits for it, and pipes are block-buffered).
pub fn announce(service: &str, addr: SocketAddr) {
    let ready = Ready {
        service: service.to_owned(),
        addr,
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{ready}");
    let _ = out.flush();
}

/// The announcement in one line of a service's stdout, if it is one.
pub fn parse(line: &str) -> Option<Ready> {
    let (service, addr) = line.trim().rsplit_once(SEPARATOR)?;
    if service.is_empty() {
        return None;
    }
    Some(Ready {
        service: service.to_owned(),
        addr: addr.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_round_trips() {
        let ready = Ready {
            service: "user-service".to_owned(),
            addr: "127.0.0.1:5001".parse().unwrap(),
        };
        let line = ready.to_string();
        assert_eq!(line, "user-service listening on http://127.0.0.1:5001");
        assert_eq!(parse(&format!("{line}\n")), Some(ready.clone()));
        assert_eq!(ready.url(), "http://127.0.0.1:5001");
        let v6 = parse("profile-aggregator listening on http://[::1]:8080").unwrap();
        assert_eq!(v6.url(), "http://[::1]:8080");
    }

    #[test]
    fn other_lines_are_not_announcements() {
        for line in [
            "",
            "hello",
            " listening on http://127.0.0.1:1",
            "x listening on http://nowhere",
            "x listening on https://127.0.0.1:1",
        ] {
            assert_eq!(parse(line), None, "{line:?}");
        }
    }
}
