//! Spans as an OTLP `ExportTraceServiceRequest` in protobuf, written
//! straight from the SDK's `SpanData`.
//!
//! Why not the OTLP exporter's own path: it takes the batch by value, so a
//! processor that keeps a batch for a retry must copy it (every attribute
//! string), and the exporter copies it once more before turning each span
//! into generated protobuf structs (a third set of strings), which prost
//! then encodes, computing every nested length once per enclosing message.
//! Counted with callgrind, that was about 24,000 instructions per span, a
//! fifth of the aggregator's instructions per request.
//!
//! Here each span is encoded once, when it ends, on the thread that ended
//! it ([`EncodedSpan::new`]): the `SpanData` is then freed where its strings
//! were allocated (freeing them on the export thread cost the allocator a
//! cross-thread flush per batch), and the queue holds a few hundred bytes a
//! span. A span's body needs no sizing pass: only its small nested messages
//! (an attribute, an event) need their lengths first, and those are worked
//! out as they are written. The export thread then only frames the encoded
//! spans ([`Request`]): one `ResourceSpans` with the resource, encoded once,
//! and one `ScopeSpans` per instrumentation scope. A failed batch is framed
//! again from the same bytes.
//!
//! The field numbers and the proto3 rules (defaults left out, `oneof`
//! members and message fields written when present) follow
//! `opentelemetry/proto/trace/v1/trace.proto`; the tests decode the bytes
//! with the generated types and compare them with the SDK's own conversion.

use std::cell::RefCell;

use bytes::BufMut;
use opentelemetry::trace::{SpanId, Status};
use opentelemetry::{Array, InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::SpanData;
use opentelemetry_sdk::Resource;
use prost::encoding::{encode_key as prost_key, encode_varint as prost_varint, WireType};
use prost::encoding::{encoded_len_varint, key_len};

/// `SpanFlags`: the parent's `is_remote` is known (always, from this SDK) …
const CONTEXT_HAS_IS_REMOTE: u32 = 0x100;
/// … and it is remote.
const CONTEXT_IS_REMOTE: u32 = 0x200;

/// The resource part of every request, encoded once.
#[derive(Debug, Clone, Default)]
pub(crate) struct EncodedResource {
    /// `ResourceSpans.resource` (field 1), tag and length included.
    field: Vec<u8>,
    schema_url: String,
}

impl EncodedResource {
    pub(crate) fn new(resource: &Resource) -> Self {
        let attributes: Vec<KeyValue> = resource
            .iter()
            .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
            .collect();
        let body: usize = attributes.iter().map(|kv| message_len(1, kv_len(kv))).sum();
        let mut field = Vec::with_capacity(message_len(1, body));
        put_len(&mut field, 1, body);
        for kv in &attributes {
            put_kv(&mut field, 1, kv);
        }
        Self {
            field,
            schema_url: resource.schema_url().unwrap_or_default().to_owned(),
        }
    }
}

/// One ended span as the body of an OTLP `Span` message, and the scope it
/// is reported under.
#[derive(Debug, Clone)]
pub(crate) struct EncodedSpan {
    scope: InstrumentationScope,
    body: Box<[u8]>,
}

thread_local! {
    /// Where a span is written before it is copied out at its exact size:
    /// one buffer per thread, reused, so encoding allocates once a span.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A scratch buffer that grew past this (a span with huge attributes) is
/// given back rather than kept for the thread's lifetime.
const SCRATCH_KEPT: usize = 64 * 1024;

impl EncodedSpan {
    /// Encodes `span`, which is dropped here, on the caller's thread.
    pub(crate) fn new(span: SpanData) -> Self {
        // The thread's scratch buffer, unless it is gone (a span ended by a
        // thread-local destructor) or in use: then a fresh one.
        let body = SCRATCH
            .try_with(|scratch| match scratch.try_borrow_mut() {
                Ok(mut scratch) => encode_body(&mut scratch, &span),
                Err(_) => encode_body(&mut Vec::new(), &span),
            })
            .unwrap_or_else(|_| encode_body(&mut Vec::new(), &span));
        Self {
            scope: span.instrumentation_scope,
            body,
        }
    }
}

/// `span`'s body written into `scratch`, copied out at its exact size.
fn encode_body(scratch: &mut Vec<u8>, span: &SpanData) -> Box<[u8]> {
    scratch.clear();
    put_span(scratch, span);
    let body = Box::<[u8]>::from(&scratch[..]);
    if scratch.capacity() > SCRATCH_KEPT {
        *scratch = Vec::new();
    }
    body
}

/// An `ExportTraceServiceRequest` for a batch of encoded spans, laid out:
/// its length is known before a byte is written, so it can go straight
/// into a transport's buffer.
pub(crate) struct Request<'a> {
    resource: &'a EncodedResource,
    spans: &'a [EncodedSpan],
    /// Each scope, in order of first appearance, with its spans (indexes
    /// into `spans`) and the length of its `ScopeSpans`.
    scopes: Vec<(&'a InstrumentationScope, Vec<usize>, usize)>,
    /// The length of the `ResourceSpans`.
    resource_spans: usize,
}

impl<'a> Request<'a> {
    pub(crate) fn new(spans: &'a [EncodedSpan], resource: &'a EncodedResource) -> Self {
        // Scopes are few (usually one): a linear search keeps their order.
        let mut scopes: Vec<(&InstrumentationScope, Vec<usize>, usize)> = Vec::new();
        for (i, span) in spans.iter().enumerate() {
            let scope = &span.scope;
            match scopes.iter_mut().find(|(s, _, _)| *s == scope) {
                Some((_, members, _)) => members.push(i),
                None => scopes.push((scope, vec![i], 0)),
            }
        }
        for (scope, members, len) in &mut scopes {
            *len = message_len(1, scope_len(scope))
                + members
                    .iter()
                    .map(|&i| message_len(2, spans[i].body.len()))
                    .sum::<usize>()
                + str_len(3, scope.schema_url().unwrap_or_default());
        }
        let resource_spans = resource.field.len()
            + scopes
                .iter()
                .map(|(_, _, len)| message_len(2, *len))
                .sum::<usize>()
            + str_len(3, &resource.schema_url);
        Self {
            resource,
            spans,
            scopes,
            resource_spans,
        }
    }

    /// The request's length in bytes.
    pub(crate) fn len(&self) -> usize {
        message_len(1, self.resource_spans)
    }

    /// Writes the request into `buf`.
    pub(crate) fn write(&self, buf: &mut impl BufMut) {
        frame(buf, 1, self.resource_spans);
        buf.put_slice(&self.resource.field);
        for (scope, members, len) in &self.scopes {
            frame(buf, 2, *len);
            let mut head = Vec::with_capacity(message_len(1, scope_len(scope)));
            put_len(&mut head, 1, scope_len(scope));
            put_scope(&mut head, scope);
            buf.put_slice(&head);
            for &i in members {
                let body = &self.spans[i].body;
                frame(buf, 2, body.len());
                buf.put_slice(body);
            }
            let schema_url = scope.schema_url().unwrap_or_default();
            if !schema_url.is_empty() {
                frame(buf, 3, schema_url.len());
                buf.put_slice(schema_url.as_bytes());
            }
        }
        if !self.resource.schema_url.is_empty() {
            frame(buf, 3, self.resource.schema_url.len());
            buf.put_slice(self.resource.schema_url.as_bytes());
        }
    }

    /// The request as one buffer of its exact size.
    pub(crate) fn to_vec(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(self.len());
        self.write(&mut buf);
        debug_assert_eq!(buf.len(), self.len(), "sized exactly");
        buf
    }
}

/// A length-delimited field's tag and length, into any buffer.
fn frame(buf: &mut impl BufMut, tag: u32, len: usize) {
    prost_key(tag, WireType::LengthDelimited, buf);
    prost_varint(len as u64, buf);
}

// --- sizes -----------------------------------------------------------------

/// A length-delimited field of `len` bytes: tag, length, body.
#[inline(always)]
fn message_len(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

/// A proto3 string or bytes field: left out when empty.
#[inline(always)]
fn str_len(tag: u32, s: &str) -> usize {
    bytes_len(tag, s.as_bytes())
}

fn bytes_len(tag: u32, b: &[u8]) -> usize {
    if b.is_empty() {
        0
    } else {
        message_len(tag, b.len())
    }
}

fn varint_len(tag: u32, v: u64) -> usize {
    if v == 0 {
        0
    } else {
        key_len(tag) + encoded_len_varint(v)
    }
}

fn fixed64_len(tag: u32, v: u64) -> usize {
    if v == 0 {
        0
    } else {
        key_len(tag) + 8
    }
}

fn fixed32_len(tag: u32, v: u32) -> usize {
    if v == 0 {
        0
    } else {
        key_len(tag) + 4
    }
}

fn kv_len(kv: &KeyValue) -> usize {
    str_len(1, kv.key.as_str()) + message_len(2, any_len(&kv.value))
}

fn kvs_len(tag: u32, kvs: &[KeyValue]) -> usize {
    kvs.iter().map(|kv| message_len(tag, kv_len(kv))).sum()
}

/// `AnyValue`: a `oneof`, written even when it holds a default value.
#[inline(always)]
fn any_len(value: &Value) -> usize {
    match value {
        Value::Bool(_) => key_len(2) + 1,
        Value::I64(v) => key_len(3) + encoded_len_varint(*v as u64),
        Value::F64(_) => key_len(4) + 8,
        Value::String(s) => message_len(1, s.as_str().len()),
        Value::Array(array) => message_len(5, array_len(array)),
        other => message_len(1, other.as_str().len()),
    }
}

/// `ArrayValue`: each element an `AnyValue` in field 1.
fn array_len(array: &Array) -> usize {
    match array {
        Array::Bool(v) => v.len() * message_len(1, key_len(2) + 1),
        Array::I64(v) => v
            .iter()
            .map(|i| message_len(1, key_len(3) + encoded_len_varint(*i as u64)))
            .sum(),
        Array::F64(v) => v.len() * message_len(1, key_len(4) + 8),
        Array::String(v) => v
            .iter()
            .map(|s| message_len(1, message_len(1, s.as_str().len())))
            .sum(),
        other => message_len(1, message_len(1, other.to_string().len())),
    }
}

fn scope_len(scope: &InstrumentationScope) -> usize {
    str_len(1, scope.name())
        + str_len(2, scope.version().unwrap_or_default())
        + scope
            .attributes()
            .map(|kv| message_len(3, kv_len(kv)))
            .sum::<usize>()
}

fn status_len(status: &Status) -> usize {
    match status {
        Status::Unset => 0,
        Status::Ok => varint_len(3, 1),
        Status::Error { description } => str_len(2, description) + varint_len(3, 2),
    }
}

fn event_len(event: &opentelemetry::trace::Event) -> usize {
    fixed64_len(1, nanos(event.timestamp))
        + str_len(2, &event.name)
        + kvs_len(3, &event.attributes)
        + varint_len(4, u64::from(event.dropped_attributes_count))
}

fn link_len(link: &opentelemetry::trace::Link) -> usize {
    let context = &link.span_context;
    message_len(1, 16)
        + message_len(2, 8)
        + str_len(3, &context.trace_state().header())
        + kvs_len(4, &link.attributes)
        + varint_len(5, u64::from(link.dropped_attributes_count))
        + fixed32_len(6, span_flags(context.is_remote(), context))
}

// --- writing ----------------------------------------------------------------
//
// Varints by hand rather than prost's `encode_varint`: it is generic over
// `BufMut` and was not inlined here, a fifth of the encoding's instructions.

/// Protobuf wire types.
const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LENGTH_DELIMITED: u32 = 2;
const FIXED32: u32 = 5;

#[inline(always)]
fn encode_varint(mut v: u64, buf: &mut Vec<u8>) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

#[inline(always)]
fn encode_key(tag: u32, wire_type: u32, buf: &mut Vec<u8>) {
    encode_varint(u64::from((tag << 3) | wire_type), buf);
}

/// A field's key. Every key here is one byte (field numbers below 16).
#[inline(always)]
fn key_byte(tag: u32, wire_type: u32) -> Option<u8> {
    u8::try_from((tag << 3) | wire_type)
        .ok()
        .filter(|k| *k < 0x80)
}

/// A length-delimited field's key and length. The usual case, a short
/// body, is two bytes in one write instead of a varint loop each.
#[inline(always)]
fn put_len(buf: &mut Vec<u8>, tag: u32, len: usize) {
    match key_byte(tag, LENGTH_DELIMITED) {
        Some(key) if len < 0x80 => buf.extend_from_slice(&[key, len as u8]),
        _ => {
            encode_key(tag, LENGTH_DELIMITED, buf);
            encode_varint(len as u64, buf);
        }
    }
}

#[inline(always)]
fn put_str(buf: &mut Vec<u8>, tag: u32, s: &str) {
    put_bytes(buf, tag, s.as_bytes());
}

#[inline(always)]
fn put_bytes(buf: &mut Vec<u8>, tag: u32, b: &[u8]) {
    if !b.is_empty() {
        put_len(buf, tag, b.len());
        buf.extend_from_slice(b);
    }
}

fn put_varint(buf: &mut Vec<u8>, tag: u32, v: u64) {
    if v != 0 {
        encode_key(tag, VARINT, buf);
        encode_varint(v, buf);
    }
}

#[inline(always)]
fn put_fixed64(buf: &mut Vec<u8>, tag: u32, v: u64) {
    if v != 0 {
        encode_key(tag, FIXED64, buf);
        buf.extend_from_slice(&v.to_le_bytes());
    }
}

fn put_fixed32(buf: &mut Vec<u8>, tag: u32, v: u32) {
    if v != 0 {
        encode_key(tag, FIXED32, buf);
        buf.extend_from_slice(&v.to_le_bytes());
    }
}

#[inline]
fn put_kv(buf: &mut Vec<u8>, tag: u32, kv: &KeyValue) {
    let key = kv.key.as_str();
    let value = any_len(&kv.value);
    let body = str_len(1, key) + message_len(2, value);
    // One capacity check for the whole attribute; the writes below then
    // never grow the buffer.
    buf.reserve(message_len(tag, body));
    put_len(buf, tag, body);
    put_str(buf, 1, key);
    put_len(buf, 2, value);
    put_any(buf, &kv.value);
}

fn put_kvs(buf: &mut Vec<u8>, tag: u32, kvs: &[KeyValue]) {
    for kv in kvs {
        put_kv(buf, tag, kv);
    }
}

/// The body of an `AnyValue`.
#[inline(always)]
fn put_any(buf: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Bool(b) => {
            encode_key(2, VARINT, buf);
            buf.push(u8::from(*b));
        }
        Value::I64(v) => {
            encode_key(3, VARINT, buf);
            encode_varint(*v as u64, buf);
        }
        Value::F64(v) => {
            encode_key(4, FIXED64, buf);
            buf.extend_from_slice(&v.to_bits().to_le_bytes());
        }
        Value::String(s) => put_any_string(buf, s.as_str()),
        Value::Array(array) => {
            put_len(buf, 5, array_len(array));
            put_array(buf, array);
        }
        other => put_any_string(buf, &other.as_str()),
    }
}

/// `AnyValue.string_value`, written even when empty (a `oneof` member).
#[inline(always)]
fn put_any_string(buf: &mut Vec<u8>, s: &str) {
    put_len(buf, 1, s.len());
    buf.extend_from_slice(s.as_bytes());
}

fn put_array(buf: &mut Vec<u8>, array: &Array) {
    let element = |buf: &mut Vec<u8>, value: Value| {
        put_len(buf, 1, any_len(&value));
        put_any(buf, &value);
    };
    match array {
        Array::Bool(v) => v.iter().for_each(|b| element(buf, Value::Bool(*b))),
        Array::I64(v) => v.iter().for_each(|i| element(buf, Value::I64(*i))),
        Array::F64(v) => v.iter().for_each(|f| element(buf, Value::F64(*f))),
        Array::String(v) => v.iter().for_each(|s| {
            put_len(buf, 1, message_len(1, s.as_str().len()));
            put_any_string(buf, s.as_str());
        }),
        other => element(buf, Value::String(StringValue::from(other.to_string()))),
    }
}

fn put_scope(buf: &mut Vec<u8>, scope: &InstrumentationScope) {
    put_str(buf, 1, scope.name());
    put_str(buf, 2, scope.version().unwrap_or_default());
    for kv in scope.attributes() {
        put_kv(buf, 3, kv);
    }
}

/// The body of a `Span` message: the fields in order, each nested message
/// sized just before it is written.
fn put_span(buf: &mut Vec<u8>, span: &SpanData) {
    let context = &span.span_context;
    put_bytes(buf, 1, &context.trace_id().to_bytes());
    put_bytes(buf, 2, &context.span_id().to_bytes());
    if context.trace_state() != &opentelemetry::trace::TraceState::NONE {
        put_str(buf, 3, &context.trace_state().header());
    }
    if let Some(parent) = parent_bytes(span) {
        put_bytes(buf, 4, &parent);
    }
    put_fixed32(buf, 16, span_flags(span.parent_span_is_remote, context));
    put_str(buf, 5, &span.name);
    put_varint(buf, 6, span_kind(&span.span_kind));
    put_fixed64(buf, 7, nanos(span.start_time));
    put_fixed64(buf, 8, nanos(span.end_time));
    put_kvs(buf, 9, &span.attributes);
    put_varint(buf, 10, u64::from(span.dropped_attributes_count));
    for event in &span.events.events {
        put_len(buf, 11, event_len(event));
        put_fixed64(buf, 1, nanos(event.timestamp));
        put_str(buf, 2, &event.name);
        put_kvs(buf, 3, &event.attributes);
        put_varint(buf, 4, u64::from(event.dropped_attributes_count));
    }
    put_varint(buf, 12, u64::from(span.events.dropped_count));
    for link in &span.links.links {
        let context = &link.span_context;
        put_len(buf, 13, link_len(link));
        put_bytes(buf, 1, &context.trace_id().to_bytes());
        put_bytes(buf, 2, &context.span_id().to_bytes());
        put_str(buf, 3, &context.trace_state().header());
        put_kvs(buf, 4, &link.attributes);
        put_varint(buf, 5, u64::from(link.dropped_attributes_count));
        put_fixed32(buf, 6, span_flags(context.is_remote(), context));
    }
    put_varint(buf, 14, u64::from(span.links.dropped_count));
    put_len(buf, 15, status_len(&span.status));
    match &span.status {
        Status::Unset => {}
        Status::Ok => put_varint(buf, 3, 1),
        Status::Error { description } => {
            put_str(buf, 2, description);
            put_varint(buf, 3, 2);
        }
    }
}

// --- values as the SDK's conversion gives them ----------------------------

fn parent_bytes(span: &SpanData) -> Option<[u8; 8]> {
    (span.parent_span_id != SpanId::INVALID).then(|| span.parent_span_id.to_bytes())
}

fn span_flags(parent_is_remote: bool, context: &opentelemetry::trace::SpanContext) -> u32 {
    let mut flags = u32::from(context.trace_flags().to_u8()) | CONTEXT_HAS_IS_REMOTE;
    if parent_is_remote {
        flags |= CONTEXT_IS_REMOTE;
    }
    flags
}

/// `Span.SpanKind` numbers.
fn span_kind(kind: &opentelemetry::trace::SpanKind) -> u64 {
    use opentelemetry::trace::SpanKind;
    match kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

fn nanos(time: std::time::SystemTime) -> u64 {
    time.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::time::{Duration, SystemTime};

    use opentelemetry::trace::{
        Event, Link, SpanContext, SpanKind, TraceFlags, TraceId, TraceState,
    };
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
    use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    use proptest::prelude::*;
    use prost::Message as _;

    use super::*;

    fn context(trace: u128, span: u64, remote: bool, state: &str) -> SpanContext {
        SpanContext::new(
            TraceId::from(trace),
            SpanId::from(span),
            TraceFlags::SAMPLED,
            remote,
            state.parse::<TraceState>().unwrap(),
        )
    }

    fn span(name: &str, attributes: Vec<KeyValue>, scope: &InstrumentationScope) -> SpanData {
        let start = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_764_000_000_123_456_789);
        SpanData {
            span_context: context(
                0x0af7651916cd43dd8448eb211c80319c,
                0xb7ad6b7169203331,
                false,
                "",
            ),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Server,
            name: Cow::Owned(name.to_owned()),
            start_time: start,
            end_time: start + Duration::from_micros(20_345),
            attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: scope.clone(),
        }
    }

    fn every_kind_of_value() -> Vec<KeyValue> {
        vec![
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("empty", ""),
            KeyValue::new("", "an empty key"),
            KeyValue::new("yes", true),
            KeyValue::new("no", false),
            KeyValue::new("zero", 0_i64),
            KeyValue::new("negative", -42_i64),
            KeyValue::new("big", i64::MAX),
            KeyValue::new("pi", std::f64::consts::PI),
            KeyValue::new("float zero", 0.0),
            KeyValue::new("bools", Value::Array(Array::Bool(vec![true, false]))),
            KeyValue::new("ints", Value::Array(Array::I64(vec![0, -1, 300]))),
            KeyValue::new("floats", Value::Array(Array::F64(vec![0.0, -2.5]))),
            KeyValue::new(
                "strings",
                Value::Array(Array::String(vec!["".into(), "ünïcödé".into()])),
            ),
            KeyValue::new("no strings", Value::Array(Array::String(vec![]))),
            KeyValue::new("long", "x".repeat(300)),
        ]
    }

    /// What the OTLP exporter would send: the SDK's own conversion.
    fn reference(spans: &[SpanData], resource: &Resource) -> ExportTraceServiceRequest {
        let resource: ResourceAttributesWithSchema = resource.into();
        ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(spans.to_vec(), &resource),
        }
    }

    /// Scope groups and resource attributes come out of hash maps in the
    /// reference: order them before comparing.
    fn normalised(mut request: ExportTraceServiceRequest) -> ExportTraceServiceRequest {
        for rs in &mut request.resource_spans {
            if let Some(resource) = &mut rs.resource {
                resource.attributes.sort_by(|a, b| a.key.cmp(&b.key));
            }
            rs.scope_spans
                .sort_by_key(|s| s.scope.as_ref().map(|s| s.name.clone()));
        }
        request
    }

    fn ours(spans: &[SpanData], resource: &Resource) -> ExportTraceServiceRequest {
        let encoded: Vec<EncodedSpan> = spans.iter().cloned().map(EncodedSpan::new).collect();
        let resource = EncodedResource::new(resource);
        let bytes = Request::new(&encoded, &resource).to_vec();
        ExportTraceServiceRequest::decode(&bytes[..]).expect("our bytes decode")
    }

    fn resource() -> Resource {
        Resource::builder_empty()
            .with_attributes([
                KeyValue::new("service.name", "profile-aggregator"),
                KeyValue::new("service.instance.id", "a1b2"),
                KeyValue::new("process.pid", 4242_i64),
            ])
            .with_schema_url(
                Vec::<KeyValue>::new(),
                "https://opentelemetry.io/schemas/1.38.0",
            )
            .build()
    }

    #[test]
    fn a_batch_decodes_to_what_the_sdks_own_conversion_gives() {
        let scope = InstrumentationScope::builder("latency-lab").build();
        let other = InstrumentationScope::builder("other")
            .with_version("1.2.3")
            .with_schema_url("https://example.com/schema")
            .with_attributes([KeyValue::new("scope.attr", 7_i64)])
            .build();
        let mut server = span("GET /user-profile/{id}", every_kind_of_value(), &scope);
        server.parent_span_id = SpanId::from(0x1122334455667788);
        server.parent_span_is_remote = true;
        server.span_context = context(1, 2, false, "vendor=value,other=x");
        server.status = Status::error("HTTP 503");
        server.dropped_attributes_count = 3;
        server.events.events.push(Event::new(
            "exception",
            SystemTime::UNIX_EPOCH + Duration::from_secs(1),
            vec![KeyValue::new("exception.message", "boom")],
            1,
        ));
        server.events.dropped_count = 2;
        server.links.links.push(Link::new(
            context(9, 8, true, "k=v"),
            vec![KeyValue::new("link.attr", true)],
            4,
        ));
        server.links.dropped_count = 5;
        let mut client = span("GET /users/{id}", vec![], &other);
        client.span_kind = SpanKind::Client;
        client.status = Status::Ok;
        let mut internal = span("db.query SELECT users", vec![], &scope);
        internal.span_kind = SpanKind::Internal;
        internal.status = Status::error("");
        let mut producer = span("", vec![KeyValue::new("k", "v")], &scope);
        producer.span_kind = SpanKind::Producer;
        producer.start_time = SystemTime::UNIX_EPOCH;
        producer.end_time = SystemTime::UNIX_EPOCH;
        let mut consumer = span("consume", vec![], &other);
        consumer.span_kind = SpanKind::Consumer;
        let spans = vec![server, client, internal, producer, consumer];

        let resource = resource();
        assert_eq!(
            normalised(ours(&spans, &resource)),
            normalised(reference(&spans, &resource))
        );
    }

    #[test]
    fn an_empty_resource_and_an_empty_batch_still_make_valid_requests() {
        let empty = Resource::builder_empty().build();
        let scope = InstrumentationScope::builder("latency-lab").build();
        let spans = vec![span("x", vec![], &scope)];
        assert_eq!(
            normalised(ours(&spans, &empty)),
            normalised(reference(&spans, &empty))
        );
        let request = ours(&[], &empty);
        assert_eq!(request.resource_spans.len(), 1);
        assert!(request.resource_spans[0].scope_spans.is_empty());
    }

    #[test]
    fn a_huge_span_then_a_small_one_on_the_same_thread_encode_alike() {
        // The first outgrows the thread's scratch buffer (given back after
        // use); lengths of three varint bytes on every level.
        let scope = InstrumentationScope::builder("latency-lab").build();
        let huge = span(
            "big",
            vec![KeyValue::new("blob", "y".repeat(100_000))],
            &scope,
        );
        let small = span("small", vec![KeyValue::new("k", "v")], &scope);
        let spans = vec![huge, small];
        let resource = resource();
        assert_eq!(
            normalised(ours(&spans, &resource)),
            normalised(reference(&spans, &resource))
        );
        assert!(SCRATCH.with_borrow(|s| s.capacity()) <= SCRATCH_KEPT);
    }

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::I64),
            any::<f64>()
                .prop_filter("NaN is not equal to itself", |f| !f.is_nan())
                .prop_map(Value::F64),
            ".{0,40}".prop_map(|s| Value::String(s.into())),
            proptest::collection::vec(any::<i64>(), 0..4).prop_map(|v| Value::Array(Array::I64(v))),
            proptest::collection::vec(".{0,8}", 0..4)
                .prop_map(|v| Value::Array(Array::String(v.into_iter().map(Into::into).collect()))),
        ]
    }

    proptest! {
        #[test]
        fn any_attributes_decode_as_the_sdk_converts_them(
            name in ".{0,30}",
            attributes in proptest::collection::vec((".{0,20}", value()), 0..12),
            remote in any::<bool>(),
            parent in any::<u64>(),
        ) {
            let scope = InstrumentationScope::builder("latency-lab").build();
            let attributes = attributes
                .into_iter()
                .map(|(k, v)| KeyValue::new(k, v))
                .collect();
            let mut one = span(&name, attributes, &scope);
            one.parent_span_id = SpanId::from(parent);
            one.parent_span_is_remote = remote;
            let spans = vec![one];
            let resource = resource();
            prop_assert_eq!(
                normalised(ours(&spans, &resource)),
                normalised(reference(&spans, &resource))
            );
        }
    }
}
