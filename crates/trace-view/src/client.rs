//! The one client for a running Jaeger's HTTP query API.
//!
//! Jaeger (v1 and v2 alike) serves the JSON API its UI uses on the UI port
//! (16686 by default): `/api/services`, `/api/services/{service}/operations`
//! and `/api/traces`, whose traces are in the format [`crate::jaeger_json`]
//! reads. `latency-lab trace ID --jaeger URL` fetches one trace with it; the
//! tests also poll it until what they sent has been indexed. The errors are
//! the ones a person can act on: a wrong URL, Jaeger not running, the trace
//! not (or not yet) there.

use std::time::{Duration, Instant};

use url::Url;

use crate::jaeger_json::{self, JaegerJsonError};
use crate::model::Trace;
use crate::TraceId;

/// Long enough for a busy Jaeger, short enough to fail visibly.
const TIMEOUT: Duration = Duration::from_secs(10);

/// How often the `wait_for_*` methods ask again.
const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// What can go wrong when asking Jaeger.
#[derive(Debug, thiserror::Error)]
pub enum JaegerError {
    #[error("invalid Jaeger URL {0:?}: expected http://HOST:PORT (Jaeger's UI address; TLS is not compiled in)")]
    InvalidUrl(String),
    #[error("cannot reach Jaeger at {url}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("trace {trace_id} not found in Jaeger at {url}")]
    NotFound { trace_id: TraceId, url: String },
    #[error("unexpected answer from Jaeger at {url}: HTTP {status}: {body}")]
    UnexpectedAnswer {
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
    /// [`JaegerClient::wait_for_trace`] gave up.
    #[error(
        "trace {trace_id} did not reach {min_spans} span(s) in Jaeger at {url} within \
         {timeout:?} (last seen: {seen} span(s))"
    )]
    TraceTimeout {
        trace_id: TraceId,
        url: String,
        min_spans: usize,
        seen: usize,
        timeout: Duration,
    },
    /// [`JaegerClient::wait_for_service`] gave up.
    #[error(
        "service {service:?} did not show up in Jaeger at {url} within {timeout:?} (seen: {seen:?})"
    )]
    ServiceTimeout {
        service: String,
        url: String,
        seen: Vec<String>,
        timeout: Duration,
    },
}

/// One edge of Jaeger's service graph: spans of `child` whose parent span
/// belongs to `parent`, `call_count` of them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct DependencyLink {
    pub parent: String,
    pub child: String,
    #[serde(rename = "callCount")]
    pub call_count: u64,
}

/// A client for the query API of the Jaeger whose UI is at one base URL.
#[derive(Debug, Clone)]
pub struct JaegerClient {
    /// Without a trailing slash; may carry a path (a Jaeger behind a prefix).
    base: String,
    http: reqwest::Client,
}

impl JaegerClient {
    /// A client for `base_url`, `http://HOST:PORT` (Jaeger's UI address).
    /// Nothing is sent yet.
    pub fn new(base_url: &str) -> Result<Self, JaegerError> {
        let base = base_url.trim().trim_end_matches('/');
        let invalid = || JaegerError::InvalidUrl(base_url.into());
        let parsed = Url::parse(base).map_err(|_| invalid())?;
        if parsed.scheme() != "http" || parsed.host().is_none() {
            return Err(invalid());
        }
        let mut http = reqwest::Client::builder().timeout(TIMEOUT);
        if is_loopback(&parsed) {
            // A proxy from the environment must not capture a local Jaeger.
            http = http.no_proxy();
        }
        let http = http.build().map_err(|source| JaegerError::Unreachable {
            url: base.into(),
            source,
        })?;
        Ok(JaegerClient {
            base: base.into(),
            http,
        })
    }

    /// The base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Service names (`/api/services`), sorted.
    pub async fn services(&self) -> Result<Vec<String>, JaegerError> {
        self.names(self.url(&["services"], &[])).await
    }

    /// Operation names of a service (`/api/services/{service}/operations`), sorted.
    pub async fn operations(&self, service: &str) -> Result<Vec<String>, JaegerError> {
        self.names(self.url(&["services", service, "operations"], &[]))
            .await
    }

    /// The trace (`/api/traces/{id}`).
    pub async fn trace(&self, trace_id: TraceId) -> Result<Trace, JaegerError> {
        self.find_trace(trace_id)
            .await?
            .ok_or_else(|| JaegerError::NotFound {
                trace_id,
                url: self.base.clone(),
            })
    }

    /// The trace (`/api/traces/{id}`), or `None` if Jaeger does not have it
    /// (yet: Jaeger indexes what it receives asynchronously).
    pub async fn find_trace(&self, trace_id: TraceId) -> Result<Option<Trace>, JaegerError> {
        let url = self.url(&["traces", &trace_id.to_string()], &[]);
        let Some(traces) = self.traces(url).await? else {
            return Ok(None);
        };
        Ok(traces.into_iter().find(|t| t.trace_id == trace_id))
    }

    /// Recent traces of a service (`/api/traces?service=…`), at most
    /// `limit`, looking back one hour.
    pub async fn find_traces(
        &self,
        service: &str,
        limit: usize,
    ) -> Result<Vec<Trace>, JaegerError> {
        let limit = limit.to_string();
        let query = [("service", service), ("limit", &limit), ("lookback", "1h")];
        Ok(self
            .traces(self.url(&["traces"], &query))
            .await?
            .unwrap_or_default())
    }

    /// The traces of a service, and of one of its operations when given,
    /// that started in the last `since` (`/api/traces?service=…&operation=…
    /// &start=…&end=…`): the UI's search. At most `limit`, newest first as
    /// Jaeger returns them.
    pub async fn search(
        &self,
        service: &str,
        operation: Option<&str>,
        since: Duration,
        limit: usize,
    ) -> Result<Vec<Trace>, JaegerError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let end = now.as_micros().to_string();
        let start = now.saturating_sub(since).as_micros().to_string();
        let limit = limit.to_string();
        let mut query = vec![
            ("service", service),
            ("start", &start),
            ("end", &end),
            ("limit", &limit),
        ];
        if let Some(operation) = operation {
            query.push(("operation", operation));
        }
        Ok(self
            .traces(self.url(&["traces"], &query))
            .await?
            .unwrap_or_default())
    }

    /// Recent traces of a service with a span carrying every one of `tags`
    /// (`/api/traces?service=…&tags={"k":"v"}`): the UI's *Tags* search box,
    /// where `http.response.status_code=502` is typed. Values are compared as
    /// text; at most `limit` traces, looking back one hour.
    pub async fn find_traces_tagged(
        &self,
        service: &str,
        tags: &[(&str, &str)],
        limit: usize,
    ) -> Result<Vec<Trace>, JaegerError> {
        let limit = limit.to_string();
        let tags = tags_json(tags);
        let query = [
            ("service", service),
            ("tags", &tags),
            ("limit", &limit),
            ("lookback", "1h"),
        ];
        Ok(self
            .traces(self.url(&["traces"], &query))
            .await?
            .unwrap_or_default())
    }

    /// The service-to-service edges Jaeger computes over the `lookback`
    /// before now (`/api/dependencies`): what *System Architecture* draws.
    pub async fn dependencies(
        &self,
        lookback: Duration,
    ) -> Result<Vec<DependencyLink>, JaegerError> {
        #[derive(serde::Deserialize)]
        struct Links {
            /// An empty store answers `"data": null`.
            data: Option<Vec<DependencyLink>>,
        }
        let end_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis()
            .to_string();
        let lookback_ms = lookback.as_millis().to_string();
        let url = self.url(
            &["dependencies"],
            &[("endTs", &end_ms), ("lookback", &lookback_ms)],
        );
        let (status, body) = self.get(url).await?;
        match serde_json::from_str::<Links>(&body) {
            Ok(links) if status == 200 => {
                let mut links = links.data.unwrap_or_default();
                links.sort_by(|a, b| (&a.parent, &a.child).cmp(&(&b.parent, &b.child)));
                Ok(links)
            }
            _ => Err(self.unexpected(status, &body)),
        }
    }

    /// Asks for the trace until it has at least `min_spans` spans. Failures
    /// to reach Jaeger are retried until `timeout`; an answer that is not a
    /// trace is returned at once.
    pub async fn wait_for_trace(
        &self,
        trace_id: TraceId,
        min_spans: usize,
        timeout: Duration,
    ) -> Result<Trace, JaegerError> {
        self.wait_for_trace_where(trace_id, min_spans, timeout, |_| true)
            .await
    }

    /// [`JaegerClient::wait_for_trace`], and also until `ready` holds for
    /// the trace: spans of one trace reach Jaeger in any order (each service
    /// exports on its own), so a count alone can be met by the wrong spans.
    pub async fn wait_for_trace_where(
        &self,
        trace_id: TraceId,
        min_spans: usize,
        timeout: Duration,
        ready: impl Fn(&Trace) -> bool,
    ) -> Result<Trace, JaegerError> {
        let deadline = Instant::now() + timeout;
        let mut seen = 0;
        loop {
            match self.find_trace(trace_id).await {
                Ok(Some(trace)) if trace.spans.len() >= min_spans && ready(&trace) => {
                    return Ok(trace)
                }
                Ok(Some(trace)) => seen = trace.spans.len(),
                Ok(None) | Err(JaegerError::Unreachable { .. }) => {}
                Err(e) => return Err(e),
            }
            if Instant::now() >= deadline {
                return Err(JaegerError::TraceTimeout {
                    trace_id,
                    url: self.base.clone(),
                    min_spans,
                    seen,
                    timeout,
                });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Asks for the services until `service` is one of them; returns them all.
    pub async fn wait_for_service(
        &self,
        service: &str,
        timeout: Duration,
    ) -> Result<Vec<String>, JaegerError> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            if let Ok(services) = self.services().await {
                if services.iter().any(|s| s == service) {
                    return Ok(services);
                }
                seen = services;
            }
            if Instant::now() >= deadline {
                return Err(JaegerError::ServiceTimeout {
                    service: service.to_owned(),
                    url: self.base.clone(),
                    seen,
                    timeout,
                });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// `{base}/api/{segments…}?{query}`, each segment and pair encoded.
    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = Url::parse(&self.base).expect("checked by JaegerClient::new");
        url.path_segments_mut()
            .expect("an http URL has a path")
            .pop_if_empty()
            .push("api")
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// GETs `url`: the status and the body.
    async fn get(&self, url: Url) -> Result<(u16, String), JaegerError> {
        let unreachable = |source| JaegerError::Unreachable {
            url: self.base.clone(),
            source,
        };
        let response = self.http.get(url).send().await.map_err(unreachable)?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(unreachable)?;
        Ok((status, body))
    }

    /// The traces of a `/api/traces…` answer; `None` when Jaeger has none.
    async fn traces(&self, url: Url) -> Result<Option<Vec<Trace>>, JaegerError> {
        let (status, body) = self.get(url).await?;
        match status {
            200 => {}
            404 => return Ok(None),
            _ => return Err(self.unexpected(status, &body)),
        }
        match jaeger_json::parse(&body) {
            Ok(traces) => Ok(Some(traces)),
            Err(JaegerJsonError::Empty) => Ok(None),
            Err(source) => Err(JaegerError::Malformed {
                url: self.base.clone(),
                source,
            }),
        }
    }

    /// The sorted names of a `{"data": [name, …]}` answer.
    async fn names(&self, url: Url) -> Result<Vec<String>, JaegerError> {
        #[derive(serde::Deserialize)]
        struct Names {
            /// An empty store answers `"data": null`.
            data: Option<Vec<String>>,
        }
        let (status, body) = self.get(url).await?;
        let names = match serde_json::from_str::<Names>(&body) {
            Ok(names) if status == 200 => names,
            _ => return Err(self.unexpected(status, &body)),
        };
        let mut names = names.data.unwrap_or_default();
        names.sort();
        Ok(names)
    }

    fn unexpected(&self, status: u16, body: &str) -> JaegerError {
        JaegerError::UnexpectedAnswer {
            url: self.base.clone(),
            status,
            body: one_line_excerpt(body),
        }
    }
}

/// `{"k":"v",…}`: the `tags` parameter Jaeger's search reads.
fn tags_json(tags: &[(&str, &str)]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = tags
        .iter()
        .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
        .collect();
    serde_json::Value::Object(map).to_string()
}

fn is_loopback(url: &Url) -> bool {
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
    fn bad_urls_are_rejected_before_any_request() {
        for bad in [
            "localhost:16686",
            "ftp://x",
            "https://jaeger.example",
            "http://",
        ] {
            let err = JaegerClient::new(bad).unwrap_err();
            assert!(matches!(err, JaegerError::InvalidUrl(_)), "{bad}: {err}");
        }
        let client = JaegerClient::new("http://127.0.0.1:16686/").unwrap();
        assert_eq!(client.base_url(), "http://127.0.0.1:16686");
    }

    #[test]
    fn path_segments_and_queries_are_encoded() {
        let client = JaegerClient::new("http://127.0.0.1:16686").unwrap();
        assert_eq!(
            client
                .url(&["services", "a b/c", "operations"], &[])
                .as_str(),
            "http://127.0.0.1:16686/api/services/a%20b%2Fc/operations"
        );
        assert_eq!(
            client
                .url(&["traces"], &[("service", "a&b"), ("limit", "2")])
                .as_str(),
            "http://127.0.0.1:16686/api/traces?service=a%26b&limit=2"
        );
        // A Jaeger served under a path prefix keeps it.
        let prefixed = JaegerClient::new("http://127.0.0.1:16686/jaeger/").unwrap();
        assert_eq!(
            prefixed.url(&["traces", "ab"], &[]).as_str(),
            "http://127.0.0.1:16686/jaeger/api/traces/ab"
        );
    }

    #[test]
    fn tags_are_a_json_object_of_strings() {
        let json = tags_json(&[("http.response.status_code", "502"), ("error.type", "a\"b")]);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&json).unwrap(),
            serde_json::json!({"http.response.status_code": "502", "error.type": "a\"b"})
        );
    }

    #[test]
    fn error_bodies_are_cut_to_one_line() {
        assert_eq!(one_line_excerpt("a\n  b\tc"), "a b c");
        assert_eq!(one_line_excerpt(&"x".repeat(300)).chars().count(), 201);
    }
}
