//! What the aggregator needs to know: where its dependencies are, how long to
//! wait for each, which fan-out mode to use by default, and which remedies
//! (retries, breaker, hedging, bulkhead, fallback) a request gets.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use telemetry::PoolConfig;
use url::Url;

use crate::resilience::RemedyConfig;

/// How the two downstream calls are orchestrated. Its names live in
/// [`Mode::as_str`] alone: `Display`, `FromStr` (flags, `?mode=`) and serde
/// (the answer's `mode`) are all made from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Sequential,
    Concurrent,
    Unlinked,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Sequential, Mode::Concurrent, Mode::Unlinked];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Sequential => "sequential",
            Mode::Concurrent => "concurrent",
            Mode::Unlinked => "unlinked",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("{s:?}: expected sequential, concurrent or unlinked"))
    }
}

impl Serialize for Mode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(de::Error::custom)
    }
}

/// One downstream service.
#[derive(Debug, Clone)]
pub struct Dependency {
    /// Base URL, e.g. `http://127.0.0.1:5001`.
    pub base_url: Url,
    /// Give up on a call after this long (the request then answers 504).
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub users: Dependency,
    pub orders: Dependency,
    /// Mode used when the request has no `?mode=`.
    pub default_mode: Mode,
    /// Whether `POST /verify-tracecontext` exists, and what it may call.
    pub tracecontext_validation: TraceContextValidation,
    /// The remedies' settings and what is on by default (nothing, unless
    /// flags say so).
    pub remedies: RemedyConfig,
    /// The outgoing client's idle keep-alive pool (per dependency host).
    pub pool: PoolConfig,
}

/// The W3C Trace Context validation endpoint (`POST /verify-tracecontext`,
/// driven by the official test harness): it POSTs to URLs its caller names,
/// so it is off unless asked for, and even then calls loopback only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TraceContextValidation {
    /// No endpoint (the default): a deployed aggregator is nobody's proxy.
    #[default]
    Off,
    /// The endpoint calls loopback hosts only: `127.0.0.0/8`, `::1`,
    /// `localhost` (the harness on the same machine).
    LoopbackOnly,
    /// The endpoint calls any `http://` host: only for a harness on another
    /// machine, on a network you trust.
    AnyHost,
}

/// `clap` value parser for a dependency's base URL: absolute `http://` with a
/// host, so request paths can be appended to it safely.
pub fn parse_base_url(value: &str) -> Result<Url, String> {
    let url = Url::parse(value.trim())
        .map_err(|e| format!("{e}: expected e.g. http://127.0.0.1:5001"))?;
    if url.scheme() != "http" {
        return Err(format!("{value:?}: only http:// URLs are supported"));
    }
    if url.host_str().is_none() || url.cannot_be_a_base() {
        return Err(format!("{value:?}: the URL needs a host"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_round_trip_and_reject_unknown() {
        for mode in Mode::ALL {
            assert_eq!(mode.as_str().parse::<Mode>(), Ok(mode));
            let json = serde_json::to_string(&mode).unwrap();
            assert_eq!(json, format!("\"{mode}\""));
            assert_eq!(serde_json::from_str::<Mode>(&json).unwrap(), mode);
        }
        assert!(serde_json::from_str::<Mode>("\"parallel\"").is_err());
        assert!("parallel"
            .parse::<Mode>()
            .unwrap_err()
            .contains("sequential, concurrent"));
    }

    #[test]
    fn base_urls_must_be_http_with_a_host() {
        assert!(parse_base_url("http://user-service:5001").is_ok());
        assert!(parse_base_url("https://user-service").is_err());
        assert!(parse_base_url("user-service:5001").is_err());
        assert!(parse_base_url("").is_err());
    }
}
