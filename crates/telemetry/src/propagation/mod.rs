//! W3C Trace Context (Level 1, plus the current Level 2 draft's `tracestate`
//! key grammar, duplicate-key rule and random flag) and W3C Baggage.
//!
//! The OpenTelemetry API's global propagator is a no-op until something
//! installs a real one; with the no-op, no `traceparent` is ever sent and every
//! service starts its own trace. [`install_chosen`] is called by
//! [`crate::init()`] with `OTEL_PROPAGATORS`' choice, so a service cannot
//! forget it.
//!
//! The stock `TraceContextPropagator` is lenient where the specification is
//! not (first header line only, loose id and key checks, no white-space
//! trimming, flags masked to `sampled`), so Trace Context is ours:
//!
//! - [`traceparent`]: parsing and writing the `traceparent` header;
//! - [`tracestate`]: combining, parsing and writing the `tracestate` list;
//! - [`W3cTraceContextPropagator`]: the two together, and what the SDK
//!   cannot carry from the incoming request to the outgoing calls;
//! - [`HeaderLines`]: a header carrier that shows the propagator every line;
//! - [`response`]: the response side, `traceresponse`, through its own seam;
//! - [`BoundedBaggagePropagator`]: the SDK's Baggage, screened so a
//!   malformed header is logged short and rarely.
//!
//! Every entry point below goes through the installed propagators, so the
//! SERVER middleware, the traced client and tests all see the same rules —
//! on the way in, on the way out and in the answer.

mod baggage;
mod carrier;
mod incoming;
mod propagator;
pub mod response;
pub mod traceparent;
pub mod tracestate;

pub use baggage::BoundedBaggagePropagator;
pub use carrier::HeaderLines;
use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry::Context;
pub use propagator::W3cTraceContextPropagator;
pub use response::{ResponsePropagator, TRACERESPONSE};

/// Installs W3C Trace Context (random trace-ids, as [`crate::init()`]'s
/// provider makes them) and Baggage, `OTEL_PROPAGATORS`' default: see
/// [`install_chosen`].
pub fn install() {
    install_chosen(crate::config::Propagators::default());
}

/// Installs what `OTEL_PROPAGATORS` chose ([`crate::config::Propagators`])
/// on both sides of the process: W3C Trace Context as a request propagator
/// (`traceparent`/`tracestate` in and out) and as the response propagator
/// (`traceresponse`), so one configuration decides what all three headers
/// say; W3C Baggage beside it; either alone, or none.
pub fn install_chosen(chosen: crate::config::Propagators) {
    let trace_context = W3cTraceContextPropagator::new();
    if chosen.trace_context {
        response::set_response_propagator(trace_context.clone());
    } else {
        response::set_response_propagator(response::NoopResponsePropagator);
    }
    let mut propagators: Vec<Box<dyn opentelemetry::propagation::TextMapPropagator + Send + Sync>> =
        Vec::new();
    if chosen.trace_context {
        propagators.push(Box::new(trace_context));
    }
    if chosen.baggage {
        propagators.push(Box::new(BoundedBaggagePropagator::new()));
    }
    opentelemetry::global::set_text_map_propagator(TextMapCompositePropagator::new(propagators));
}

/// The remote context carried by incoming request headers (an empty context
/// when there is none or it is invalid, which makes the server span a root).
/// Every header line is read ([`HeaderLines`]), not just the first.
pub fn extract(headers: &http::HeaderMap) -> Context {
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderLines(headers))
    })
}

/// Writes `cx` into outgoing headers through the global propagator.
pub fn inject(cx: &Context, headers: &mut http::HeaderMap) {
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(cx, &mut opentelemetry_http::HeaderInjector(headers))
    });
}

/// Writes what a caller should learn about the trace of `cx` (the SERVER
/// span's context) into response headers, through the installed
/// [`ResponsePropagator`]: `traceresponse` once [`install`] has run.
pub fn inject_response(cx: &Context, headers: &mut http::HeaderMap) {
    response::response_propagator()
        .inject_response(cx, &mut opentelemetry_http::HeaderInjector(headers));
}

/// Span attribute holding the `tracestate` a request carried (validated:
/// white space trimmed, later duplicates discarded — the list passed on),
/// set on the SERVER span only when the span's `trace_state` cannot hold
/// all of it: the 0.32 SDK's `TraceState` refuses keys the current grammar
/// allows and has no unchecked constructor. Not `w3c.tracestate`: that is
/// the tag Jaeger and the Collector's translators make of `trace_state`
/// itself, which then shows the part the SDK kept.
pub const TRACESTATE_RECEIVED_ATTRIBUTE: &str = "w3c.tracestate.received";

/// The incoming `tracestate` of `cx` (a context [`extract`] returned), when
/// the SDK's `TraceState` holds only part of it: what the SERVER span
/// records as [`TRACESTATE_RECEIVED_ATTRIBUTE`]. `None` when the span's
/// `trace_state` is the whole list, or there is none.
pub fn tracestate_beyond_sdk(cx: &Context) -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    let span = cx.span();
    incoming::IncomingTrace::of(cx, span.span_context())?.tracestate_beyond_sdk()
}

/// Whether `value` is a valid `traceparent` (see [`traceparent::parse`]).
pub fn is_valid_traceparent(value: &str) -> bool {
    traceparent::parse(value).is_ok()
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
        use opentelemetry::propagation::TextMapPropagator;
        use opentelemetry::trace::TraceContextExt;
        let propagator = W3cTraceContextPropagator::default();
        let mut headers = http::HeaderMap::new();
        headers.insert("traceparent", VALID.parse().unwrap());
        let cx = propagator.extract(&HeaderLines(&headers));
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
        let cx = propagator.extract(&HeaderLines(&headers));
        assert!(!cx.span().span_context().is_valid());
    }
}
