//! What `up` checks before it starts anything, so a busy port or a missing
//! collector is one line with the way forward, said in one place — not a
//! child's bind error, or spans lost without a word.
//!
//! * Every configured listen address is probed with a bind. A taken port
//!   stops `up` with a line naming the port, the flag and the variable that
//!   move it — except a service port left at its default, which moves to a
//!   free port instead (the URLs printed afterwards show it). The OTLP ports
//!   never move silently: every SDK sends to 4317/4318 by default, so a busy
//!   one most likely is a collector the user may want to send to instead.
//! * `--otlp-endpoint` is probed with a connection: when nothing listens
//!   there `up` stops, since every span would be lost.

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

/// One address `up` will listen on, and how the user moves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Listen {
    /// Who listens there, e.g. "the profile-aggregator".
    pub(super) who: &'static str,
    pub(super) flag: &'static str,
    pub(super) var: &'static str,
    pub(super) addr: SocketAddr,
    /// A default a taken port may be swapped for a free one: a service port
    /// the user did not choose. Never an OTLP port.
    pub(super) movable: bool,
    /// An embedded OTLP receiver port: a taken one hints at `--otlp-endpoint`.
    pub(super) otlp: Option<Otlp>,
}

/// Which of the embedded receiver's two ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Otlp {
    Grpc,
    Http,
}

/// What to do with one address after its probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Decision {
    /// Listen there.
    Use(SocketAddr),
    /// The default port was taken: listen on a free port of the same host.
    Moved { taken: SocketAddr, to: SocketAddr },
}

impl Decision {
    pub(super) fn addr(self) -> SocketAddr {
        match self {
            Decision::Use(addr) | Decision::Moved { to: addr, .. } => addr,
        }
    }
}

/// Why `up` cannot listen where it was asked to.
#[derive(Debug)]
pub(super) enum PortProblem {
    Taken(Listen),
    Unusable(Listen, io::Error),
    /// Two addresses the same (boxed: the error stays small).
    Shared(Box<(Listen, Listen)>),
}

impl fmt::Display for PortProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortProblem::Taken(l) => {
                write!(
                    f,
                    "port {} is already in use ({} {}, {}): ",
                    l.addr.port(),
                    l.flag,
                    l.addr,
                    l.who
                )?;
                match l.otlp {
                    // `--otlp-endpoint` takes an OTLP/gRPC URL.
                    Some(Otlp::Grpc) => write!(
                        f,
                        "if a collector or Jaeger listens there, send the spans to it with \
                         --otlp-endpoint http://{}; or ",
                        l.addr
                    )?,
                    Some(Otlp::Http) => write!(
                        f,
                        "if a collector or Jaeger listens there, send the spans to its OTLP/gRPC \
                         port with --otlp-endpoint (e.g. http://{}:4317); or ",
                        l.addr.ip()
                    )?,
                    None => write!(f, "stop what listens there, or ")?,
                }
                write!(
                    f,
                    "move {} with {} ADDR or {}=ADDR ({}:0 picks a free port)",
                    l.who,
                    l.flag,
                    l.var,
                    l.addr.ip()
                )
            }
            PortProblem::Unusable(l, error) => write!(
                f,
                "cannot listen on {} ({} {}): {error}; choose another address with {} ADDR or {}=ADDR",
                l.addr, l.flag, l.who, l.flag, l.var
            ),
            PortProblem::Shared(pair) => {
                let (a, b) = &**pair;
                write!(
                f,
                "{} and {} both ask for {}: give each its own port ({} / {}, {} / {})",
                a.flag, b.flag, a.addr, a.flag, a.var, b.flag, b.var
            )
            }
        }
    }
}

impl std::error::Error for PortProblem {}

/// Probes every address (in order) and decides where each listens; the
/// decisions come back in the same order. Port 0 (any free port) is never
/// probed.
pub(super) fn check_ports(listens: &[Listen]) -> Result<Vec<Decision>, PortProblem> {
    for (i, a) in listens.iter().enumerate() {
        if let Some(b) = listens[i + 1..]
            .iter()
            .find(|b| a.addr.port() != 0 && b.addr == a.addr)
        {
            return Err(PortProblem::Shared(Box::new((*a, *b))));
        }
    }
    listens.iter().map(|l| decide(l, probe(l.addr))).collect()
}

/// Whether a listener could be bound there right now (released at once).
fn probe(addr: SocketAddr) -> io::Result<()> {
    if addr.port() == 0 {
        return Ok(());
    }
    TcpListener::bind(addr).map(drop)
}

/// The decision for one address given its probe: pure, so it is tested
/// without taking real ports.
fn decide(listen: &Listen, probe: io::Result<()>) -> Result<Decision, PortProblem> {
    match probe {
        Ok(()) => Ok(Decision::Use(listen.addr)),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse && listen.movable => Ok(Decision::Moved {
            taken: listen.addr,
            to: SocketAddr::new(listen.addr.ip(), 0),
        }),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => Err(PortProblem::Taken(*listen)),
        Err(e) => Err(PortProblem::Unusable(*listen, e)),
    }
}

/// The one line said when a default port was taken and a free one used.
pub(super) fn moved_note(listen: &Listen, taken: SocketAddr) -> String {
    format!(
        "port {} is taken: {} listens on a free port instead (below); {} ADDR or {}=ADDR chooses one",
        taken.port(),
        listen.who,
        listen.flag,
        listen.var
    )
}

/// How long `--otlp-endpoint` gets to accept a connection.
const ENDPOINT_PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Connects once to `--otlp-endpoint`: an error when nothing listens there.
/// A value that is not an `http://host:port` URL is left to the services,
/// which reject it naming the variable.
pub(super) async fn check_endpoint(endpoint: &str) -> anyhow::Result<()> {
    let Ok(url) = reqwest::Url::parse(endpoint) else {
        return Ok(());
    };
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
        return Ok(());
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let attempt = tokio::time::timeout(
        ENDPOINT_PROBE_TIMEOUT,
        tokio::net::TcpStream::connect((host, port)),
    )
    .await;
    let why = match attempt {
        Ok(Ok(_connected)) => return Ok(()),
        Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
            "nothing listens there".to_owned()
        }
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {} s", ENDPOINT_PROBE_TIMEOUT.as_secs()),
    };
    anyhow::bail!(
        "cannot reach the OTLP endpoint {endpoint} (--otlp-endpoint): {why}; start the collector \
         or Jaeger first, or leave --otlp-endpoint out to use the embedded receiver"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listen(movable: bool, otlp: Option<Otlp>) -> Listen {
        Listen {
            who: "the profile-aggregator",
            flag: "--aggregator",
            var: "LATENCY_LAB_AGGREGATOR",
            addr: "127.0.0.1:8080".parse().unwrap(),
            movable,
            otlp,
        }
    }

    fn in_use() -> io::Result<()> {
        Err(io::ErrorKind::AddrInUse.into())
    }

    #[test]
    fn a_free_port_is_used_as_given() {
        let l = listen(true, None);
        assert_eq!(decide(&l, Ok(())).unwrap(), Decision::Use(l.addr));
    }

    #[test]
    fn a_taken_default_service_port_moves_to_a_free_one() {
        let l = listen(true, None);
        let decision = decide(&l, in_use()).unwrap();
        assert_eq!(
            decision,
            Decision::Moved {
                taken: l.addr,
                to: "127.0.0.1:0".parse().unwrap()
            }
        );
        let note = moved_note(&l, l.addr);
        for part in [
            "port 8080 is taken",
            "--aggregator",
            "LATENCY_LAB_AGGREGATOR",
        ] {
            assert!(note.contains(part), "{note}");
        }
    }

    #[test]
    fn a_taken_chosen_port_is_one_line_naming_flag_and_variable() {
        let message = decide(&listen(false, None), in_use())
            .unwrap_err()
            .to_string();
        assert_eq!(message.lines().count(), 1);
        for part in [
            "port 8080 is already in use",
            "--aggregator ADDR",
            "LATENCY_LAB_AGGREGATOR=ADDR",
        ] {
            assert!(message.contains(part), "{message}");
        }
        assert!(!message.contains("--otlp-endpoint"), "{message}");
    }

    #[test]
    fn a_taken_otlp_port_points_at_otlp_endpoint() {
        let message = decide(&listen(false, Some(Otlp::Grpc)), in_use())
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("--otlp-endpoint http://127.0.0.1:8080"),
            "{message}"
        );
        let message = decide(&listen(false, Some(Otlp::Http)), in_use())
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("its OTLP/gRPC port with --otlp-endpoint"),
            "{message}"
        );
    }

    #[test]
    fn other_bind_errors_say_what_failed() {
        let error = io::Error::from(io::ErrorKind::PermissionDenied);
        let message = decide(&listen(true, None), Err(error))
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with("cannot listen on 127.0.0.1:8080"),
            "{message}"
        );
    }

    #[test]
    fn two_services_on_one_port_are_refused() {
        let a = listen(false, None);
        let b = Listen {
            flag: "--user-service",
            var: "LATENCY_LAB_USER_SERVICE",
            ..a
        };
        let message = check_ports(&[a, b]).unwrap_err().to_string();
        assert!(
            message.starts_with("--aggregator and --user-service both ask for 127.0.0.1:8080"),
            "{message}"
        );
        // Port 0 twice is two free ports, not a clash.
        let any = Listen {
            addr: "127.0.0.1:0".parse().unwrap(),
            ..a
        };
        assert!(check_ports(&[any, any]).is_ok());
    }
}
