//! A trace as an indented tree: one line per span, children under their
//! parent, in start order, with durations.

use std::collections::HashMap;
use std::fmt::Write;

use otlp_receiver::CollectedSpan;

/// Renders the spans of one trace. Spans whose parent is not in the trace
/// (the root, or orphans of a broken trace) start at the left margin.
pub fn render(spans: &[CollectedSpan]) -> String {
    let mut sorted: Vec<&CollectedSpan> = spans.iter().collect();
    sorted.sort_by_key(|s| (s.start_unix_nanos, s.end_unix_nanos));
    let ids: HashMap<&str, ()> = sorted.iter().map(|s| (s.span_id.as_str(), ())).collect();
    let mut children: HashMap<&str, Vec<&CollectedSpan>> = HashMap::new();
    let mut roots = Vec::new();
    for span in &sorted {
        match span.parent_span_id.as_deref() {
            Some(parent) if ids.contains_key(parent) => {
                children.entry(parent).or_default().push(span)
            }
            _ => roots.push(*span),
        }
    }
    let trace_id = spans.first().map(|s| s.trace_id.as_str()).unwrap_or("-");
    let mut out = format!("trace {trace_id} ({} spans)\n", spans.len());
    for root in roots {
        write_span(&mut out, root, &children, 1);
    }
    out
}

fn write_span(
    out: &mut String,
    span: &CollectedSpan,
    children: &HashMap<&str, Vec<&CollectedSpan>>,
    depth: usize,
) {
    let label = format!("{}{} {}", "  ".repeat(depth), span.service_name, span.name);
    let error = if span.status_code == otlp_receiver::StatusCode::Error {
        "  ERROR"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "{label:<64} {:>9.1} ms{error}",
        span.duration().as_secs_f64() * 1000.0
    );
    for child in children.get(span.span_id.as_str()).into_iter().flatten() {
        write_span(out, child, children, depth + 1);
    }
}
