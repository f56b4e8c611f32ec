//! W3C Trace Context and W3C Baggage propagation.
//!
//! The OpenTelemetry API's global propagator is a no-op until something
//! installs a real one; with the no-op, no `traceparent` is ever sent and every
//! service starts its own trace. [`install`] is called by [`crate::init`], so a
//! service cannot forget it.

use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry::Context;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};

/// Installs `traceparent`/`tracestate` + `baggage` as the global propagator.
pub fn install() {
    opentelemetry::global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
        Box::new(BaggagePropagator::new()),
    ]));
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
