//! What the incoming headers said that the SDK's `SpanContext` cannot carry
//! to the outgoing calls by itself.
//!
//! Two facts would otherwise be lost between extraction and injection:
//!
//! - **The Level 2 random flag.** The SDK builds a span's flags from its
//!   parent's only when the span is sampled; a span the sampler drops gets
//!   `00`. An unsampled caller whose trace-id is random (`-02`) would then
//!   see us send `-00`, although the specification says a participant that
//!   continues a trace MUST pass the random flag on unchanged.
//! - **The tracestate as received.** The SDK's `TraceState` refuses keys
//!   the current grammar allows (a 14-character system-id, several `@`), so
//!   it cannot always hold the list we must forward.
//!
//! Extraction therefore stores an [`IncomingTrace`] in the `Context`, next
//! to the remote span context. tracing-opentelemetry builds every span's
//! context from its parent's (`parent_cx.with_span(span)`), so the value
//! reaches every span of the request, down to the CLIENT spans whose context
//! reqwest-tracing injects. It is bound to the trace-id, so a span of another
//! trace (a root started on a detached task, say) never picks it up.

use opentelemetry::trace::{SpanContext, TraceId, TraceState};
use opentelemetry::Context;

use super::tracestate::TraceStateList;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IncomingTrace {
    pub trace_id: TraceId,
    /// The incoming `random` flag (bit 1 of trace-flags).
    pub random: bool,
    /// The validated tracestate, `None` when absent, empty or dropped.
    pub tracestate: Option<TraceStateList>,
    /// What we put in the remote span context for the SDK: as much of
    /// [`Self::tracestate`] as it can hold. A span still carrying exactly
    /// this means nothing in the process changed the tracestate, so
    /// [`Self::tracestate`] is sent as received.
    pub sdk_trace_state: TraceState,
}

impl IncomingTrace {
    /// The incoming trace stored in `cx`, if `span` belongs to it.
    pub fn of<'a>(cx: &'a Context, span: &SpanContext) -> Option<&'a IncomingTrace> {
        cx.get::<IncomingTrace>()
            .filter(|incoming| incoming.trace_id == span.trace_id())
    }

    /// The received list, one line, when the SDK's `TraceState` (and so the
    /// `trace_state` of every exported span) holds only part of it.
    pub fn tracestate_beyond_sdk(&self) -> Option<String> {
        let list = self.tracestate.as_ref()?.to_string();
        (list != self.sdk_trace_state.header()).then_some(list)
    }
}
