//! Fetching one trace from a running Jaeger's HTTP query API.
//!
//! Jaeger (v1 and v2 alike) serves `GET /api/traces/{id}` on its UI port
//! (16686 by default) in the JSON format [`crate::jaeger_json`] reads. The
//! errors are the ones a person can act on: a mistyped id, a wrong URL,
//! Jaeger not running, the trace not (or not yet) there.

use std::time::Duration;

use crate::jaeger_json::{self, JaegerJsonError};
use crate::trace_model::Trace;

/// Long enough for a busy Jaeger, short enough to fail visibly.
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("invalid trace id {0:?}: expected 1 to 32 hexadecimal digits")]
    InvalidTraceId(String),
    #[error("invalid Jaeger URL {0:?}: expected http://HOST:PORT (Jaeger's UI address; TLS is not compiled in)")]
    InvalidUrl(String),
    #[error("cannot reach Jaeger at {url}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("trace {trace_id} not found in Jaeger at {url}")]
    NotFound { trace_id: String, url: String },
    #[error("unexpected answer from Jaeger at {url}: HTTP {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("Jaeger at {url} answered with something that is not a trace")]
    Malformed {
        url: String,
        #[source]
        source: JaegerJsonError,
    },
}

/// Fetches trace `trace_id` (1 to 32 hex digits) from the Jaeger whose UI
/// (query API) is at `base_url`.
pub async fn fetch(base_url: &str, trace_id: &str) -> Result<Trace, FetchError> {
    let trace_id = normalise_trace_id(trace_id)?;
    let base = base_url.trim_end_matches('/');
    let parsed = url::Url::parse(base).map_err(|_| FetchError::InvalidUrl(base_url.into()))?;
    if parsed.scheme() != "http" || parsed.host().is_none() {
        return Err(FetchError::InvalidUrl(base_url.into()));
    }
    let mut client = reqwest::Client::builder().timeout(TIMEOUT);
    if is_loopback(&parsed) {
        // A proxy from the environment must not capture a local Jaeger.
        client = client.no_proxy();
    }
    let client = client.build().map_err(|source| FetchError::Unreachable {
        url: base.into(),
        source,
    })?;
    let unreachable = |source| FetchError::Unreachable {
        url: base.into(),
        source,
    };
    let response = client
        .get(format!("{base}/api/traces/{trace_id}"))
        .send()
        .await
        .map_err(unreachable)?;
    let status = response.status().as_u16();
    let body = response.text().await.map_err(unreachable)?;
    let not_found = || FetchError::NotFound {
        trace_id: trace_id.clone(),
        url: base.into(),
    };
    match status {
        200 => {}
        404 => return Err(not_found()),
        _ => {
            return Err(FetchError::Status {
                url: base.into(),
                status,
                body: one_line_excerpt(&body),
            })
        }
    }
    let traces = match jaeger_json::parse(&body) {
        Ok(traces) => traces,
        Err(JaegerJsonError::Empty) => return Err(not_found()),
        Err(source) => {
            return Err(FetchError::Malformed {
                url: base.into(),
                source,
            })
        }
    };
    traces
        .into_iter()
        .find(|t| t.trace_id == trace_id)
        .ok_or_else(not_found)
}

/// 32 lowercase hex digits, left-padded (Jaeger accepts the short form but
/// always answers with what it stored).
fn normalise_trace_id(id: &str) -> Result<String, FetchError> {
    let trimmed = id.trim();
    let valid = !trimmed.is_empty()
        && trimmed.len() <= 32
        && trimmed.bytes().all(|b| b.is_ascii_hexdigit());
    if !valid {
        return Err(FetchError::InvalidTraceId(id.into()));
    }
    Ok(format!("{:0>32}", trimmed.to_ascii_lowercase()))
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The start of an error body, on one line.
fn one_line_excerpt(body: &str) -> String {
    let flat: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_are_checked_and_padded() {
        assert_eq!(
            normalise_trace_id("ABC").unwrap(),
            format!("{:0>32}", "abc")
        );
        for bad in ["", "xyz", &"a".repeat(33), "12 34"] {
            let message = normalise_trace_id(bad).unwrap_err().to_string();
            assert!(message.contains("invalid trace id"), "{message}");
        }
    }

    #[tokio::test]
    async fn bad_urls_are_rejected_before_any_request() {
        for bad in [
            "localhost:16686",
            "ftp://x",
            "https://jaeger.example",
            "http://",
        ] {
            let err = fetch(bad, "abc").await.unwrap_err();
            assert!(matches!(err, FetchError::InvalidUrl(_)), "{bad}: {err}");
        }
    }

    #[test]
    fn error_bodies_are_cut_to_one_line() {
        assert_eq!(one_line_excerpt("a\n  b\tc"), "a b c");
        assert_eq!(one_line_excerpt(&"x".repeat(300)).chars().count(), 201);
    }
}
