//! Jaeger's JSON trace format, read and written.
//!
//! This is the shape of Jaeger's query API (`GET /api/traces/{id}` answers
//! `{"data": [trace]}`) and also what the Jaeger UI's "JSON File" upload
//! accepts, so one format serves three jobs: fetching a trace from a running
//! Jaeger, saving every trace the lab receives so it can be opened in Jaeger
//! later, and reading such a file back (`latency-lab trace --file`).
//!
//! The OpenTelemetry fields Jaeger has no column for travel as tags, the way
//! Jaeger's own OTLP translation writes them: `span.kind`, `otel.status_code`,
//! `otel.status_description`, `error`, `otel.scope.name`. Reading takes them
//! back out, so a written trace reads back equal to the model it came from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::{Event, Link, Span, SpanKind, Status, Trace, Value};
use crate::TraceId;

const SPAN_KIND: &str = "span.kind";
const STATUS_CODE: &str = "otel.status_code";
const STATUS_DESCRIPTION: &str = "otel.status_description";
const ERROR: &str = "error";
const SCOPE_NAME: &str = "otel.scope.name";
/// The field of a Jaeger log that holds an OpenTelemetry event's name.
const EVENT_NAME: &str = "event";

/// What can be wrong with a Jaeger JSON document.
#[derive(Debug, thiserror::Error)]
pub enum JaegerJsonError {
    /// Not JSON at all, or not the expected structure. (The parser's
    /// message is part of this one, not a separate cause: it is the detail.)
    #[error("not a Jaeger JSON trace ({EXPECTED}): {0}")]
    Syntax(serde_json::Error),
    /// JSON, but not shaped like a Jaeger trace at all (e.g. an OTLP export).
    #[error("not a Jaeger JSON trace ({EXPECTED}): found {found}")]
    NotJaeger { found: String },
    /// Valid structure, inconsistent content.
    #[error("invalid trace {trace_id}: {problem}")]
    Invalid { trace_id: String, problem: String },
    /// The document holds no trace (e.g. `{"data": []}` or `{"data": null}`).
    #[error("the document holds no trace")]
    Empty,
    /// A file could not be read or written.
    #[error("cannot {action} {}: {error}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
}

impl From<serde_json::Error> for JaegerJsonError {
    fn from(error: serde_json::Error) -> Self {
        Self::Syntax(error)
    }
}

/// What a document should look like, for the errors that say it is not one.
const EXPECTED: &str = "expected {\"data\": [...]} as Jaeger's UI downloads it";

/// `{"data": [trace, …]}`: the query API's answer and the upload format.
#[derive(Debug, Serialize, Deserialize)]
struct Document {
    /// Jaeger answers `"data": null` next to `"errors"` when it has nothing.
    #[serde(default)]
    data: Option<Vec<JTrace>>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JTrace {
    #[serde(rename = "traceID")]
    trace_id: String,
    spans: Vec<JSpan>,
    #[serde(default)]
    processes: BTreeMap<String, JProcess>,
    #[serde(default)]
    warnings: Option<Vec<String>>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JSpan {
    #[serde(rename = "traceID")]
    trace_id: String,
    #[serde(rename = "spanID")]
    span_id: String,
    operation_name: String,
    #[serde(default)]
    references: Vec<JReference>,
    start_time: u64,
    duration: u64,
    #[serde(default)]
    tags: Vec<JTag>,
    #[serde(default)]
    logs: Vec<JLog>,
    #[serde(rename = "processID")]
    process_id: String,
    #[serde(default)]
    warnings: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum RefType {
    ChildOf,
    FollowsFrom,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JReference {
    ref_type: RefType,
    #[serde(rename = "traceID")]
    trace_id: String,
    #[serde(rename = "spanID")]
    span_id: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct JLog {
    timestamp: u64,
    #[serde(default)]
    fields: Vec<JTag>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JProcess {
    service_name: String,
    #[serde(default)]
    tags: Vec<JTag>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum TagType {
    String,
    Bool,
    Int64,
    Float64,
    Binary,
}

/// A tag: the value's JSON form depends on `type`, so it is checked against
/// it when converted (see [`tag_value`]).
#[derive(Debug, Serialize, Deserialize)]
struct JTag {
    key: String,
    #[serde(rename = "type")]
    kind: TagType,
    value: serde_json::Value,
}

/// Parses a document: `{"data": [trace, …]}` (the API's answer, the upload
/// format) or one bare trace object. Every trace in it is returned.
pub fn parse(text: &str) -> Result<Vec<Trace>, JaegerJsonError> {
    let json: serde_json::Value = serde_json::from_str(text)?;
    let traces: Vec<JTrace> = if json.get("data").is_some() {
        Document::deserialize(&json)?.data.unwrap_or_default()
    } else if json.get("traceID").is_some() || json.get("spans").is_some() {
        vec![JTrace::deserialize(&json)?]
    } else {
        return Err(JaegerJsonError::NotJaeger {
            found: describe(&json),
        });
    };
    if traces.is_empty() {
        return Err(JaegerJsonError::Empty);
    }
    traces.into_iter().map(trace_from_json).collect()
}

/// A few words on what a JSON document that is not a trace holds.
fn describe(json: &serde_json::Value) -> String {
    use serde_json::Value as J;
    match json {
        J::Object(map) if map.contains_key("resourceSpans") => {
            "OTLP JSON (resourceSpans), not Jaeger's format".to_owned()
        }
        J::Object(map) if map.is_empty() => "an empty object".to_owned(),
        J::Object(map) => {
            let keys: Vec<&str> = map.keys().take(5).map(String::as_str).collect();
            let more = if map.len() > keys.len() { ", …" } else { "" };
            format!("an object with {}{more}", keys.join(", "))
        }
        J::Array(_) => "an array".to_owned(),
        J::String(_) => "a string".to_owned(),
        J::Number(_) => "a number".to_owned(),
        J::Bool(_) => "a boolean".to_owned(),
        J::Null => "null".to_owned(),
    }
}

/// Reads a file written by [`save`] or downloaded from Jaeger.
pub fn read_file(path: &Path) -> Result<Vec<Trace>, JaegerJsonError> {
    let text = std::fs::read_to_string(path).map_err(|error| JaegerJsonError::Io {
        action: "read",
        path: path.to_owned(),
        error,
    })?;
    parse(&text)
}

/// The upload document for the traces, pretty-printed.
pub fn to_string(traces: &[Trace]) -> String {
    let document = Document {
        data: Some(traces.iter().map(trace_to_json).collect()),
    };
    serde_json::to_string_pretty(&document).expect("plain data always serialises")
}

/// Writes the trace as `<dir>/<trace id>.json` (upload format) and returns
/// the path. The directory must exist.
pub fn save(dir: &Path, trace: &Trace) -> Result<PathBuf, JaegerJsonError> {
    let path = dir.join(format!("{}.json", trace.trace_id));
    std::fs::write(&path, to_string(std::slice::from_ref(trace))).map_err(|error| {
        JaegerJsonError::Io {
            action: "write",
            path: path.clone(),
            error,
        }
    })?;
    Ok(path)
}

fn trace_to_json(trace: &Trace) -> JTrace {
    let trace_id = trace.trace_id.to_string();
    // One process per distinct (service, resource), numbered p1, p2, … in
    // order of first appearance, as Jaeger numbers them.
    let mut processes: Vec<(&str, &BTreeMap<String, Value>)> = Vec::new();
    let mut spans = Vec::with_capacity(trace.spans.len());
    for span in &trace.spans {
        let key = (span.service.as_str(), &span.resource);
        let index = match processes.iter().position(|p| *p == key) {
            Some(i) => i,
            None => {
                processes.push(key);
                processes.len() - 1
            }
        };
        spans.push(span_to_json(&trace_id, span, format!("p{}", index + 1)));
    }
    JTrace {
        trace_id,
        spans,
        processes: processes
            .into_iter()
            .enumerate()
            .map(|(i, (service, resource))| {
                (
                    format!("p{}", i + 1),
                    JProcess {
                        service_name: service.to_owned(),
                        tags: tags_to_json(resource),
                    },
                )
            })
            .collect(),
        warnings: None,
    }
}

fn span_to_json(trace_id: &str, span: &Span, process_id: String) -> JSpan {
    let mut references = Vec::new();
    if let Some(parent) = &span.parent_id {
        references.push(JReference {
            ref_type: RefType::ChildOf,
            trace_id: trace_id.to_owned(),
            span_id: parent.clone(),
        });
    }
    references.extend(span.links.iter().map(|l| JReference {
        ref_type: RefType::FollowsFrom,
        trace_id: l.trace_id.to_string(),
        span_id: l.span_id.clone(),
    }));
    let mut tags = tags_to_json(&span.attributes);
    let mut special = |key: &str, value: Value| tags.push(tag_to_json(key, &value));
    if let Some(kind) = kind_tag(span.kind) {
        special(SPAN_KIND, Value::String(kind.into()));
    }
    match &span.status {
        Status::Unset => {}
        Status::Ok => special(STATUS_CODE, Value::String("OK".into())),
        Status::Error(message) => {
            special(STATUS_CODE, Value::String("ERROR".into()));
            if !message.is_empty() {
                special(STATUS_DESCRIPTION, Value::String(message.clone()));
            }
            special(ERROR, Value::Bool(true));
        }
    }
    if !span.scope.is_empty() {
        special(SCOPE_NAME, Value::String(span.scope.clone()));
    }
    JSpan {
        trace_id: trace_id.to_owned(),
        span_id: span.span_id.clone(),
        operation_name: span.name.clone(),
        references,
        start_time: span.start_us,
        duration: span.duration_us,
        tags,
        logs: span
            .events
            .iter()
            .map(|e| {
                let mut fields = vec![tag_to_json(EVENT_NAME, &Value::String(e.name.clone()))];
                fields.extend(tags_to_json(&e.attributes));
                JLog {
                    timestamp: e.time_us,
                    fields,
                }
            })
            .collect(),
        process_id,
        warnings: None,
    }
}

fn tags_to_json(map: &BTreeMap<String, Value>) -> Vec<JTag> {
    map.iter().map(|(k, v)| tag_to_json(k, v)).collect()
}

fn tag_to_json(key: &str, value: &Value) -> JTag {
    let (kind, value) = match value {
        Value::String(s) => (TagType::String, serde_json::Value::from(s.as_str())),
        Value::Bool(b) => (TagType::Bool, serde_json::Value::from(*b)),
        Value::Int(i) => (TagType::Int64, serde_json::Value::from(*i)),
        Value::Float(f) => (TagType::Float64, serde_json::Value::from(*f)),
    };
    JTag {
        key: key.to_owned(),
        kind,
        value,
    }
}

fn trace_from_json(trace: JTrace) -> Result<Trace, JaegerJsonError> {
    let trace_id = TraceId::parse(&trace.trace_id).map_err(|_| JaegerJsonError::Invalid {
        trace_id: trace.trace_id.clone(),
        problem: "traceID is not 1 to 32 hex digits".into(),
    })?;
    let invalid = |problem: String| JaegerJsonError::Invalid {
        trace_id: trace_id.to_string(),
        problem,
    };
    let mut processes = BTreeMap::new();
    for (id, process) in &trace.processes {
        let tags =
            tags_from_json(&process.tags).map_err(|p| invalid(format!("process {id}: {p}")))?;
        processes.insert(id.as_str(), (process.service_name.as_str(), tags));
    }
    let mut spans = Vec::with_capacity(trace.spans.len());
    for span in &trace.spans {
        let span = span_from_json(span, trace_id, &processes)
            .map_err(|p| invalid(format!("span {}: {p}", span.span_id)))?;
        spans.push(span);
    }
    if spans.is_empty() {
        return Err(invalid("it has no spans".into()));
    }
    Ok(Trace { trace_id, spans })
}

type Processes<'a> = BTreeMap<&'a str, (&'a str, BTreeMap<String, Value>)>;

fn span_from_json(span: &JSpan, trace_id: TraceId, processes: &Processes) -> Result<Span, String> {
    let span_id = hex_id(&span.span_id, 16).ok_or("spanID is not 1 to 16 hex digits")?;
    // A span belongs to the trace it is listed in: a view of the trace must
    // not silently show a stranger.
    if TraceId::parse(&span.trace_id) != Ok(trace_id) {
        return Err(format!("traceID {:?} is not the trace's", span.trace_id));
    }
    let (service, resource) = processes
        .get(span.process_id.as_str())
        .ok_or_else(|| format!("processID {:?} is not in processes", span.process_id))?;
    let mut parent_id = None;
    let mut links = Vec::new();
    for reference in &span.references {
        let ref_trace =
            TraceId::parse(&reference.trace_id).map_err(|_| "reference traceID is not hex")?;
        let ref_span = hex_id(&reference.span_id, 16).ok_or("reference spanID is not hex")?;
        match reference.ref_type {
            RefType::ChildOf if parent_id.is_none() && ref_trace == trace_id => {
                parent_id = Some(ref_span)
            }
            _ => links.push(Link {
                trace_id: ref_trace,
                span_id: ref_span,
            }),
        }
    }
    let mut attributes = tags_from_json(&span.tags)?;
    let kind = match attributes.remove(SPAN_KIND) {
        Some(Value::String(kind)) => kind_from_tag(&kind),
        _ => SpanKind::Unspecified,
    };
    let code = attributes.remove(STATUS_CODE);
    let description = attributes.remove(STATUS_DESCRIPTION);
    let error_tag = attributes.remove(ERROR);
    let message = description.map(|d| d.to_string()).unwrap_or_default();
    let status = match code {
        Some(Value::String(code)) if code == "ERROR" => Status::Error(message),
        Some(Value::String(code)) if code == "OK" => Status::Ok,
        // Spans from older instrumentation carry only `error=true`.
        _ if matches!(error_tag, Some(Value::Bool(true))) => Status::Error(message),
        _ => Status::Unset,
    };
    let scope = match attributes.remove(SCOPE_NAME) {
        Some(value) => value.to_string(),
        None => String::new(),
    };
    let mut events = Vec::with_capacity(span.logs.len());
    for log in &span.logs {
        let mut fields = tags_from_json(&log.fields)?;
        let name = fields
            .remove(EVENT_NAME)
            .map(|v| v.to_string())
            .unwrap_or_default();
        events.push(Event {
            time_us: log.timestamp,
            name,
            attributes: fields,
        });
    }
    Ok(Span {
        span_id,
        parent_id,
        service: (*service).to_owned(),
        name: span.operation_name.clone(),
        kind,
        start_us: span.start_time,
        duration_us: span.duration,
        status,
        scope,
        attributes,
        resource: resource.clone(),
        events,
        links,
    })
}

fn tags_from_json(tags: &[JTag]) -> Result<BTreeMap<String, Value>, String> {
    tags.iter()
        .map(|tag| {
            tag_value(tag).map(|v| (tag.key.clone(), v)).ok_or_else(|| {
                format!(
                    "tag {:?}: value does not match its type {:?}",
                    tag.key, tag.kind
                )
            })
        })
        .collect()
}

/// The tag's value as its `type` says. Numbers and booleans written as
/// strings are accepted too (some exporters quote 64-bit integers, which
/// JavaScript cannot hold exactly); binary values stay their base64 text.
fn tag_value(tag: &JTag) -> Option<Value> {
    use serde_json::Value as J;
    match (tag.kind, &tag.value) {
        (TagType::String | TagType::Binary, J::String(s)) => Some(Value::String(s.clone())),
        (TagType::Bool, J::Bool(b)) => Some(Value::Bool(*b)),
        (TagType::Bool, J::String(s)) => s.parse().ok().map(Value::Bool),
        (TagType::Int64, J::Number(n)) => n.as_i64().map(Value::Int),
        (TagType::Int64, J::String(s)) => s.parse().ok().map(Value::Int),
        (TagType::Float64, J::Number(n)) => n.as_f64().map(Value::Float),
        (TagType::Float64, J::String(s)) => s.parse().ok().map(Value::Float),
        _ => None,
    }
}

/// Lowercase hex, left-padded with zeros to `digits` (Jaeger prints ids
/// with leading zeros left out); `None` unless 1 to `digits` hex digits.
fn hex_id(id: &str, digits: usize) -> Option<String> {
    let valid = !id.is_empty() && id.len() <= digits && id.bytes().all(|b| b.is_ascii_hexdigit());
    valid.then(|| format!("{:0>digits$}", id.to_ascii_lowercase()))
}

/// The lowercase word Jaeger uses in its `span.kind` tag; `None` for
/// unspecified, which Jaeger leaves out.
fn kind_tag(kind: SpanKind) -> Option<&'static str> {
    match kind {
        SpanKind::Unspecified => None,
        SpanKind::Internal => Some("internal"),
        SpanKind::Server => Some("server"),
        SpanKind::Client => Some("client"),
        SpanKind::Producer => Some("producer"),
        SpanKind::Consumer => Some("consumer"),
    }
}

/// Reads a `span.kind` tag; an unknown word is unspecified rather than an
/// error, so a file from a newer Jaeger still opens.
fn kind_from_tag(tag: &str) -> SpanKind {
    match tag {
        "internal" => SpanKind::Internal,
        "server" => SpanKind::Server,
        "client" => SpanKind::Client,
        "producer" => SpanKind::Producer,
        "consumer" => SpanKind::Consumer,
        _ => SpanKind::Unspecified,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn span(id: &str, parent: Option<&str>, service: &str, start: u64, dur: u64) -> Span {
        Span {
            span_id: id.repeat(16),
            parent_id: parent.map(|p| p.repeat(16)),
            service: service.into(),
            name: format!("op {id}"),
            kind: SpanKind::Server,
            start_us: start,
            duration_us: dur,
            status: Status::Unset,
            scope: String::new(),
            attributes: BTreeMap::new(),
            resource: BTreeMap::new(),
            events: vec![],
            links: vec![],
        }
    }

    fn rich_trace() -> Trace {
        let mut root = span("a", None, "profile-aggregator", 1_000, 300);
        root.status = Status::Ok;
        root.scope = "tracing-opentelemetry".into();
        root.attributes = [
            (
                "http.route".to_owned(),
                Value::String("/user-profile/{id}".into()),
            ),
            ("http.response.status_code".to_owned(), Value::Int(200)),
            ("ratio".to_owned(), Value::Float(0.25)),
            ("cache.hit".to_owned(), Value::Bool(false)),
        ]
        .into();
        root.resource = [("host.name".to_owned(), Value::String("box".into()))].into();
        let mut child = span("b", Some("a"), "user-service", 1_010, 100);
        child.kind = SpanKind::Client;
        child.status = Status::Error("upstream failed".into());
        child.events = vec![Event {
            time_us: 1_050,
            name: "exception".into(),
            attributes: [("exception.message".to_owned(), Value::String("boom".into()))].into(),
        }];
        child.links = vec![Link {
            trace_id: TraceId(u128::MAX),
            span_id: "e".repeat(16),
        }];
        let mut internal = span("c", Some("b"), "user-service", 1_020, 0);
        internal.kind = SpanKind::Unspecified;
        Trace {
            trace_id: TraceId(0x0af7651916cd43dd8448eb211c80319c),
            spans: vec![root, child, internal],
        }
    }

    #[test]
    fn written_traces_read_back_equal() {
        let trace = rich_trace();
        let text = to_string(std::slice::from_ref(&trace));
        assert_eq!(parse(&text).unwrap(), vec![trace]);
    }

    #[test]
    fn the_written_shape_is_jaegers() {
        let trace = Trace {
            trace_id: TraceId(0x0af7651916cd43dd8448eb211c80319c),
            spans: vec![
                span("a", None, "profile-aggregator", 1_000, 300),
                span("b", Some("a"), "user-service", 1_010, 100),
            ],
        };
        let written: serde_json::Value = serde_json::from_str(&to_string(&[trace])).unwrap();
        let trace_id = "0af7651916cd43dd8448eb211c80319c";
        let expected = json!({"data": [{
            "traceID": trace_id,
            "spans": [
                {"traceID": trace_id, "spanID": "aaaaaaaaaaaaaaaa",
                 "operationName": "op a", "references": [], "startTime": 1000, "duration": 300,
                 "tags": [{"key": "span.kind", "type": "string", "value": "server"}],
                 "logs": [], "processID": "p1", "warnings": null},
                {"traceID": trace_id, "spanID": "bbbbbbbbbbbbbbbb",
                 "operationName": "op b",
                 "references": [{"refType": "CHILD_OF", "traceID": trace_id, "spanID": "aaaaaaaaaaaaaaaa"}],
                 "startTime": 1010, "duration": 100,
                 "tags": [{"key": "span.kind", "type": "string", "value": "server"}],
                 "logs": [], "processID": "p2", "warnings": null}
            ],
            "processes": {
                "p1": {"serviceName": "profile-aggregator", "tags": []},
                "p2": {"serviceName": "user-service", "tags": []}
            },
            "warnings": null
        }]});
        assert_eq!(written, expected);
    }

    #[test]
    fn jaegers_own_answer_is_read() {
        // As the query API serves it: a short trace id, an error span from
        // older instrumentation, an int64 as a number, extra fields.
        let answer = json!({"data": [{
            "traceID": "00000000000000aa",
            "spans": [
                {"traceID": "aa", "spanID": "1", "operationName": "root", "references": [],
                 "startTime": 10, "duration": 5, "processID": "p1", "flags": 1,
                 "tags": [{"key": "error", "type": "bool", "value": true},
                          {"key": "http.status_code", "type": "int64", "value": 500},
                          {"key": "internal.span.format", "type": "string", "value": "otlp"}],
                 "logs": [{"timestamp": 12, "fields": [{"key": "event", "type": "string", "value": "retry"}]}]},
                {"traceID": "aa", "spanID": "2", "operationName": "child",
                 "references": [{"refType": "CHILD_OF", "traceID": "aa", "spanID": "1"}],
                 "startTime": 11, "duration": 2, "processID": "p2", "tags": []}
            ],
            "processes": {"p1": {"serviceName": "front", "tags": []},
                          "p2": {"serviceName": "back", "tags": [{"key": "host.name", "type": "string", "value": "h"}]}},
            "warnings": null
        }], "total": 0, "limit": 0, "offset": 0, "errors": null});
        let traces = parse(&answer.to_string()).unwrap();
        let trace = &traces[0];
        assert_eq!(trace.trace_id, TraceId(0xaa));
        let root = &trace.spans[0];
        assert_eq!(root.span_id, "0000000000000001");
        assert_eq!(root.status, Status::Error(String::new()));
        assert_eq!(root.attributes["http.status_code"], Value::Int(500));
        assert_eq!(root.events[0].name, "retry");
        let child = &trace.spans[1];
        assert_eq!(child.parent_id.as_deref(), Some("0000000000000001"));
        assert_eq!(child.service, "back");
        assert_eq!(child.resource["host.name"], Value::String("h".into()));
        // A bare trace object (what the API's `data` holds) is accepted too.
        let bare = answer["data"][0].to_string();
        assert_eq!(parse(&bare).unwrap(), traces);
    }

    #[test]
    fn malformed_documents_are_errors_not_panics() {
        for (text, expected) in [
            ("", "not a Jaeger JSON trace"),
            ("{\"data\": [", "not a Jaeger JSON trace"),
            ("[1, 2]", "not a Jaeger JSON trace (expected {\"data\": [...]}"),
            ("[1, 2]", "found an array"),
            ("{\"resourceSpans\": []}", "found OTLP JSON (resourceSpans)"),
            ("{\"b\": 1, \"a\": 2}", "found an object with a, b"),
            ("{\"data\": []}", "no trace"),
            ("{\"data\": null, \"errors\": [{\"code\": 404}]}", "no trace"),
            ("{\"data\": [{\"traceID\": \"aa\", \"spans\": []}]}", "no spans"),
            ("{\"data\": [{\"traceID\": \"zz\", \"spans\": []}]}", "traceID"),
            (
                "{\"data\": [{\"traceID\": \"aa\", \"spans\": [{\"traceID\": \"aa\", \"spanID\": \"1\"}]}]}",
                "missing field",
            ),
            (
                r#"{"traceID": "aa", "spans": [{"traceID": "aa", "spanID": "1", "operationName": "x",
                   "startTime": 1, "duration": 1, "processID": "p9"}], "processes": {}}"#,
                "processID \"p9\"",
            ),
            (
                r#"{"traceID": "aa", "spans": [{"traceID": "aa", "spanID": "1", "operationName": "x",
                   "startTime": 1, "duration": 1, "processID": "p1",
                   "tags": [{"key": "n", "type": "int64", "value": "many"}]}],
                   "processes": {"p1": {"serviceName": "s"}}}"#,
                "does not match its type",
            ),
            (
                r#"{"traceID": "aa", "spans": [{"traceID": "aa", "spanID": "1", "operationName": "x",
                   "startTime": 1, "duration": 1, "processID": "p1",
                   "references": [{"refType": "SIBLING_OF", "traceID": "aa", "spanID": "2"}]}],
                   "processes": {"p1": {"serviceName": "s"}}}"#,
                "unknown variant",
            ),
            (
                r#"{"traceID": "aa", "spans": [{"traceID": "ab", "spanID": "1", "operationName": "x",
                   "startTime": 1, "duration": 1, "processID": "p1"}],
                   "processes": {"p1": {"serviceName": "s"}}}"#,
                "traceID \"ab\" is not the trace's",
            ),
        ] {
            let message = parse(text).expect_err(text).to_string();
            assert!(message.contains(expected), "{text}: {message}");
            assert!(!message.contains('\n'), "one line: {message}");
        }
    }

    #[test]
    fn save_names_the_file_after_the_trace() {
        let dir = tempfile::tempdir().unwrap();
        let trace = rich_trace();
        let path = save(dir.path(), &trace).unwrap();
        assert_eq!(path, dir.path().join(format!("{}.json", trace.trace_id)));
        assert_eq!(read_file(&path).unwrap(), vec![trace]);
        let missing = read_file(&dir.path().join("nope.json"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("nope.json"), "{missing}");
    }
}
