//! A small client for Jaeger's HTTP query API (the v1 JSON API the UI uses).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

use crate::HarnessError;

/// How often the `wait_for_*` helpers poll.
const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// A 128-bit trace id. Jaeger prints ids whose high half is zero with 16 hex digits, so ids are
/// compared as integers, never as strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TraceId(pub u128);

impl TraceId {
    /// Parses 1 to 32 hex digits (either case).
    pub fn parse(text: &str) -> Result<Self, HarnessError> {
        let trimmed = text.trim();
        if trimmed.is_empty()
            || trimmed.len() > 32
            || !trimmed.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(HarnessError::InvalidTraceId(text.to_owned()));
        }
        u128::from_str_radix(trimmed, 16)
            .map(TraceId)
            .map_err(|_| HarnessError::InvalidTraceId(text.to_owned()))
    }

    /// 32 lowercase hex digits.
    pub fn to_hex(self) -> String {
        format!("{:032x}", self.0)
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl FromStr for TraceId {
    type Err = HarnessError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TraceId::parse(s)
    }
}

impl From<u128> for TraceId {
    fn from(value: u128) -> Self {
        TraceId(value)
    }
}

/// Big-endian bytes, as in OTLP and `opentelemetry::trace::TraceId::to_bytes()`.
impl From<[u8; 16]> for TraceId {
    fn from(bytes: [u8; 16]) -> Self {
        TraceId(u128::from_be_bytes(bytes))
    }
}

/// One span of a v1 JSON trace, flattened.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanSummary {
    /// The trace id.
    pub trace_id: TraceId,
    /// The span id.
    pub span_id: u64,
    /// The `CHILD_OF` parent, if any.
    pub parent_span_id: Option<u64>,
    /// The span name.
    pub operation_name: String,
    /// `serviceName` of the span's process.
    pub service_name: String,
    /// Start, µs since the epoch.
    pub start_time_us: u64,
    /// Duration in µs.
    pub duration_us: u64,
    /// Tags (attributes, plus Jaeger's `span.kind`, `otel.status_code`, `error`, ...).
    pub tags: BTreeMap<String, Value>,
    /// Whether Jaeger marks the span as an error (`error=true` tag).
    pub error: bool,
}

#[derive(Deserialize)]
struct V1Trace {
    #[serde(default)]
    spans: Vec<V1Span>,
    #[serde(default)]
    processes: BTreeMap<String, V1Process>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct V1Span {
    #[serde(rename = "traceID")]
    trace_id: String,
    #[serde(rename = "spanID")]
    span_id: String,
    #[serde(default)]
    operation_name: String,
    #[serde(default)]
    references: Vec<V1Reference>,
    #[serde(default)]
    start_time: u64,
    #[serde(default)]
    duration: u64,
    #[serde(default)]
    tags: Vec<V1Tag>,
    #[serde(rename = "processID", default)]
    process_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct V1Reference {
    ref_type: String,
    #[serde(rename = "spanID")]
    span_id: String,
}

#[derive(Deserialize)]
struct V1Tag {
    key: String,
    #[serde(default)]
    value: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct V1Process {
    #[serde(default)]
    service_name: String,
}

/// The spans of one trace object as returned by [`JaegerQuery::get_trace_v1`]. Spans whose ids
/// do not parse are left out; anything that is not a v1 trace gives an empty list.
pub fn trace_spans(trace: &Value) -> Vec<SpanSummary> {
    let Ok(parsed) = V1Trace::deserialize(trace) else {
        return Vec::new();
    };
    parsed
        .spans
        .iter()
        .filter_map(|span| {
            let trace_id = TraceId::parse(&span.trace_id).ok()?;
            let span_id = u64::from_str_radix(&span.span_id, 16).ok()?;
            let parent_span_id = span
                .references
                .iter()
                .find(|r| r.ref_type == "CHILD_OF")
                .and_then(|r| u64::from_str_radix(&r.span_id, 16).ok());
            let tags: BTreeMap<String, Value> = span
                .tags
                .iter()
                .map(|t| (t.key.clone(), t.value.clone()))
                .collect();
            let error = matches!(tags.get("error"), Some(Value::Bool(true)))
                || matches!(tags.get("error"), Some(Value::String(s)) if s == "true");
            Some(SpanSummary {
                trace_id,
                span_id,
                parent_span_id,
                operation_name: span.operation_name.clone(),
                service_name: parsed
                    .processes
                    .get(&span.process_id)
                    .map(|p| p.service_name.clone())
                    .unwrap_or_default(),
                start_time_us: span.start_time,
                duration_us: span.duration,
                tags,
                error,
            })
        })
        .collect()
}

/// The number of spans in a v1 trace object.
fn span_count(trace: &Value) -> usize {
    trace
        .get("spans")
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
}

/// A client for Jaeger's HTTP query API.
#[derive(Debug, Clone)]
pub struct JaegerQuery {
    base: String,
    client: reqwest::Client,
}

impl JaegerQuery {
    /// A client for `base_url` (`http://host:port`, the `jaeger_query` HTTP endpoint).
    pub fn new(base_url: impl Into<String>) -> Result<Self, HarnessError> {
        let base = base_url.into().trim_end_matches('/').to_owned();
        let valid = base
            .strip_prefix("http://")
            .or_else(|| base.strip_prefix("https://"))
            .is_some_and(|rest| !rest.is_empty());
        if !valid {
            return Err(HarnessError::InvalidUrl(base));
        }
        let client = reqwest::Client::builder()
            // Loopback test traffic must never go through a proxy from the environment.
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|source| HarnessError::Http {
                url: base.clone(),
                source,
            })?;
        Ok(JaegerQuery { base, client })
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// GET `path` (with `query`), returning status and parsed JSON body.
    async fn get_json(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<(u16, Value), HarnessError> {
        let mut url = format!("{}{}", self.base, path);
        for (i, (key, value)) in query.iter().enumerate() {
            let separator = if i == 0 { '?' } else { '&' };
            url.push(separator);
            url.push_str(&encode_path_segment(key));
            url.push('=');
            url.push_str(&encode_path_segment(value));
        }
        let http_error = |source| HarnessError::Http {
            url: url.clone(),
            source,
        };
        let response = self.client.get(&url).send().await.map_err(http_error)?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(http_error)?;
        match serde_json::from_str(&body) {
            Ok(json) => Ok((status, json)),
            Err(_) => Err(HarnessError::UnexpectedResponse {
                url,
                status,
                body: truncate(&body),
            }),
        }
    }

    /// Service names (`/api/services`), sorted.
    pub async fn services(&self) -> Result<Vec<String>, HarnessError> {
        self.string_list("/api/services").await
    }

    /// Operation names of a service (`/api/services/{service}/operations`), sorted.
    pub async fn operations(&self, service: &str) -> Result<Vec<String>, HarnessError> {
        self.string_list(&format!(
            "/api/services/{}/operations",
            encode_path_segment(service)
        ))
        .await
    }

    async fn string_list(&self, path: &str) -> Result<Vec<String>, HarnessError> {
        let (status, json) = self.get_json(path, &[]).await?;
        if status != 200 {
            return Err(self.unexpected(path, status, &json));
        }
        let mut names: Vec<String> = match json.get("data") {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            // An empty store answers `"data": null`.
            Some(Value::Null) | None => Vec::new(),
            Some(_) => return Err(self.unexpected(path, status, &json)),
        };
        names.sort();
        Ok(names)
    }

    /// The trace (one v1 JSON trace object: `traceID`, `spans`, `processes`) via
    /// `/api/traces/{id}`, or `None` if Jaeger does not have it (yet).
    pub async fn get_trace_v1(
        &self,
        trace_id: impl Into<TraceId>,
    ) -> Result<Option<Value>, HarnessError> {
        let trace_id = trace_id.into();
        let path = format!("/api/traces/{}", trace_id.to_hex());
        let (status, json) = self.get_json(&path, &[]).await?;
        match status {
            404 => return Ok(None),
            200 => {}
            _ => return Err(self.unexpected(&path, status, &json)),
        }
        let Some(traces) = json.get("data").and_then(Value::as_array) else {
            return Ok(None);
        };
        Ok(traces
            .iter()
            .find(|trace| {
                trace
                    .get("traceID")
                    .and_then(Value::as_str)
                    .and_then(|id| TraceId::parse(id).ok())
                    == Some(trace_id)
            })
            .cloned())
    }

    /// Recent traces of a service (`/api/traces?service=...`), at most `limit`, looking back one
    /// hour.
    pub async fn find_traces(
        &self,
        service: &str,
        limit: usize,
    ) -> Result<Vec<Value>, HarnessError> {
        let path = "/api/traces";
        let query = [
            ("service", service.to_owned()),
            ("limit", limit.to_string()),
            ("lookback", "1h".to_owned()),
        ];
        let (status, json) = self.get_json(path, &query).await?;
        if status != 200 {
            return Err(self.unexpected(path, status, &json));
        }
        Ok(json
            .get("data")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    }

    /// Polls `/api/traces/{id}` until the trace has at least `min_spans` spans. Transport errors
    /// while polling are retried until `timeout`.
    pub async fn wait_for_trace(
        &self,
        trace_id: impl Into<TraceId>,
        min_spans: usize,
        timeout: Duration,
    ) -> Result<Value, HarnessError> {
        let trace_id = trace_id.into();
        let deadline = Instant::now() + timeout;
        let mut seen = 0;
        loop {
            match self.get_trace_v1(trace_id).await {
                Ok(Some(trace)) => {
                    seen = span_count(&trace);
                    if seen >= min_spans {
                        return Ok(trace);
                    }
                }
                Ok(None) => {}
                Err(e @ HarnessError::UnexpectedResponse { .. }) => return Err(e),
                Err(_) => {}
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::TraceTimeout {
                    trace_id: trace_id.to_hex(),
                    min_spans,
                    seen,
                    timeout,
                });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Polls `/api/services` until `service` is listed; returns the list.
    pub async fn wait_for_service(
        &self,
        service: &str,
        timeout: Duration,
    ) -> Result<Vec<String>, HarnessError> {
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
                return Err(HarnessError::ServiceTimeout {
                    service: service.to_owned(),
                    seen,
                    timeout,
                });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    fn unexpected(&self, path: &str, status: u16, json: &Value) -> HarnessError {
        HarnessError::UnexpectedResponse {
            url: format!("{}{}", self.base, path),
            status,
            body: truncate(&json.to_string()),
        }
    }
}

fn truncate(text: &str) -> String {
    const MAX: usize = 500;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Percent-encodes everything but unreserved characters (for path segments and query parts).
fn encode_path_segment(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn trace_ids_compare_as_integers() {
        let short = TraceId::parse("00000000000000000000000000abcdef").unwrap();
        assert_eq!(short, TraceId::parse("abcdef").unwrap());
        assert_eq!(short, TraceId::parse("0000000000ABCDEF").unwrap());
        assert_eq!(TraceId::from(0xabcdef_u128).to_hex().len(), 32);
        let mut bytes = [0u8; 16];
        bytes[15] = 1;
        assert_eq!(TraceId::from(bytes), TraceId(1));
    }

    #[test]
    fn bad_trace_ids_are_errors() {
        for bad in ["", "xyz", "0123456789abcdef0123456789abcdef0", "12 34"] {
            assert!(TraceId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bad_base_urls_are_errors() {
        assert!(JaegerQuery::new("localhost:16686").is_err());
        assert!(JaegerQuery::new("http://").is_err());
        let q = JaegerQuery::new("http://127.0.0.1:16686/").unwrap();
        assert_eq!(q.base_url(), "http://127.0.0.1:16686");
    }

    #[test]
    fn spans_are_flattened() {
        let trace = json!({
            "traceID": "00000000000000aa",
            "spans": [
                {"traceID": "aa", "spanID": "01", "operationName": "root", "references": [],
                 "startTime": 10, "duration": 5, "processID": "p1",
                 "tags": [{"key": "error", "type": "bool", "value": true}]},
                {"traceID": "00000000000000aa", "spanID": "02", "operationName": "child",
                 "references": [{"refType": "CHILD_OF", "traceID": "aa", "spanID": "01"}],
                 "startTime": 11, "duration": 2, "processID": "p1", "tags": []},
                {"traceID": "nothex", "spanID": "03"}
            ],
            "processes": {"p1": {"serviceName": "svc", "tags": []}}
        });
        let spans = trace_spans(&trace);
        assert_eq!(spans.len(), 2);
        assert_eq!(spans[0].trace_id, TraceId(0xaa));
        assert!(spans[0].error);
        assert_eq!(spans[1].parent_span_id, Some(1));
        assert_eq!(spans[1].service_name, "svc");
        assert!(!spans[1].error);
        assert!(trace_spans(&json!("nonsense")).is_empty());
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(encode_path_segment("a b/c"), "a%20b%2Fc");
    }
}
