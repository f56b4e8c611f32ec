//! "If this operation were X % faster, what would the latency be?" — an
//! estimate from the traces themselves, by replaying each trace's timeline
//! with that operation shortened.
//!
//! The model, exactly (the lesson states it too):
//!
//! 1. Every span of the operation gives up the fraction `faster` of its
//!    exclusive time: a span without children gets that much shorter; a
//!    span with children ends that much earlier than it otherwise would.
//! 2. Within a parent, a child that started after some earlier sibling had
//!    ended is taken to have waited for the one that ended last before it
//!    started: it moves by as much as that sibling's end moved. A child that
//!    started while all its earlier siblings still ran (a concurrent call)
//!    keeps its place relative to its parent's start.
//! 3. A parent ends when its last child now ends, plus the time it ran
//!    after its last child (its tail, unchanged) — unless its last child
//!    outlived it, in which case it did not wait for its children and keeps
//!    its own duration.
//! 4. The request's new latency is the root's new duration. Nothing else
//!    changes: no queue drains faster, no other call speeds up — which is
//!    why the result is an estimate, not a prediction.

use std::collections::HashMap;

use trace_view::analysis::{self, Tree};
use trace_view::Trace;

use super::attribute::operation;

/// The root's duration, µs, with `op` made `faster` (0 to 1) by the model
/// above; `None` for a trace without spans.
pub fn latency_if_faster(trace: &Trace, op: &str, faster: f64) -> Option<u64> {
    let a = analysis::analyse(trace);
    let root = a.root?;
    let self_us: HashMap<usize, u64> = a.rows.iter().map(|r| (r.span, r.self_us)).collect();
    let tree = Tree::new(trace);
    let replay = Replay {
        trace,
        tree: &tree,
        self_us: &self_us,
        op,
        faster,
    };
    let start = trace.spans[root].start_us as f64;
    let end = replay.end(root, start, 0);
    Some((end - start).round().max(0.0) as u64)
}

struct Replay<'a> {
    trace: &'a Trace,
    tree: &'a Tree,
    self_us: &'a HashMap<usize, u64>,
    op: &'a str,
    faster: f64,
}

/// Deeper than this, a malformed trace (a parent cycle) is cut short.
const MAX_DEPTH: usize = 256;

impl Replay<'_> {
    /// The span's new end when it starts at `new_start`.
    fn end(&self, span: usize, new_start: f64, depth: usize) -> f64 {
        let s = &self.trace.spans[span];
        let saved = if operation(self.trace, span) == self.op {
            self.faster * self.self_us.get(&span).copied().unwrap_or(0) as f64
        } else {
            0.0
        };
        let kids = self.tree.children(span);
        let own_end = new_start + s.duration_us as f64 - saved;
        if kids.is_empty() || depth >= MAX_DEPTH {
            return own_end;
        }
        let shift = new_start - s.start_us as f64;
        // (old end, new end) of each child replayed so far.
        let mut done: Vec<(u64, f64)> = Vec::new();
        for &c in kids {
            let child = &self.trace.spans[c];
            let waited_for = done
                .iter()
                .filter(|(old_end, _)| *old_end <= child.start_us)
                .max_by_key(|(old_end, _)| *old_end);
            let moved = match waited_for {
                Some((old_end, new_end)) => new_end - *old_end as f64,
                None => shift,
            };
            let child_end = self.end(c, child.start_us as f64 + moved, depth + 1);
            done.push((child.end_us(), child_end));
        }
        let last_old = done.iter().map(|(o, _)| *o).max().unwrap_or(0);
        if last_old > s.end_us() {
            // It did not wait for its last child: its own length stands.
            return own_end;
        }
        let last_new = done.iter().map(|(_, n)| *n).fold(f64::MIN, f64::max);
        let tail = (s.end_us() - last_old) as f64;
        last_new + tail - saved
    }
}
