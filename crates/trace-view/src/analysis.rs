//! Where a trace's time went: the numbers behind the waterfall.
//!
//! * **Waiting time** of a span: the part of it covered by at least one of
//!   its children (their intervals merged, clipped to the span). A span
//!   that calls two services at once waits once, not twice.
//! * **Self time**: the rest — the span's own work, or time nobody recorded.
//! * **Critical path**: the chain of work that decided the end-to-end
//!   latency, computed the way Jaeger's UI does: from the end of the root,
//!   walk backwards; at each span take the child that finished last before
//!   the current point, descend into it, and continue in the parent from
//!   that child's start. Whatever is not covered by such a child belongs to
//!   the span itself. Children are first clipped to their parent (a child
//!   that outlives its parent only counts while the parent was waiting for
//!   it), children entirely outside their parent are dropped. One deviation:
//!   a child that ends in the same microsecond its successor starts still
//!   counts as finished before it (see [`critical_path`]).
//!
//! Speeding up anything off the critical path does not make the request
//! faster; that is the lesson the waterfall marks.

use std::collections::HashMap;

use crate::model::Trace;

/// A span's place in the waterfall and its times (all in µs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Index into `trace.spans`.
    pub span: usize,
    /// 0 for a root.
    pub depth: usize,
    pub self_us: u64,
    pub waiting_us: u64,
    /// The pieces of this span that are on the critical path, as
    /// `(start, end)` in µs since the epoch, latest first.
    pub critical: Vec<(u64, u64)>,
}

impl Row {
    /// Total time this span holds the critical path.
    pub fn critical_us(&self) -> u64 {
        self.critical.iter().map(|(s, e)| e - s).sum()
    }
}

/// The analysis of one trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysis {
    /// Every span once, parents before their children, siblings by start.
    pub rows: Vec<Row>,
    /// Critical-path time by service, largest first.
    pub by_service: Vec<(String, u64)>,
    /// Sum of the critical path (the root's duration for a whole trace).
    pub critical_us: u64,
    /// Index into `trace.spans` of the first root: whose point of view
    /// "waiting on another service" takes.
    pub root: Option<usize>,
    /// How many root spans (so critical paths) the trace has: more than one
    /// means a broken trace.
    pub roots: usize,
}

impl Analysis {
    /// The span of `service` that holds the critical path longest.
    pub fn top_span_of(&self, trace: &Trace, service: &str) -> Option<&Row> {
        self.rows
            .iter()
            .filter(|r| trace.spans[r.span].service == service && r.critical_us() > 0)
            .max_by_key(|r| (r.critical_us(), std::cmp::Reverse(r.span)))
    }
}

/// Analyses the trace. Never fails: spans whose parent is missing become
/// roots, and malformed parent cycles are broken rather than looped on.
pub fn analyse(trace: &Trace) -> Analysis {
    let spans = &trace.spans;
    let tree = Tree::new(trace);

    let mut rows = Vec::with_capacity(spans.len());
    for &root in &tree.roots {
        tree.walk(root, 0, &mut |span, depth| {
            let waiting_us = covered(
                (spans[span].start_us, spans[span].end_us()),
                tree.children[span]
                    .iter()
                    .map(|&c| (spans[c].start_us, spans[c].end_us())),
            );
            rows.push(Row {
                span,
                depth,
                self_us: spans[span].duration_us - waiting_us,
                waiting_us,
                critical: Vec::new(),
            });
        });
    }

    let mut critical: HashMap<usize, Vec<(u64, u64)>> = HashMap::new();
    for &root in &tree.roots {
        for (span, start, end) in critical_path(trace, &tree, root) {
            critical.entry(span).or_default().push((start, end));
        }
    }
    let mut by_service: Vec<(String, u64)> = Vec::new();
    for row in &mut rows {
        row.critical = critical.remove(&row.span).unwrap_or_default();
        let time = row.critical_us();
        if time == 0 {
            continue;
        }
        let service = &spans[row.span].service;
        match by_service.iter_mut().find(|(s, _)| s == service) {
            Some((_, total)) => *total += time,
            None => by_service.push((service.clone(), time)),
        }
    }
    by_service.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Analysis {
        critical_us: by_service.iter().map(|(_, t)| t).sum(),
        by_service,
        rows,
        root: tree.roots.first().copied(),
        roots: tree.roots.len(),
    }
}

/// Parent/child links by index, children sorted by start: a span whose
/// parent is missing is a root, a duplicated id keeps its first span, and a
/// parent cycle is cut so every span is reachable once.
pub struct Tree {
    roots: Vec<usize>,
    children: Vec<Vec<usize>>,
    parent: Vec<Option<usize>>,
}

impl Tree {
    pub fn new(trace: &Trace) -> Tree {
        let spans = &trace.spans;
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (i, span) in spans.iter().enumerate() {
            // A duplicated id keeps its first span; the others become roots.
            index.entry(span.span_id.as_str()).or_insert(i);
        }
        let by_start = |list: &mut Vec<usize>| list.sort_by_key(|&i| (spans[i].start_us, i));
        let mut parent = vec![None; spans.len()];
        let mut children = vec![Vec::new(); spans.len()];
        for (i, span) in spans.iter().enumerate() {
            let found = span
                .parent_id
                .as_deref()
                .and_then(|p| index.get(p).copied())
                .filter(|&p| p != i && index.get(span.span_id.as_str()) == Some(&i));
            if let Some(p) = found {
                parent[i] = Some(p);
                children[p].push(i);
            }
        }
        // Spans caught in a parent cycle would be unreachable from any
        // root: cut the cycle at the earliest span so each one still shows.
        let mut reachable = vec![false; spans.len()];
        let mut roots: Vec<usize> = (0..spans.len()).filter(|&i| parent[i].is_none()).collect();
        by_start(&mut roots);
        let mark = |start: usize, reachable: &mut Vec<bool>, children: &Vec<Vec<usize>>| {
            let mut stack = vec![start];
            while let Some(i) = stack.pop() {
                if !std::mem::replace(&mut reachable[i], true) {
                    stack.extend(&children[i]);
                }
            }
        };
        for &root in &roots {
            mark(root, &mut reachable, &children);
        }
        let mut stranded: Vec<usize> = (0..spans.len()).filter(|&i| !reachable[i]).collect();
        by_start(&mut stranded);
        for i in stranded {
            if reachable[i] {
                continue;
            }
            if let Some(p) = parent[i].take() {
                children[p].retain(|&c| c != i);
            }
            roots.push(i);
            mark(i, &mut reachable, &children);
        }
        by_start(&mut roots);
        for list in &mut children {
            by_start(list);
        }
        Tree {
            roots,
            children,
            parent,
        }
    }

    /// Indices into `trace.spans` of the spans without a parent in the
    /// trace, by start.
    pub fn roots(&self) -> &[usize] {
        &self.roots
    }

    /// The children of span `span`, by start.
    pub fn children(&self, span: usize) -> &[usize] {
        &self.children[span]
    }

    /// Pre-order walk without recursion (traces can be deep).
    fn walk(&self, root: usize, depth: usize, visit: &mut impl FnMut(usize, usize)) {
        let mut stack = vec![(root, depth)];
        while let Some((span, depth)) = stack.pop() {
            visit(span, depth);
            for &child in self.children[span].iter().rev() {
                stack.push((child, depth + 1));
            }
        }
    }
}

/// Length of the union of `intervals`, each clipped to `within`.
fn covered(within: (u64, u64), intervals: impl Iterator<Item = (u64, u64)>) -> u64 {
    let mut clipped: Vec<(u64, u64)> = intervals
        .map(|(s, e)| (s.max(within.0), e.min(within.1)))
        .filter(|(s, e)| s < e)
        .collect();
    clipped.sort_unstable();
    let mut total = 0;
    let mut reach = within.0;
    for (s, e) in clipped {
        let s = s.max(reach);
        if e > s {
            total += e - s;
            reach = e;
        }
    }
    total
}

/// The critical path under one root, as `(span, start, end)` sections from
/// the root's end backwards. Jaeger UI's algorithm, as a loop.
fn critical_path(trace: &Trace, tree: &Tree, root: usize) -> Vec<(usize, u64, u64)> {
    let spans = &trace.spans;
    // Clip every span of this root's tree to its (already clipped) parent;
    // a span entirely outside its parent is dropped with its subtree.
    let mut clipped: HashMap<usize, (u64, u64)> = HashMap::new();
    tree.walk(root, 0, &mut |span, _| {
        let (start, end) = (spans[span].start_us, spans[span].end_us());
        let interval = match tree.parent[span] {
            None => Some((start, end)),
            // Pre-order: a kept parent is already in `clipped`.
            Some(p) => clipped.get(&p).and_then(|&(p_start, p_end)| {
                if start >= p_start {
                    (start < p_end).then(|| (start, end.min(p_end)))
                } else {
                    (end > p_start).then(|| (p_start, end.min(p_end)))
                }
            }),
        };
        if let Some(interval) = interval {
            clipped.insert(span, interval);
        }
    });

    let mut sections = Vec::new();
    let mut current = root;
    // Set when coming back up from a child: only time before it remains.
    let mut before: Option<u64> = None;
    loop {
        let (start, end) = clipped[&current];
        let until = before.unwrap_or(end);
        // The child that finished last (by `before`, if set); on a tie the
        // earlier one wins, as in Jaeger's UI.
        let mut last: Option<(usize, u64)> = None;
        for &child in &tree.children[current] {
            let Some(&(child_start, child_end)) = clipped.get(&child) else {
                continue;
            };
            // Jaeger's UI wants `child_end < t`, which skips a call that
            // ended in the very microsecond the next one started: common
            // for back-to-back calls at Jaeger's resolution, and it would
            // hand the first call's time to the parent. `<=` keeps it; the
            // start condition still guarantees progress (each pick starts
            // strictly earlier than the last), so zero-length spans cannot
            // loop.
            let eligible = before.is_none_or(|t| child_end <= t && child_start < t);
            if eligible && last.is_none_or(|(_, e)| child_end > e) {
                last = Some((child, child_end));
            }
        }
        match last {
            Some((child, child_end)) => {
                if child_end != until {
                    sections.push((current, child_end, until));
                }
                current = child;
                before = None;
            }
            None => {
                if start != until {
                    sections.push((current, start, until));
                }
                match tree.parent[current] {
                    Some(parent) if current != root => {
                        before = Some(start);
                        current = parent;
                    }
                    _ => break,
                }
            }
        }
    }
    sections
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::{Span, SpanKind, Status};
    use crate::TraceId;

    /// A span named `name`, of `service`, child of `parent`, from `start` to
    /// `end` ms after an arbitrary epoch (times in the model are µs).
    pub(crate) fn span(
        name: &str,
        service: &str,
        parent: Option<&str>,
        start: u64,
        end: u64,
    ) -> Span {
        let id = |n: &str| {
            format!(
                "{:0>16x}",
                n.bytes()
                    .fold(0u64, |h, b| h.wrapping_mul(31) + u64::from(b))
            )
        };
        Span {
            span_id: id(name),
            parent_id: parent.map(id),
            service: service.into(),
            name: name.into(),
            kind: SpanKind::Internal,
            start_us: 1_700_000_000_000_000 + start * 1000,
            duration_us: (end - start) * 1000,
            status: Status::Unset,
            scope: String::new(),
            attributes: Default::default(),
            resource: Default::default(),
            events: vec![],
            links: vec![],
        }
    }

    pub(crate) fn trace(spans: Vec<Span>) -> Trace {
        Trace {
            trace_id: TraceId(0x4bf92f3577b34da6a3ce929d0e0e4736),
            spans,
        }
    }

    /// `(name, self ms, waiting ms, critical ms)` per row, in row order.
    fn summary(trace: &Trace) -> Vec<(String, u64, u64, u64)> {
        let analysis = analyse(trace);
        analysis
            .rows
            .iter()
            .map(|r| {
                (
                    format!("{}{}", "  ".repeat(r.depth), trace.spans[r.span].name),
                    r.self_us / 1000,
                    r.waiting_us / 1000,
                    r.critical_us() / 1000,
                )
            })
            .collect()
    }

    fn rows(expected: &[(&str, u64, u64, u64)]) -> Vec<(String, u64, u64, u64)> {
        expected
            .iter()
            .map(|(n, a, b, c)| (n.to_string(), *a, *b, *c))
            .collect()
    }

    #[test]
    fn sequential_calls_are_both_on_the_critical_path() {
        let t = trace(vec![
            span("root", "agg", None, 0, 310),
            span("users", "agg", Some("root"), 2, 106),
            span("user-db", "users", Some("users"), 4, 104),
            span("orders", "agg", Some("root"), 107, 308),
            span("order-db", "orders", Some("orders"), 108, 307),
        ]);
        assert_eq!(
            summary(&t),
            rows(&[
                ("root", 5, 305, 5),
                ("  users", 4, 100, 4),
                ("    user-db", 100, 0, 100),
                ("  orders", 2, 199, 2),
                ("    order-db", 199, 0, 199),
            ])
        );
        let a = analyse(&t);
        assert_eq!(a.critical_us, 310_000, "the root's duration");
        assert_eq!(
            a.by_service,
            [
                ("orders".into(), 199_000),
                ("users".into(), 100_000),
                ("agg".into(), 11_000)
            ]
        );
    }

    #[test]
    fn concurrent_calls_leave_the_shorter_one_off_the_critical_path() {
        let t = trace(vec![
            span("root", "agg", None, 0, 206),
            span("users", "agg", Some("root"), 2, 106),
            span("user-db", "users", Some("users"), 4, 104),
            span("orders", "agg", Some("root"), 3, 204),
            span("order-db", "orders", Some("orders"), 4, 203),
        ]);
        assert_eq!(
            summary(&t),
            rows(&[
                ("root", 4, 202, 5),
                ("  users", 4, 100, 0),
                ("    user-db", 100, 0, 0),
                ("  orders", 2, 199, 2),
                ("    order-db", 199, 0, 199),
            ])
        );
        // Exactly the sections Jaeger's UI would draw, latest first.
        let a = analyse(&t);
        let root = a.rows.iter().find(|r| r.depth == 0).unwrap();
        let ms = |(s, e): (u64, u64)| {
            (
                (s - 1_700_000_000_000_000) / 1000,
                (e - 1_700_000_000_000_000) / 1000,
            )
        };
        assert_eq!(
            root.critical.iter().copied().map(ms).collect::<Vec<_>>(),
            [(204, 206), (0, 3)]
        );
    }

    #[test]
    fn overlapping_children_wait_once() {
        let t = trace(vec![
            span("parent", "a", None, 0, 100),
            span("early", "b", Some("parent"), 10, 60),
            span("late", "c", Some("parent"), 40, 90),
        ]);
        // Waiting is the union 10..90, not 50 + 50; the last finisher is
        // critical, and before it started (40) no child had finished.
        assert_eq!(
            summary(&t),
            rows(&[
                ("parent", 20, 80, 50),
                ("  early", 50, 0, 0),
                ("  late", 50, 0, 50)
            ])
        );
    }

    #[test]
    fn a_child_that_outlives_its_parent_counts_only_while_the_parent_waits() {
        let t = trace(vec![
            span("parent", "a", None, 0, 100),
            span("detached", "b", Some("parent"), 50, 150),
            span("after", "b", Some("parent"), 120, 130),
        ]);
        assert_eq!(
            summary(&t),
            rows(&[
                ("parent", 50, 50, 50),
                ("  detached", 100, 0, 50),
                ("  after", 10, 0, 0)
            ])
        );
        assert_eq!(analyse(&t).critical_us, 100_000, "the root's duration");
    }

    #[test]
    fn back_to_back_calls_that_touch_are_both_critical() {
        // `first` ends in the microsecond `second` starts. Jaeger's UI would
        // skip `first` (it takes only children ending strictly before) and
        // blame `root` for those 10 ms; the lab counts them for `first`.
        let t = trace(vec![
            span("root", "a", None, 0, 30),
            span("first", "b", Some("root"), 0, 10),
            span("second", "c", Some("root"), 10, 30),
        ]);
        assert_eq!(
            summary(&t),
            rows(&[
                ("root", 0, 30, 0),
                ("  first", 10, 0, 10),
                ("  second", 20, 0, 20)
            ])
        );
    }

    #[test]
    fn orphans_and_cycles_become_roots_instead_of_vanishing() {
        let mut a = span("a", "x", Some("b"), 0, 10);
        let b = span("b", "x", Some("a"), 1, 5);
        let orphan = span("orphan", "y", Some("missing"), 20, 30);
        a.parent_id = Some(b.span_id.clone());
        let t = trace(vec![orphan, b, a]);
        let analysis = analyse(&t);
        assert_eq!(analysis.rows.len(), 3);
        assert_eq!(
            summary(&t),
            rows(&[("a", 6, 4, 6), ("  b", 4, 0, 4), ("orphan", 10, 0, 10)])
        );
        assert_eq!(analysis.critical_us, 20_000, "one critical path per root");
    }

    #[test]
    fn zero_length_spans_terminate() {
        let t = trace(vec![
            span("root", "a", None, 0, 10),
            span("instant", "b", Some("root"), 10, 10),
            span("also", "b", Some("root"), 5, 5),
        ]);
        let analysis = analyse(&t);
        assert_eq!(analysis.critical_us, 10_000);
        assert_eq!(
            covered((0, 10), [(2, 5), (3, 4), (8, 20), (0, 0)].into_iter()),
            5
        );
    }
}
