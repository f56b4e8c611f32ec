//! W3C Trace Context and W3C Baggage propagation.
//!
//! The OpenTelemetry API's global propagator is a no-op until something
//! installs a real one; with the no-op, no `traceparent` is ever sent and every
//! service starts its own trace. [`install`] is called by [`crate::init`], so a
//! service cannot forget it.

use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{
    Extractor, Injector, TextMapCompositePropagator, TextMapPropagator,
};
use opentelemetry::Context;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};

/// Installs `traceparent`/`tracestate` + `baggage` as the global propagator.
pub fn install() {
    opentelemetry::global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
        Box::new(StrictTraceContextPropagator::default()),
        Box::new(BaggagePropagator::new()),
    ]));
}

/// W3C Trace Context with the `traceparent` syntax checked to the letter
/// before the stock propagator parses it.
///
/// The stock `TraceContextPropagator` parses ids with `from_str_radix`, so a
/// trace-id one digit short is accepted as if zero-padded. The specification
/// says such a header is invalid and the receiver must start a new trace;
/// joining a trace on a malformed id silently glues unrelated requests
/// together.
#[derive(Debug, Default)]
pub struct StrictTraceContextPropagator {
    inner: TraceContextPropagator,
}

impl TextMapPropagator for StrictTraceContextPropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        self.inner.inject_context(cx, injector)
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        match extractor.get("traceparent") {
            Some(value) if is_valid_traceparent(value) => {
                self.inner.extract_with_context(cx, extractor)
            }
            _ => cx.clone(),
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        self.inner.fields()
    }
}

/// `version-traceid-parentid-flags`, e.g.
/// `00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01`.
///
/// Lowercase hex only, exact field lengths, no all-zero ids, version `ff`
/// forbidden; version `00` is exactly 55 characters, a later version may be
/// longer provided a `-` follows the flags (its extra fields are ignored).
/// Surrounding spaces and tabs are optional white space and tolerated.
pub fn is_valid_traceparent(value: &str) -> bool {
    let value = value.trim_matches([' ', '\t']);
    let bytes = value.as_bytes();
    if bytes.len() < 55 {
        return false;
    }
    let lower_hex = |field: &[u8]| field.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let all_zero = |field: &[u8]| field.iter().all(|b| *b == b'0');
    let (version, trace_id, parent_id, flags) =
        (&bytes[0..2], &bytes[3..35], &bytes[36..52], &bytes[53..55]);
    if bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
        return false;
    }
    if !(lower_hex(version) && lower_hex(trace_id) && lower_hex(parent_id) && lower_hex(flags)) {
        return false;
    }
    if version == b"ff" || all_zero(trace_id) || all_zero(parent_id) {
        return false;
    }
    if version == b"00" {
        bytes.len() == 55
    } else {
        bytes.len() == 55 || bytes[55] == b'-'
    }
}

/// The remote context carried by incoming request headers (an empty context
/// when there is none or it is invalid, which makes the server span a root).
pub fn extract(headers: &http::HeaderMap) -> Context {
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&opentelemetry_http::HeaderExtractor(headers))
    })
}

/// Writes `cx` into outgoing headers through the global propagator.
pub fn inject(cx: &Context, headers: &mut http::HeaderMap) {
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(cx, &mut opentelemetry_http::HeaderInjector(headers))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn traceparent_syntax() {
        assert!(is_valid_traceparent(VALID));
        assert!(is_valid_traceparent(&format!(" \t{VALID}\t ")));
        assert!(is_valid_traceparent(
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds"
        ));
        for bad in [
            "",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e47366-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.extra",
            "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(!is_valid_traceparent(bad), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn extract_ignores_invalid_and_keeps_valid() {
        use opentelemetry::trace::TraceContextExt;
        let propagator = StrictTraceContextPropagator::default();
        let mut headers = http::HeaderMap::new();
        headers.insert("traceparent", VALID.parse().unwrap());
        let cx = propagator.extract(&opentelemetry_http::HeaderExtractor(&headers));
        assert_eq!(
            cx.span().span_context().trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        headers.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        let cx = propagator.extract(&opentelemetry_http::HeaderExtractor(&headers));
        assert!(!cx.span().span_context().is_valid());
    }
}
