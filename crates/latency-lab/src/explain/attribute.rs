//! One trace's critical path, attributed to operations: how long each
//! operation (a service and a span name) held the path, and its exclusive
//! (self) time. The path itself is trace-view's, computed as Jaeger's UI
//! does, with children clipped to their parent (a child that outlives its
//! parent only counts while the parent waited for it, as CRISP does). The
//! callers reconcile the services' clocks first (`skew`).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use trace_view::{analysis, Trace, TraceId};

/// An operation: `service span-name`, e.g. `order-service db.query SELECT orders`.
pub type Operation = String;

/// What one trace's critical path was made of.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribution {
    pub trace_id: TraceId,
    /// The root span's operation: the endpoint the trace answers.
    pub endpoint: Operation,
    /// The root span's duration, µs: the request's latency.
    pub latency_us: u64,
    /// µs on the critical path, by operation (summed over its spans).
    pub critical_us: BTreeMap<Operation, u64>,
    /// Exclusive time, µs, by operation (summed over its spans).
    pub exclusive_us: BTreeMap<Operation, u64>,
    /// Spans whose parent is not in the trace (lost, dropped, not exported
    /// yet): their time is not on the root's path.
    pub orphaned_spans: usize,
    /// µs on the critical path by folded stack: the operations from the
    /// root down to the span that held it, `;`-separated (a flame graph's
    /// input).
    pub critical_stacks: BTreeMap<String, u64>,
    /// Operations with a span marked as error in this trace: a tail can be
    /// slow because it failed (a timeout, a retry), and says so.
    pub failed: BTreeSet<Operation>,
}

/// The operation of a span: its service and its name.
pub fn operation(trace: &Trace, span: usize) -> Operation {
    let s = &trace.spans[span];
    format!("{} {}", s.service, s.name)
}

/// Attributes `trace`'s critical path, from its first root (the one that
/// starts first); `None` for a trace without spans.
pub fn attribute(trace: &Trace) -> Option<Attribution> {
    let analysis = analysis::analyse(trace);
    let root = analysis.root?;
    let ids: HashSet<&str> = trace.spans.iter().map(|s| s.span_id.as_str()).collect();
    let orphaned_spans = trace
        .spans
        .iter()
        .filter(|s| s.parent_id.as_deref().is_some_and(|p| !ids.contains(p)))
        .count();
    // Only the root's own subtree: rows are in walk order, each root
    // followed by its descendants.
    let start = analysis.rows.iter().position(|r| r.span == root)?;
    let end = analysis.rows[start + 1..]
        .iter()
        .position(|r| r.depth == 0)
        .map_or(analysis.rows.len(), |i| start + 1 + i);
    let mut critical_us = BTreeMap::new();
    let mut exclusive_us = BTreeMap::new();
    let mut critical_stacks = BTreeMap::new();
    let mut failed = BTreeSet::new();
    // The current path from the root, by depth (rows come parents first).
    let mut path: Vec<String> = Vec::new();
    for row in &analysis.rows[start..end] {
        let op = operation(trace, row.span);
        path.truncate(row.depth);
        // `;` separates frames in a folded stack.
        path.push(op.replace(';', ","));
        let held = row.critical_us();
        if held > 0 {
            *critical_us.entry(op.clone()).or_insert(0) += held;
            *critical_stacks.entry(path.join(";")).or_insert(0) += held;
        }
        if trace.spans[row.span].is_error() {
            failed.insert(op.clone());
        }
        *exclusive_us.entry(op).or_insert(0) += row.self_us;
    }
    Some(Attribution {
        trace_id: trace.trace_id,
        endpoint: operation(trace, root),
        latency_us: trace.spans[root].duration_us,
        critical_us,
        exclusive_us,
        orphaned_spans,
        critical_stacks,
        failed,
    })
}
