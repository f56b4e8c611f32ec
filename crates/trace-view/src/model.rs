//! One trace as the lab's views see it, whatever it came from.
//!
//! The waterfall must look the same for a trace the embedded receiver just
//! collected (OTLP, nanoseconds, byte ids), one fetched from Jaeger and one
//! read back from a saved file (Jaeger JSON, microseconds, hex ids). So both
//! sources are converted into this small model first, and every view works
//! on it alone. Times are whole microseconds since the Unix epoch: Jaeger's
//! resolution, which makes a save-and-reload round trip exact.

use std::collections::BTreeMap;
use std::fmt;

use otlp_receiver::{AttrValue, CollectedSpan};

use crate::TraceId;

/// A trace: its id and its spans, in no particular order.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    pub trace_id: TraceId,
    pub spans: Vec<Span>,
}

/// One span.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// 16 lowercase hex digits.
    pub span_id: String,
    /// The parent's span id; `None` for a root. The parent may be missing
    /// from the trace (a broken trace): views then treat the span as a root.
    pub parent_id: Option<String>,
    /// `service.name` of the process that recorded the span.
    pub service: String,
    pub name: String,
    pub kind: SpanKind,
    /// Start, µs since the Unix epoch.
    pub start_us: u64,
    pub duration_us: u64,
    pub status: Status,
    /// Instrumentation scope (library) name; empty when unknown.
    pub scope: String,
    pub attributes: BTreeMap<String, Value>,
    /// Resource attributes other than `service.name` (Jaeger's process tags).
    pub resource: BTreeMap<String, Value>,
    pub events: Vec<Event>,
    /// Causal links to other spans (Jaeger's `FOLLOWS_FROM` references).
    pub links: Vec<Link>,
}

impl Span {
    /// End, µs since the Unix epoch.
    pub fn end_us(&self) -> u64 {
        self.start_us.saturating_add(self.duration_us)
    }

    pub fn is_error(&self) -> bool {
        matches!(self.status, Status::Error(_))
    }
}

/// The role of a span in the request's path: the receiver's type, so a
/// collected span's kind needs no translation (how Jaeger JSON spells it is
/// `jaeger_json`'s business).
pub use otlp_receiver::SpanKind;

/// The span's outcome as its instrumentation set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Unset,
    Ok,
    /// An error, with its description (possibly empty).
    Error(String),
}

/// An attribute value, reduced to what Jaeger's JSON can carry.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    String(String),
    Bool(bool),
    Int(i64),
    Float(f64),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::String(s) => f.write_str(s),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Int(i) => write!(f, "{i}"),
            Self::Float(x) => write!(f, "{x}"),
        }
    }
}

impl From<&AttrValue> for Value {
    /// Scalars map one to one; bytes, arrays and key-value lists have no
    /// Jaeger tag type and become their text form (as Jaeger's own OTLP
    /// translation turns them into strings too).
    fn from(value: &AttrValue) -> Self {
        match value {
            AttrValue::String(s) => Self::String(s.clone()),
            AttrValue::Bool(b) => Self::Bool(*b),
            AttrValue::Int(i) => Self::Int(*i),
            AttrValue::Double(d) => Self::Float(*d),
            other => Self::String(other.to_string()),
        }
    }
}

/// A timestamped annotation inside a span (Jaeger calls them logs).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub time_us: u64,
    pub name: String,
    pub attributes: BTreeMap<String, Value>,
}

/// A reference to a span outside the parent chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub trace_id: TraceId,
    pub span_id: String,
}

impl Trace {
    /// Builds the trace from the spans the embedded receiver collected for
    /// one trace id; `None` when there are none, or when their trace id is
    /// not 1 to 32 hex digits (see [`collected_trace_id`]).
    ///
    /// Nanoseconds are cut to microseconds the way Jaeger does it (start and
    /// duration each rounded down), so this trace and the same trace fetched
    /// from Jaeger render identically.
    pub fn from_collected(spans: &[CollectedSpan]) -> Option<Trace> {
        Some(Trace {
            trace_id: collected_trace_id(spans.first()?)?,
            spans: spans.iter().map(span_from_collected).collect(),
        })
    }

    /// The end-to-end time: first start to last end over all spans.
    pub fn time_range(&self) -> (u64, u64) {
        let start = self.spans.iter().map(|s| s.start_us).min().unwrap_or(0);
        let end = self.spans.iter().map(Span::end_us).max().unwrap_or(start);
        (start, end)
    }
}

/// The trace id of a span the embedded receiver collected: the one place
/// where the receiver's text form becomes a [`TraceId`]. `None` for an id
/// OTLP does not allow (empty, or longer than 16 bytes): no view and no
/// Jaeger could name such a trace.
pub fn collected_trace_id(span: &CollectedSpan) -> Option<TraceId> {
    TraceId::parse(&span.trace_id).ok()
}

fn span_from_collected(span: &CollectedSpan) -> Span {
    let attributes = |map: &BTreeMap<String, AttrValue>| -> BTreeMap<String, Value> {
        map.iter()
            .map(|(k, v)| (k.clone(), Value::from(v)))
            .collect()
    };
    let mut resource = attributes(&span.resource);
    resource.remove("service.name");
    Span {
        span_id: span.span_id.to_ascii_lowercase(),
        parent_id: span.parent_span_id.as_ref().map(|p| p.to_ascii_lowercase()),
        service: span.service_name.clone(),
        name: span.name.clone(),
        kind: span.kind,
        start_us: span.start_unix_nanos / 1000,
        duration_us: span.duration().as_micros().try_into().unwrap_or(u64::MAX),
        status: match span.status_code {
            otlp_receiver::StatusCode::Unset => Status::Unset,
            otlp_receiver::StatusCode::Ok => Status::Ok,
            otlp_receiver::StatusCode::Error => Status::Error(span.status_message.clone()),
        },
        scope: span.scope_name.clone(),
        attributes: attributes(&span.attributes),
        resource,
        events: span
            .events
            .iter()
            .map(|e| Event {
                time_us: e.time_unix_nanos / 1000,
                name: e.name.clone(),
                attributes: attributes(&e.attributes),
            })
            .collect(),
        // A link to a trace id OTLP does not allow leads nowhere: left out.
        links: span
            .links
            .iter()
            .filter_map(|l| {
                Some(Link {
                    trace_id: TraceId::parse(&l.trace_id).ok()?,
                    span_id: l.span_id.to_ascii_lowercase(),
                })
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use otlp_receiver::{SpanEvent, SpanLink};

    fn collected() -> CollectedSpan {
        CollectedSpan {
            service_name: "user-service".into(),
            resource: [
                (
                    "service.name".to_owned(),
                    AttrValue::String("user-service".into()),
                ),
                ("host.name".to_owned(), AttrValue::String("box".into())),
            ]
            .into(),
            scope_name: "tracing-opentelemetry".into(),
            trace_id: "0AF7651916CD43DD8448EB211C80319C".into(),
            span_id: "B7AD6B7169203331".into(),
            parent_span_id: Some("00F067AA0BA902B7".into()),
            trace_state: String::new(),
            flags: 1,
            name: "GET /users/{id}".into(),
            kind: otlp_receiver::SpanKind::Server,
            start_unix_nanos: 1_700_000_000_123_456_789,
            end_unix_nanos: 1_700_000_000_225_456_000,
            attributes: [
                (
                    "http.route".to_owned(),
                    AttrValue::String("/users/{id}".into()),
                ),
                ("http.response.status_code".to_owned(), AttrValue::Int(500)),
                (
                    "tags".to_owned(),
                    AttrValue::Array(vec![AttrValue::Int(1), AttrValue::Int(2)]),
                ),
            ]
            .into(),
            events: vec![SpanEvent {
                name: "exception".into(),
                time_unix_nanos: 1_700_000_000_200_000_999,
                attributes: [(
                    "exception.message".to_owned(),
                    AttrValue::String("boom".into()),
                )]
                .into(),
            }],
            links: vec![SpanLink {
                trace_id: "AB".repeat(16),
                span_id: "CD".repeat(8),
                attributes: Default::default(),
            }],
            status_code: otlp_receiver::StatusCode::Error,
            status_message: "boom".into(),
        }
    }

    #[test]
    fn collected_spans_become_the_model_in_microseconds() {
        let trace = Trace::from_collected(&[collected()]).unwrap();
        assert_eq!(
            trace.trace_id.to_string(),
            "0af7651916cd43dd8448eb211c80319c"
        );
        let span = &trace.spans[0];
        assert_eq!(span.span_id, "b7ad6b7169203331");
        assert_eq!(span.parent_id.as_deref(), Some("00f067aa0ba902b7"));
        assert_eq!(span.kind, SpanKind::Server);
        // Start and duration are each rounded down, as Jaeger does.
        assert_eq!(span.start_us, 1_700_000_000_123_456);
        assert_eq!(span.duration_us, 101_999);
        assert_eq!(span.status, Status::Error("boom".into()));
        assert!(span.is_error());
        assert_eq!(span.scope, "tracing-opentelemetry");
        assert_eq!(
            span.attributes["http.response.status_code"],
            Value::Int(500)
        );
        assert_eq!(span.attributes["tags"], Value::String("[1, 2]".into()));
        assert_eq!(
            span.resource,
            [("host.name".to_owned(), Value::String("box".into()))].into(),
            "service.name is the span's service, not a process tag"
        );
        assert_eq!(span.events[0].time_us, 1_700_000_000_200_000);
        assert_eq!(span.links[0].span_id, "cd".repeat(8));
        assert_eq!(span.links[0].trace_id.to_string(), "ab".repeat(16));
    }

    #[test]
    fn an_empty_trace_is_none_and_ranges_cover_every_span() {
        assert!(Trace::from_collected(&[]).is_none());
        let mut nameless = collected();
        nameless.trace_id = String::new();
        assert!(Trace::from_collected(&[nameless]).is_none());
        let mut late = collected();
        late.span_id = "1".repeat(16);
        late.start_unix_nanos += 500_000_000;
        late.end_unix_nanos += 900_000_000;
        let trace = Trace::from_collected(&[collected(), late]).unwrap();
        assert_eq!(
            trace.time_range(),
            (1_700_000_000_123_456, 1_700_000_001_125_455)
        );
    }
}
