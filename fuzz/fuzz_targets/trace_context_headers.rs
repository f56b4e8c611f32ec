//! The whole request side of propagation, as a service runs it: a header
//! map with any number of `traceparent`, `tracestate` and `baggage` lines,
//! read through `HeaderLines` by the installed propagators, then written
//! out again for a downstream call.
//!
//! Input: a header block, one `name: value` line per `\n` (lines that are
//! not a valid header are skipped, as a server would never see them).
//! Properties: no panic; the extracted parent is exactly what the
//! `traceparent` parser makes of every line (none: no parent); the
//! `tracestate` is kept only with a parent, sent on exactly as parsed, and
//! recorded beside the span only when the SDK cannot hold all of it; the
//! outgoing headers parse again; baggage keys and values survive a second
//! hop unchanged.
#![no_main]

use std::sync::Once;

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use opentelemetry::baggage::BaggageExt;
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::{TraceContextExt, TraceFlags};
use telemetry::propagation::{self, traceparent, tracestate, HeaderLines};

static INSTALL: Once = Once::new();

fuzz_target!(|data: &[u8]| {
    INSTALL.call_once(propagation::install);
    let headers = header_map(data);
    let lines = HeaderLines(&headers);
    let traceparent_lines = lines.get_all(traceparent::TRACEPARENT).unwrap_or_default();
    let tracestate_lines = lines.get_all(tracestate::TRACESTATE).unwrap_or_default();

    let cx = propagation::extract(&headers);
    let span = cx.span();
    let remote = span.span_context();
    let mut outgoing = HeaderMap::new();
    propagation::inject(&cx, &mut outgoing);

    match traceparent::parse_lines(&traceparent_lines) {
        Ok(Some(parent)) => {
            assert!(remote.is_valid() && remote.is_remote());
            assert_eq!(remote.trace_id(), parent.trace_id);
            assert_eq!(remote.span_id(), parent.parent_id);
            assert_eq!(remote.trace_flags(), TraceFlags::new(parent.known_flags()));

            let sent = outgoing[traceparent::TRACEPARENT].to_str().unwrap();
            let expected = traceparent::Traceparent {
                version: 0,
                flags: parent.known_flags(),
                ..parent
            };
            assert_eq!(sent, expected.to_string());

            let list = tracestate::parse_lines(&tracestate_lines).ok().flatten();
            let sent_state = outgoing
                .get(tracestate::TRACESTATE)
                .map(|v| v.to_str().unwrap().to_owned());
            assert_eq!(sent_state, list.as_ref().map(ToString::to_string));
            let exact = list.as_ref().is_none_or(|l| l.to_sdk().is_exact());
            assert_eq!(
                propagation::tracestate_beyond_sdk(&cx),
                (!exact).then(|| sent_state.clone().unwrap())
            );
        }
        Ok(None) | Err(_) => {
            assert!(!remote.is_valid());
            assert!(outgoing.get(traceparent::TRACEPARENT).is_none());
            assert!(outgoing.get(tracestate::TRACESTATE).is_none());
            assert_eq!(propagation::tracestate_beyond_sdk(&cx), None);
        }
    }

    // The next hop (a mock, behind the aggregator) reads the keys and values
    // this one read: what the overrides obey. Within what the 0.32 SDK's
    // BaggagePropagator writes back faithfully: it does not percent-encode
    // a '%' (a decoded `%25` goes out bare and is decoded again) nor any
    // metadata (a decoded `%2C` there starts a new member, a decoded control
    // character makes the whole header invalid, so it is not sent); the
    // overrides use neither.
    let faithful = cx.baggage().iter().all(|(key, (value, metadata))| {
        !key.as_str().contains('%') && !value.as_str().contains('%') && metadata.as_str().is_empty()
    });
    let fits = outgoing
        .get("baggage")
        .is_none_or(|v| v.len() <= MAX_BAGGAGE_LENGTH);
    if faithful && fits {
        let next = propagation::extract(&outgoing);
        assert_eq!(entries(&cx), entries(&next));
    }
});

/// The W3C Baggage limit the SDK drops a longer header at (percent-encoding
/// can make the outgoing header longer than the incoming one).
const MAX_BAGGAGE_LENGTH: usize = 8192;

/// The baggage of `cx` as `(key, value)`, sorted.
fn entries(cx: &opentelemetry::Context) -> Vec<(String, String)> {
    let mut entries: Vec<_> = cx
        .baggage()
        .iter()
        .map(|(key, (value, _))| (key.to_string(), value.as_str().to_owned()))
        .collect();
    entries.sort();
    entries
}

/// `name: value` lines; every line a server could receive is appended, in
/// order, so repeated names become repeated header lines.
fn header_map(data: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for line in data.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            headers.append(name, value);
        }
    }
    headers
}
