//! The span model the rest of the suite asserts on, and its conversion from OTLP protobuf.
//!
//! Tests and the lab UI should not have to walk `ResourceSpans → ScopeSpans → Span` nor decode
//! byte ids and `AnyValue` one-ofs: each received span is flattened into one self-contained
//! [`CollectedSpan`] that carries its resource and scope along, with ids as lowercase hex (the
//! form they take in `traceparent` headers and in log lines, so they can be compared directly).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{span, status, Span};

/// Service name used when a resource has no `service.name`, as the OpenTelemetry
/// specification prescribes for SDKs, so such spans still group under a recognisable name.
pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// The role of a span in a request's path; mirrors the OTLP `SpanKind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl SpanKind {
    /// Maps the wire value; values this version does not know become `Unspecified` rather
    /// than an error, so a newer exporter never gets its spans dropped.
    pub fn from_proto(value: i32) -> Self {
        match span::SpanKind::try_from(value) {
            Ok(span::SpanKind::Internal) => Self::Internal,
            Ok(span::SpanKind::Server) => Self::Server,
            Ok(span::SpanKind::Client) => Self::Client,
            Ok(span::SpanKind::Producer) => Self::Producer,
            Ok(span::SpanKind::Consumer) => Self::Consumer,
            Ok(span::SpanKind::Unspecified) | Err(_) => Self::Unspecified,
        }
    }
}

/// Outcome of a span as set by the instrumentation; mirrors the OTLP `Status.code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusCode {
    Unset,
    Ok,
    Error,
}

impl StatusCode {
    /// Maps the wire value; unknown values become `Unset` (the proto default).
    pub fn from_proto(value: i32) -> Self {
        match status::StatusCode::try_from(value) {
            Ok(status::StatusCode::Ok) => Self::Ok,
            Ok(status::StatusCode::Error) => Self::Error,
            Ok(status::StatusCode::Unset) | Err(_) => Self::Unset,
        }
    }
}

/// An attribute value: the OTLP `AnyValue` one-of as a plain Rust enum.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    String(String),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(Vec<u8>),
    Array(Vec<AttrValue>),
    /// Kept as an ordered list (not a map) because OTLP keeps the sender's order and allows
    /// duplicate keys here.
    KvList(Vec<(String, AttrValue)>),
}

impl AttrValue {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Self::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// Doubles only: an `Int` is deliberately not widened, so a test asserting a float
    /// attribute notices when the instrumentation recorded an integer instead.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Double(d) => Some(*d),
            _ => None,
        }
    }

    /// Converts an OTLP value. An `AnyValue` without a value (legal on the wire, meaning
    /// "empty") becomes an empty string, so the key stays visible instead of vanishing.
    pub fn from_proto(value: Option<&AnyValue>) -> Self {
        let Some(inner) = value.and_then(|v| v.value.as_ref()) else {
            return Self::String(String::new());
        };
        match inner {
            any_value::Value::StringValue(s) => Self::String(s.clone()),
            any_value::Value::BoolValue(b) => Self::Bool(*b),
            any_value::Value::IntValue(i) => Self::Int(*i),
            any_value::Value::DoubleValue(d) => Self::Double(*d),
            any_value::Value::BytesValue(b) => Self::Bytes(b.clone()),
            any_value::Value::ArrayValue(a) => {
                Self::Array(a.values.iter().map(|v| Self::from_proto(Some(v))).collect())
            }
            any_value::Value::KvlistValue(kv) => Self::KvList(
                kv.values
                    .iter()
                    .map(|kv| (kv.key.clone(), Self::from_proto(kv.value.as_ref())))
                    .collect(),
            ),
            // A string-table index is only meaningful inside the profiles signal; traces
            // never carry one, so keep the raw number rather than invent a string.
            any_value::Value::StringValueStrindex(i) => Self::Int(i64::from(*i)),
        }
    }
}

/// Human form for test failure messages and the lab's text output: strings unquoted, bytes as
/// hex, arrays as `[a, b]`, key-value lists as `{k: v}`.
impl fmt::Display for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::String(s) => f.write_str(s),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Int(i) => write!(f, "{i}"),
            Self::Double(d) => write!(f, "{d}"),
            Self::Bytes(b) => f.write_str(&to_hex(b)),
            Self::Array(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Self::KvList(items) => {
                f.write_str("{")?;
                for (i, (k, v)) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

/// A timestamped annotation inside a span (e.g. an exception or a retry).
#[derive(Debug, Clone, PartialEq)]
pub struct SpanEvent {
    pub name: String,
    pub time_unix_nanos: u64,
    pub attributes: BTreeMap<String, AttrValue>,
}

/// A causal reference to a span outside the parent chain (e.g. a batch consumer).
#[derive(Debug, Clone, PartialEq)]
pub struct SpanLink {
    pub trace_id: String,
    pub span_id: String,
    pub attributes: BTreeMap<String, AttrValue>,
}

/// One received span, flattened with its resource and scope.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectedSpan {
    /// Resource attribute `service.name`, or [`UNKNOWN_SERVICE`] when absent.
    pub service_name: String,
    pub resource: BTreeMap<String, AttrValue>,
    pub scope_name: String,
    /// 32 lowercase hex digits (for a well-formed id).
    pub trace_id: String,
    /// 16 lowercase hex digits (for a well-formed id).
    pub span_id: String,
    /// `None` for a root span (empty proto field).
    pub parent_span_id: Option<String>,
    pub trace_state: String,
    pub flags: u32,
    pub name: String,
    pub kind: SpanKind,
    pub start_unix_nanos: u64,
    pub end_unix_nanos: u64,
    pub attributes: BTreeMap<String, AttrValue>,
    pub events: Vec<SpanEvent>,
    pub links: Vec<SpanLink>,
    pub status_code: StatusCode,
    pub status_message: String,
}

impl CollectedSpan {
    pub fn attr(&self, key: &str) -> Option<&AttrValue> {
        self.attributes.get(key)
    }

    pub fn attr_str(&self, key: &str) -> Option<&str> {
        self.attr(key).and_then(AttrValue::as_str)
    }

    pub fn attr_i64(&self, key: &str) -> Option<i64> {
        self.attr(key).and_then(AttrValue::as_i64)
    }

    /// End minus start; zero (not a panic) when a skewed or broken exporter sent an end
    /// before the start.
    pub fn duration(&self) -> Duration {
        Duration::from_nanos(self.end_unix_nanos.saturating_sub(self.start_unix_nanos))
    }

    /// Whether the two spans ran concurrently for some time: the lesson "these calls were
    /// parallel" is asserted with this. The intersection must have positive length, so a span
    /// that starts exactly when the other ends counts as sequential, and a zero-length span
    /// overlaps nothing. An end before the start is treated as a zero-length span.
    pub fn overlaps(&self, other: &CollectedSpan) -> bool {
        let (a_start, a_end) = self.interval();
        let (b_start, b_end) = other.interval();
        a_start.max(b_start) < a_end.min(b_end)
    }

    fn interval(&self) -> (u64, u64) {
        (
            self.start_unix_nanos,
            self.end_unix_nanos.max(self.start_unix_nanos),
        )
    }
}

/// A resource's `service.name`, or [`UNKNOWN_SERVICE`] when it has none: spans and metrics
/// group under the same name.
pub(crate) fn service_name_of(resource: &BTreeMap<String, AttrValue>) -> String {
    match resource.get("service.name") {
        Some(AttrValue::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => UNKNOWN_SERVICE.to_owned(),
    }
}

/// Flattens an export request into spans, in the order they appear in the request.
///
/// Never fails: malformed fields (odd id lengths, unknown enum values, empty values) are
/// converted as faithfully as possible, because a receiver that silently drops a span hides
/// exactly the instrumentation bug a test is trying to show.
pub fn spans_from_request(request: &ExportTraceServiceRequest) -> Vec<CollectedSpan> {
    let mut out = Vec::new();
    for resource_spans in &request.resource_spans {
        let resource = resource_spans
            .resource
            .as_ref()
            .map(|r| attributes_from_proto(&r.attributes))
            .unwrap_or_default();
        let service_name = service_name_of(&resource);
        for scope_spans in &resource_spans.scope_spans {
            let scope_name = scope_spans
                .scope
                .as_ref()
                .map(|s| s.name.clone())
                .unwrap_or_default();
            for span in &scope_spans.spans {
                out.push(span_from_proto(span, &service_name, &resource, &scope_name));
            }
        }
    }
    out
}

fn span_from_proto(
    span: &Span,
    service_name: &str,
    resource: &BTreeMap<String, AttrValue>,
    scope_name: &str,
) -> CollectedSpan {
    let (status_code, status_message) = match &span.status {
        Some(s) => (StatusCode::from_proto(s.code), s.message.clone()),
        None => (StatusCode::Unset, String::new()),
    };
    CollectedSpan {
        service_name: service_name.to_owned(),
        resource: resource.clone(),
        scope_name: scope_name.to_owned(),
        trace_id: to_hex(&span.trace_id),
        span_id: to_hex(&span.span_id),
        parent_span_id: (!span.parent_span_id.is_empty()).then(|| to_hex(&span.parent_span_id)),
        trace_state: span.trace_state.clone(),
        flags: span.flags,
        name: span.name.clone(),
        kind: SpanKind::from_proto(span.kind),
        start_unix_nanos: span.start_time_unix_nano,
        end_unix_nanos: span.end_time_unix_nano,
        attributes: attributes_from_proto(&span.attributes),
        events: span
            .events
            .iter()
            .map(|e| SpanEvent {
                name: e.name.clone(),
                time_unix_nanos: e.time_unix_nano,
                attributes: attributes_from_proto(&e.attributes),
            })
            .collect(),
        links: span
            .links
            .iter()
            .map(|l| SpanLink {
                trace_id: to_hex(&l.trace_id),
                span_id: to_hex(&l.span_id),
                attributes: attributes_from_proto(&l.attributes),
            })
            .collect(),
        status_code,
        status_message,
    }
}

/// Later duplicates win, which is what the OTLP spec leaves to receivers ("last one wins" is
/// the common choice) and what a map lookup in a test would expect.
fn attributes_from_proto(attributes: &[KeyValue]) -> BTreeMap<String, AttrValue> {
    attributes
        .iter()
        .map(|kv| (kv.key.clone(), AttrValue::from_proto(kv.value.as_ref())))
        .collect()
}

/// Lowercase hex of any byte string, whatever its length: ids of the wrong size are kept
/// (as hex of what was sent) so the bad span shows up instead of disappearing.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, InstrumentationScope, KeyValueList};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Status};

    fn kv(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue { value: Some(value) }),
            key_strindex: 0,
        }
    }

    fn string(s: &str) -> any_value::Value {
        any_value::Value::StringValue(s.to_owned())
    }

    fn request(resource: Vec<KeyValue>, spans: Vec<Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: resource,
                    dropped_attributes_count: 0,
                    entity_refs: vec![],
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "test-scope".to_owned(),
                        ..Default::default()
                    }),
                    spans,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
    }

    fn proto_span() -> Span {
        Span {
            trace_id: (1..=16).collect(),
            span_id: vec![0xAB, 0xCD, 0xEF, 0x01, 0x23, 0x45, 0x67, 0x89],
            parent_span_id: vec![],
            trace_state: "vendor=x".to_owned(),
            flags: 0x101,
            name: "GET /users/{id}".to_owned(),
            kind: span::SpanKind::Server as i32,
            start_time_unix_nano: 1_000,
            end_time_unix_nano: 4_500,
            attributes: vec![
                kv("http.route", string("/users/{id}")),
                kv("cache.hit", any_value::Value::BoolValue(true)),
                kv("http.response.status_code", any_value::Value::IntValue(200)),
                kv("ratio", any_value::Value::DoubleValue(0.25)),
                kv("raw", any_value::Value::BytesValue(vec![0xFF, 0x00])),
                kv(
                    "tags",
                    any_value::Value::ArrayValue(ArrayValue {
                        values: vec![
                            AnyValue {
                                value: Some(string("a")),
                            },
                            AnyValue {
                                value: Some(any_value::Value::IntValue(2)),
                            },
                        ],
                    }),
                ),
                kv(
                    "nested",
                    any_value::Value::KvlistValue(KeyValueList {
                        values: vec![kv("inner", string("v"))],
                    }),
                ),
            ],
            dropped_attributes_count: 0,
            events: vec![span::Event {
                time_unix_nano: 2_000,
                name: "cache.miss".to_owned(),
                attributes: vec![kv("key", string("user:7"))],
                dropped_attributes_count: 0,
            }],
            dropped_events_count: 0,
            links: vec![span::Link {
                trace_id: vec![0xAA; 16],
                span_id: vec![0xBB; 8],
                attributes: vec![kv("link.kind", string("batch"))],
                ..Default::default()
            }],
            dropped_links_count: 0,
            status: Some(Status {
                message: "boom".to_owned(),
                code: status::StatusCode::Error as i32,
            }),
        }
    }

    #[test]
    fn converts_a_hand_built_span() {
        let req = request(
            vec![
                kv("service.name", string("user-service")),
                kv("service.version", string("1.2.3")),
            ],
            vec![proto_span()],
        );
        let spans = spans_from_request(&req);
        assert_eq!(spans.len(), 1);
        let s = &spans[0];
        assert_eq!(s.service_name, "user-service");
        assert_eq!(s.resource["service.version"].as_str(), Some("1.2.3"));
        assert_eq!(s.scope_name, "test-scope");
        assert_eq!(s.trace_id, "0102030405060708090a0b0c0d0e0f10");
        assert_eq!(s.span_id, "abcdef0123456789");
        assert_eq!(s.parent_span_id, None);
        assert_eq!(s.trace_state, "vendor=x");
        assert_eq!(s.flags, 0x101);
        assert_eq!(s.name, "GET /users/{id}");
        assert_eq!(s.kind, SpanKind::Server);
        assert_eq!(s.start_unix_nanos, 1_000);
        assert_eq!(s.end_unix_nanos, 4_500);
        assert_eq!(s.duration(), Duration::from_nanos(3_500));
        assert_eq!(s.status_code, StatusCode::Error);
        assert_eq!(s.status_message, "boom");

        assert_eq!(s.attr_str("http.route"), Some("/users/{id}"));
        assert_eq!(s.attr("cache.hit").and_then(AttrValue::as_bool), Some(true));
        assert_eq!(s.attr_i64("http.response.status_code"), Some(200));
        assert_eq!(s.attr("ratio").and_then(AttrValue::as_f64), Some(0.25));
        assert_eq!(s.attr("raw"), Some(&AttrValue::Bytes(vec![0xFF, 0x00])));
        assert_eq!(
            s.attr("tags"),
            Some(&AttrValue::Array(vec![
                AttrValue::String("a".into()),
                AttrValue::Int(2)
            ]))
        );
        assert_eq!(
            s.attr("nested"),
            Some(&AttrValue::KvList(vec![(
                "inner".into(),
                AttrValue::String("v".into())
            )]))
        );
        // Typed accessors do not coerce across types.
        assert_eq!(s.attr_i64("http.route"), None);
        assert_eq!(s.attr_str("http.response.status_code"), None);
        assert_eq!(s.attr("missing"), None);

        assert_eq!(
            s.events,
            vec![SpanEvent {
                name: "cache.miss".into(),
                time_unix_nanos: 2_000,
                attributes: BTreeMap::from([("key".into(), AttrValue::String("user:7".into()))]),
            }]
        );
        assert_eq!(s.links.len(), 1);
        assert_eq!(s.links[0].trace_id, "aa".repeat(16));
        assert_eq!(s.links[0].span_id, "bb".repeat(8));
        assert_eq!(s.links[0].attributes["link.kind"].as_str(), Some("batch"));
    }

    #[test]
    fn parent_id_is_lowercase_hex_when_present() {
        let mut span = proto_span();
        span.parent_span_id = vec![0xDE, 0xAD, 0xBE, 0xEF, 0, 0, 0, 1];
        let spans = spans_from_request(&request(vec![], vec![span]));
        assert_eq!(spans[0].parent_span_id.as_deref(), Some("deadbeef00000001"));
    }

    #[test]
    fn missing_service_name_becomes_unknown_service() {
        let spans = spans_from_request(&request(vec![], vec![proto_span()]));
        assert_eq!(spans[0].service_name, UNKNOWN_SERVICE);
        let mut req = request(vec![], vec![proto_span()]);
        req.resource_spans[0].resource = None;
        req.resource_spans[0].scope_spans[0].scope = None;
        let spans = spans_from_request(&req);
        assert_eq!(spans[0].service_name, "unknown_service");
        assert_eq!(spans[0].scope_name, "");
        assert!(spans[0].resource.is_empty());
    }

    #[test]
    fn ids_of_the_wrong_length_are_kept_as_hex() {
        let mut span = proto_span();
        span.trace_id = vec![0x0A, 0xB0, 0x0C];
        span.span_id = vec![];
        let spans = spans_from_request(&request(vec![], vec![span]));
        assert_eq!(spans.len(), 1, "a malformed span must not be dropped");
        assert_eq!(spans[0].trace_id, "0ab00c");
        assert_eq!(spans[0].span_id, "");
    }

    #[test]
    fn unknown_enum_values_and_missing_status_use_defaults() {
        let mut span = proto_span();
        span.kind = 42;
        span.status = None;
        let spans = spans_from_request(&request(vec![], vec![span]));
        assert_eq!(spans[0].kind, SpanKind::Unspecified);
        assert_eq!(spans[0].status_code, StatusCode::Unset);
        assert_eq!(spans[0].status_message, "");
        assert_eq!(StatusCode::from_proto(-1), StatusCode::Unset);
        assert_eq!(StatusCode::from_proto(1), StatusCode::Ok);
        for (wire, kind) in [
            (0, SpanKind::Unspecified),
            (1, SpanKind::Internal),
            (2, SpanKind::Server),
            (3, SpanKind::Client),
            (4, SpanKind::Producer),
            (5, SpanKind::Consumer),
        ] {
            assert_eq!(SpanKind::from_proto(wire), kind);
        }
    }

    #[test]
    fn spans_keep_request_order_across_resources() {
        let mut req = request(vec![kv("service.name", string("a"))], vec![proto_span()]);
        let mut second = req.resource_spans[0].clone();
        second.resource = Some(Resource {
            attributes: vec![kv("service.name", string("b"))],
            ..Default::default()
        });
        second.scope_spans[0].spans[0].name = "second".into();
        req.resource_spans.push(second);
        let spans = spans_from_request(&req);
        let got: Vec<_> = spans
            .iter()
            .map(|s| (s.service_name.as_str(), s.name.as_str()))
            .collect();
        assert_eq!(got, [("a", "GET /users/{id}"), ("b", "second")]);
    }

    #[test]
    fn empty_any_value_becomes_empty_string() {
        assert_eq!(
            AttrValue::from_proto(None),
            AttrValue::String(String::new())
        );
        assert_eq!(
            AttrValue::from_proto(Some(&AnyValue { value: None })),
            AttrValue::String(String::new())
        );
    }

    #[test]
    fn attr_value_display() {
        let v = AttrValue::KvList(vec![
            ("s".into(), AttrValue::String("x y".into())),
            (
                "a".into(),
                AttrValue::Array(vec![AttrValue::Int(1), AttrValue::Bool(false)]),
            ),
            ("d".into(), AttrValue::Double(1.5)),
            ("b".into(), AttrValue::Bytes(vec![0x01, 0xAB])),
        ]);
        assert_eq!(v.to_string(), "{s: x y, a: [1, false], d: 1.5, b: 01ab}");
    }

    fn timed(start: u64, end: u64) -> CollectedSpan {
        let mut s = spans_from_request(&request(vec![], vec![proto_span()])).remove(0);
        s.start_unix_nanos = start;
        s.end_unix_nanos = end;
        s
    }

    #[test]
    fn duration_saturates_when_end_precedes_start() {
        assert_eq!(timed(10, 5).duration(), Duration::ZERO);
        assert_eq!(timed(5, 10).duration(), Duration::from_nanos(5));
    }

    #[test]
    fn overlaps_needs_a_positive_intersection() {
        assert!(timed(0, 10).overlaps(&timed(5, 15)));
        assert!(timed(5, 15).overlaps(&timed(0, 10)));
        assert!(timed(0, 10).overlaps(&timed(2, 3)), "containment overlaps");
        assert!(
            !timed(0, 10).overlaps(&timed(10, 20)),
            "back-to-back is sequential"
        );
        assert!(!timed(0, 10).overlaps(&timed(11, 20)));
        assert!(
            !timed(5, 5).overlaps(&timed(0, 10)),
            "zero-length overlaps nothing"
        );
        assert!(
            !timed(8, 2).overlaps(&timed(0, 10)),
            "inverted span is zero-length"
        );
    }
}
