//! The response side of propagation: what a server tells its caller about
//! the trace the request joined (W3C Trace Context Level 2 `traceresponse`).
//!
//! OpenTelemetry's `TextMapPropagator` knows two directions, inject into an
//! outgoing request and extract from an incoming one; a server's *answer* is
//! a third. [`ResponsePropagator`] is that seam, and the process has one,
//! installed next to the request-side propagator by [`super::install_chosen`]
//! from the same [`W3cTraceContextPropagator`] value: whatever configures
//! the `traceparent` sent downstream (its random-id promise, say) configures
//! the `traceresponse` sent upstream too. Until something is installed the
//! response side writes nothing, just as the request side extracts nothing.

use std::fmt;
use std::sync::{Arc, LazyLock, PoisonError, RwLock};

use opentelemetry::propagation::Injector;
use opentelemetry::Context;

use super::W3cTraceContextPropagator;

/// The W3C Trace Context Level 2 response header that tells a caller which
/// trace its request joined, without parsing the body.
pub const TRACERESPONSE: &str = "traceresponse";

/// Writes the response headers that describe the trace of a served request.
pub trait ResponsePropagator: fmt::Debug + Send + Sync {
    /// Writes into `injector` what the caller should learn about the current
    /// span of `cx` (the SERVER span); nothing without a valid span.
    fn inject_response(&self, cx: &Context, injector: &mut dyn Injector);
}

/// `traceresponse`: the same form and flags as the `traceparent` this
/// propagator sends downstream, so a caller learns the trace-id, our span
/// and whether the id is random.
impl ResponsePropagator for W3cTraceContextPropagator {
    fn inject_response(&self, cx: &Context, injector: &mut dyn Injector) {
        if let Some(parent) = self.outgoing_traceparent(cx) {
            injector.set(TRACERESPONSE, parent.to_string());
        }
    }
}

/// Writes nothing: the response side before [`super::install`].
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopResponsePropagator;

impl ResponsePropagator for NoopResponsePropagator {
    fn inject_response(&self, _cx: &Context, _injector: &mut dyn Injector) {}
}

static GLOBAL: LazyLock<RwLock<Arc<dyn ResponsePropagator>>> =
    LazyLock::new(|| RwLock::new(Arc::new(NoopResponsePropagator)));

/// Replaces the process's response propagator (as
/// `opentelemetry::global::set_text_map_propagator` does for requests).
pub fn set_response_propagator(propagator: impl ResponsePropagator + 'static) {
    *GLOBAL.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(propagator);
}

/// The process's response propagator.
pub fn response_propagator() -> Arc<dyn ResponsePropagator> {
    GLOBAL
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId};
    use opentelemetry::trace::{TraceState, Tracer, TracerProvider as _};
    use opentelemetry_sdk::trace::SdkTracerProvider;

    use super::*;

    /// A span this process started (no remote parent).
    fn local_root() -> (Context, SdkTracerProvider) {
        let provider = SdkTracerProvider::builder().build();
        let span = provider.tracer("test").start("server");
        (Context::new().with_span(span), provider)
    }

    #[test]
    fn traceresponse_has_the_traceparent_form_and_flags() {
        let (cx, _provider) = local_root();
        let sc = cx.span().span_context().clone();
        for (propagator, flags) in [
            (W3cTraceContextPropagator::new(), "03"),
            (
                W3cTraceContextPropagator::new().with_local_trace_ids_random(false),
                "01",
            ),
        ] {
            let mut headers = HashMap::new();
            propagator.inject_response(&cx, &mut headers);
            assert_eq!(
                headers[TRACERESPONSE],
                format!("00-{}-{}-{flags}", sc.trace_id(), sc.span_id())
            );
            let mut request = HashMap::new();
            opentelemetry::propagation::TextMapPropagator::inject_context(
                &propagator,
                &cx,
                &mut request,
            );
            assert_eq!(
                request["traceparent"], headers[TRACERESPONSE],
                "one configuration for both directions"
            );
        }
    }

    #[test]
    fn nothing_without_a_valid_span_or_a_propagator() {
        let mut headers = HashMap::new();
        W3cTraceContextPropagator::new().inject_response(&Context::new(), &mut headers);
        assert!(headers.is_empty());
        let remote = Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::SAMPLED,
            true,
            TraceState::NONE,
        ));
        NoopResponsePropagator.inject_response(&remote, &mut headers);
        assert!(headers.is_empty());
    }
}
