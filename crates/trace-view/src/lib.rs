//! One trace viewer for the whole workspace.
//!
//! A trace can come from the embedded OTLP receiver, from a running Jaeger
//! or from a saved Jaeger JSON file; the `latency-lab` binary shows it, the
//! integration tests check it, jaeger-harness's tests read it back from
//! Jaeger. They used to carry their own trace models, Jaeger clients and
//! trace-id spellings; this crate is the single one they share:
//!
//! * [`TraceId`]: the one form of a trace id, whatever spelling it came in.
//! * [`model`]: a trace as every view sees it ([`Trace`], [`Span`]).
//! * [`jaeger_json`]: Jaeger's JSON trace format, read and written.
//! * [`JaegerClient`]: Jaeger's HTTP query API, with the polling the tests need.
//! * [`analysis`] and [`waterfall`]: self and waiting time, the critical
//!   path, and the terminal waterfall that shows them.
//! * [`terminal`]: the display flags (colour, width) and their resolution.

pub mod analysis;
mod client;
pub mod completeness;
pub mod jaeger_json;
pub mod model;
pub mod terminal;
mod trace_id;
pub mod waterfall;

pub use client::{DependencyLink, JaegerClient, JaegerError};
pub use model::{Span, Trace};
pub use trace_id::{InvalidTraceId, TraceId};
