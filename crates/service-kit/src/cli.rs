//! Command-line pieces shared by the services' `main`s.

use std::time::Duration;

use clap::builder::TypedValueParser as _;
use clap::Args;
use telemetry::LogFormat;

use crate::server::ServerLimits;

/// Flags every service accepts, flattened into its own `clap` parser.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Log line format on stderr: `human` or `json` (JSON lines carry
    /// `trace_id` and `span_id`).
    #[arg(long, env = "LOG_FORMAT", default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// The bounds of the service's HTTP server ([`ServerLimits`]): whatever
/// clients do, connections and requests cannot pile up, and a shutdown
/// ends within the grace period.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Server limits")]
pub struct ServerArgs {
    /// Close a connection whose request head is not complete this long
    /// after its first byte (or that sends nothing this long after
    /// connecting), so slow or stalled clients cannot hold connections.
    #[arg(long, env = "SERVER_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_positive_duration)]
    pub header_read_timeout: Duration,
    /// Close a keep-alive connection (HTTP/1 or HTTP/2) with no request in
    /// flight after this long, so idle clients cannot pile up connections.
    #[arg(long, env = "SERVER_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_positive_duration)]
    pub idle_timeout: Duration,
    /// Connections open at once. Beyond it a new connection is answered 503
    /// and closed at once instead of hanging in the kernel's backlog; keep
    /// it well below the open-file limit (`ulimit -n`).
    #[arg(long, env = "SERVER_MAX_CONNECTIONS", default_value_t = ServerLimits::DEFAULT.max_connections, value_parser = clap::value_parser!(u32).range(1..=1_000_000).map(|n| n as usize))]
    pub max_connections: usize,
    /// Answer 503 `request_timeout` when a request has no response after
    /// this long, so no request holds its connection forever. Keep it above
    /// the service's own deadlines (the aggregator's --user-timeout and
    /// --order-timeout, the mocks' --max-delay).
    #[arg(long, env = "SERVER_REQUEST_TIMEOUT", default_value = "60s", value_parser = parse_positive_duration)]
    pub request_timeout: Duration,
    /// On SIGTERM or Ctrl-C, how long requests in flight may still finish
    /// before their connections are closed; then spans and metrics are
    /// flushed and the process exits 0. Idle and stalled connections are
    /// closed at once.
    #[arg(long, env = "SERVER_SHUTDOWN_GRACE", default_value = "5s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// Longest request target (path and query) served; a longer one is
    /// answered 414 with the JSON error body.
    #[arg(long, env = "SERVER_MAX_URI_BYTES", default_value_t = ServerLimits::DEFAULT.max_uri_bytes, value_parser = clap::value_parser!(u32).range(64..=65_000).map(|n| n as usize))]
    pub max_uri_bytes: usize,
    /// Largest request header block (names and values) served; a larger
    /// one is answered 431 with the JSON error body.
    #[arg(long, env = "SERVER_MAX_HEADER_BYTES", default_value_t = ServerLimits::DEFAULT.max_header_bytes, value_parser = clap::value_parser!(u32).range(1024..=262_144).map(|n| n as usize))]
    pub max_header_bytes: usize,
}

impl ServerArgs {
    pub fn limits(&self) -> ServerLimits {
        ServerLimits {
            header_read_timeout: self.header_read_timeout,
            idle_timeout: self.idle_timeout,
            max_connections: self.max_connections,
            request_timeout: self.request_timeout,
            shutdown_grace: self.shutdown_grace,
            max_uri_bytes: self.max_uri_bytes,
            max_header_bytes: self.max_header_bytes,
        }
    }
}

/// `clap` value parser for durations written as `100ms`, `1.5s`, `2s 500ms`.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    humantime::parse_duration(value.trim())
        .map_err(|e| format!("{e}: write a duration such as 100ms, 1.5s or 2s"))
}

/// [`parse_duration`], refusing zero: a timeout of nothing closes
/// everything.
fn parse_positive_duration(value: &str) -> Result<Duration, String> {
    let duration = parse_duration(value)?;
    if duration.is_zero() {
        return Err(format!("{value:?}: must be more than 0"));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Debug, Parser)]
    struct Service {
        #[command(flatten)]
        common: CommonArgs,
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration(" 2s "), Ok(Duration::from_secs(2)));
        assert!(parse_duration("100").unwrap_err().contains("100ms"));
        assert!(parse_duration("fast").is_err());
    }

    #[test]
    fn the_flags_defaults_are_the_documented_limits() {
        let args = Service::try_parse_from(["service"]).unwrap();
        assert_eq!(args.common.server.limits(), ServerLimits::DEFAULT);
    }

    #[test]
    fn every_limit_is_a_flag_with_an_environment_variable() {
        let args = Service::try_parse_from([
            "service",
            "--header-read-timeout",
            "300ms",
            "--idle-timeout",
            "1s",
            "--max-connections",
            "3",
            "--request-timeout",
            "2s",
            "--shutdown-grace",
            "0s",
            "--max-uri-bytes",
            "100",
            "--max-header-bytes",
            "2048",
        ])
        .unwrap();
        assert_eq!(
            args.common.server.limits(),
            ServerLimits {
                header_read_timeout: Duration::from_millis(300),
                idle_timeout: Duration::from_secs(1),
                max_connections: 3,
                request_timeout: Duration::from_secs(2),
                shutdown_grace: Duration::ZERO,
                max_uri_bytes: 100,
                max_header_bytes: 2048,
            }
        );
        let help = Service::command().render_help().to_string();
        assert!(help.contains("Server limits:"), "{help}");
        for env in [
            "HEADER_READ_TIMEOUT",
            "IDLE_TIMEOUT",
            "MAX_CONNECTIONS",
            "REQUEST_TIMEOUT",
            "SHUTDOWN_GRACE",
            "MAX_URI_BYTES",
            "MAX_HEADER_BYTES",
        ] {
            assert!(help.contains(&format!("[env: SERVER_{env}=")), "{help}");
        }
    }

    #[test]
    fn limits_that_would_close_everything_are_refused() {
        for bad in [
            &["--idle-timeout", "0s"][..],
            &["--header-read-timeout", "0ms"],
            &["--request-timeout", "0s"],
            &["--max-connections", "0"],
            &["--max-uri-bytes", "10"],
            &["--shutdown-grace", "soon"],
        ] {
            let args = [&["service"][..], bad].concat();
            assert!(Service::try_parse_from(args).is_err(), "{bad:?}");
        }
    }
}
