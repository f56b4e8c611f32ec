//! Clock skew between services, corrected before the critical path is
//! computed.
//!
//! Each service stamps its spans with its own clock. When two machines'
//! clocks disagree, a server span can start before the client call that
//! made it, or end after it, and a critical path over those stamps would
//! credit the wrong operation. Clipping the child to its parent (what the
//! path does for a child that truly outlives its parent) keeps the sums
//! right but cuts real time off the callee. So a skewed callee is moved
//! instead, as Jaeger's query service does (its `ClockSkew` adjuster):
//!
//! * only where a span's parent was recorded by another process (another
//!   service, or another `service.instance.id` / `host.name` of it): within
//!   one process a clock cannot disagree with itself;
//! * only when the child does not fit within its parent: a child that fits
//!   is taken as measured, whatever the skew, since nothing can tell;
//! * a child shorter than its parent is centred in it (the network's time
//!   split evenly between request and response); a child longer than its
//!   parent gets its start aligned with the parent's, the most that can be
//!   said;
//! * the shift applies to the child's whole subtree within that process,
//!   and is worked out again at the next process boundary, after the
//!   parent has itself been moved.
//!
//! Written here rather than taken from a crate: no Rust crate carries it,
//! and it is thirty lines over trace-view's model.

use trace_view::analysis::Tree;
use trace_view::model::Value;
use trace_view::{Span, Trace};

/// `trace` with each process's clock moved into its caller's, and how many
/// spans were moved.
pub fn adjust(trace: &Trace) -> (Trace, usize) {
    let mut adjusted = trace.clone();
    // trace-view's tree: duplicated ids and parent cycles already sorted
    // out, so each span is reached once.
    let tree = Tree::new(trace);
    let mut moved = 0;
    // (span, its parent, the shift its process carries so far, µs). A
    // stack rather than recursion: a trace can be thousands of spans deep.
    let mut stack: Vec<(usize, Option<usize>, i64)> =
        tree.roots().iter().map(|&r| (r, None, 0)).collect();
    while let Some((span, parent, inherited)) = stack.pop() {
        let shift = match parent {
            Some(p) if process(&trace.spans[p]) != process(&trace.spans[span]) => {
                // The parent has already been moved; the child not yet.
                skew(&adjusted.spans[p], &trace.spans[span])
            }
            _ => inherited,
        };
        if shift != 0 {
            let s = &mut adjusted.spans[span];
            s.start_us = s.start_us.saturating_add_signed(shift);
            for event in &mut s.events {
                event.time_us = event.time_us.saturating_add_signed(shift);
            }
            moved += 1;
        }
        for &child in tree.children(span) {
            stack.push((child, Some(span), shift));
        }
    }
    (adjusted, moved)
}

/// The process a span was recorded by: its service, told apart by instance
/// or host when the resource says.
fn process(span: &Span) -> (&str, Option<&Value>) {
    let resource = &span.resource;
    (
        span.service.as_str(),
        resource
            .get("service.instance.id")
            .or_else(|| resource.get("host.name")),
    )
}

/// How far `child` (another process's) must move to sit within `parent`, µs.
fn skew(parent: &Span, child: &Span) -> i64 {
    let (ps, pd) = (parent.start_us as i64, parent.duration_us as i64);
    let (cs, cd) = (child.start_us as i64, child.duration_us as i64);
    if cd > pd {
        return (ps - cs).max(0);
    }
    if cs >= ps && cs + cd <= ps + pd {
        return 0;
    }
    ps + (pd - cd) / 2 - cs
}
