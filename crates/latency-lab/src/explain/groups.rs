//! The traces of one endpoint split by latency — the typical ones (at or
//! under the median) against the tail (at or over the split quantile) —
//! and, per group, each operation's share of the critical path and its
//! exclusive time.

use std::collections::{BTreeMap, BTreeSet};

use super::attribute::{Attribution, Operation};

/// One operation in one group.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationShare {
    pub operation: Operation,
    /// Its critical-path time over the group's critical-path time (0 to 1).
    pub share: f64,
    /// Traces of the group in which it appears.
    pub traces: usize,
    /// Its exclusive time per trace it appears in, µs: median and p99
    /// (nearest rank).
    pub exclusive_p50_us: u64,
    pub exclusive_p99_us: u64,
    /// Traces of the group in which one of its spans is marked as error.
    pub failed: usize,
}

/// A group of traces and what their critical paths were made of.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// `p50`, `p99`…: the quantile that bounds the group.
    pub label: String,
    /// The latency bound, µs (the group is at or under it for the typical
    /// group, at or over it for the tail).
    pub bound_us: u64,
    pub traces: usize,
    /// Traces with a span marked as error.
    pub failed: usize,
    /// Largest share first.
    pub operations: Vec<OperationShare>,
}

/// The typical group and the tail of `set`, which are one endpoint's
/// attributions; `split` is the tail's quantile (0.99 for p99). `None`
/// for an empty set.
pub fn split(set: &[Attribution], split: f64) -> Option<(Group, Group)> {
    let mut latencies: Vec<u64> = set.iter().map(|a| a.latency_us).collect();
    latencies.sort_unstable();
    let p50 = nearest_rank(&latencies, 0.5)?;
    let bound = nearest_rank(&latencies, split)?;
    let typical: Vec<&Attribution> = set.iter().filter(|a| a.latency_us <= p50).collect();
    let tail: Vec<&Attribution> = set.iter().filter(|a| a.latency_us >= bound).collect();
    Some((
        group("p50".to_owned(), p50, &typical),
        group(quantile_label(split), bound, &tail),
    ))
}

/// `p99`, `p99.9`, `p90`.
pub fn quantile_label(q: f64) -> String {
    let pct = q * 100.0;
    if pct == pct.round() {
        format!("p{pct:.0}")
    } else {
        format!("p{}", (pct * 1000.0).round() / 1000.0)
    }
}

fn group(label: String, bound_us: u64, traces: &[&Attribution]) -> Group {
    let total: u64 = traces
        .iter()
        .map(|a| a.critical_us.values().sum::<u64>())
        .sum();
    let operations: BTreeSet<&Operation> = traces
        .iter()
        .flat_map(|a| a.critical_us.keys().chain(a.exclusive_us.keys()))
        .collect();
    let mut shares: Vec<OperationShare> = operations
        .into_iter()
        .map(|op| {
            let held: u64 = traces.iter().filter_map(|a| a.critical_us.get(op)).sum();
            let mut exclusive: Vec<u64> = traces
                .iter()
                .filter_map(|a| a.exclusive_us.get(op).copied())
                .collect();
            exclusive.sort_unstable();
            OperationShare {
                operation: op.clone(),
                share: if total == 0 {
                    0.0
                } else {
                    held as f64 / total as f64
                },
                traces: exclusive.len(),
                exclusive_p50_us: nearest_rank(&exclusive, 0.5).unwrap_or(0),
                exclusive_p99_us: nearest_rank(&exclusive, 0.99).unwrap_or(0),
                failed: traces.iter().filter(|a| a.failed.contains(op)).count(),
            }
        })
        .collect();
    shares.sort_by(|a, b| {
        b.share
            .total_cmp(&a.share)
            .then_with(|| a.operation.cmp(&b.operation))
    });
    Group {
        label,
        bound_us,
        traces: traces.len(),
        failed: traces.iter().filter(|a| !a.failed.is_empty()).count(),
        operations: shares,
    }
}

/// The nearest-rank quantile of sorted `values`: one that occurred.
pub fn nearest_rank(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// What differs between the groups, in sentences: the tail's largest
/// share against the same operation's typical share, and every operation
/// that holds the tail's path but never the typical one's.
pub fn differences(typical: &Group, tail: &Group) -> Vec<String> {
    let share_in = |g: &Group, op: &str| {
        g.operations
            .iter()
            .find(|o| o.operation == op)
            .map_or(0.0, |o| o.share)
    };
    let mut lines = Vec::new();
    if let Some(top) = tail.operations.first().filter(|o| o.share > 0.0) {
        lines.push(format!(
            "at {}, {} of the critical path is {} (at p50: {})",
            tail.label,
            percent(top.share),
            top.operation,
            percent(share_in(typical, &top.operation))
        ));
    }
    let only_in_tail: BTreeMap<&str, f64> = tail
        .operations
        .iter()
        .filter(|o| o.share >= 0.005 && share_in(typical, &o.operation) == 0.0)
        .map(|o| (o.operation.as_str(), o.share))
        .collect();
    for (op, share) in only_in_tail {
        lines.push(format!(
            "{op} holds the critical path only in the tail ({})",
            percent(share)
        ));
    }
    lines
}

/// `81%`, `0.4%`.
pub fn percent(share: f64) -> String {
    let pct = share * 100.0;
    if pct >= 9.95 || pct == 0.0 {
        format!("{pct:.0}%")
    } else {
        format!("{pct:.1}%")
    }
}
