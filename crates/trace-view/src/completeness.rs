//! Whether a trace is whole: what a tail sampler that saw only part of a
//! trace leaves behind, seen from the stored trace.
//!
//! A trace is whole when it has one root, every span's parent is in it, and
//! every client call that got an answer (its span records the response's
//! status: `http.response.status_code`, `rpc.grpc.status_code`) has the
//! callee's server span under it. A sampler that judged a piece keeps a root
//! whose calls lead nowhere, or children whose parent is elsewhere; both
//! show here. A call without an answer (refused, timed out, cancelled before
//! it was sent) may have no server span, and is not counted missing. (An
//! uninstrumented callee that answers is: for traces of instrumented
//! services, as in the lab, that is a missing piece.)

use std::collections::HashSet;

use crate::model::{Span, SpanKind, Trace};

/// `None` for a whole trace; else what is missing, in a line.
pub fn missing_pieces(trace: &Trace) -> Option<String> {
    let ids: HashSet<&str> = trace.spans.iter().map(|s| s.span_id.as_str()).collect();
    let roots: Vec<String> = trace
        .spans
        .iter()
        .filter(|s| s.parent_id.as_deref().is_none_or(|p| !ids.contains(p)))
        .map(|s| format!("{} {}", s.service, s.name))
        .collect();
    if roots.len() != 1 {
        return Some(format!(
            "{} spans without their parent: {}",
            roots.len(),
            roots.join(", ")
        ));
    }
    let unanswered: Vec<String> = trace
        .spans
        .iter()
        .filter(|client| client.kind == SpanKind::Client && got_an_answer(client))
        .filter(|client| {
            !trace.spans.iter().any(|s| {
                s.kind == SpanKind::Server && s.parent_id.as_deref() == Some(&client.span_id)
            })
        })
        .map(|s| format!("{} {}", s.service, s.name))
        .collect();
    (!unanswered.is_empty())
        .then(|| format!("calls without a server span: {}", unanswered.join(", ")))
}

/// Whether a client span records the status of a response.
fn got_an_answer(client: &Span) -> bool {
    ANSWER_STATUS
        .iter()
        .any(|key| client.attributes.contains_key(*key))
}

/// The semantic conventions' attributes for a response's status.
const ANSWER_STATUS: &[&str] = &["http.response.status_code", "rpc.grpc.status_code"];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::tests::{span, trace};
    use crate::model::Value;

    /// A span of `service` (its name is its id), of `kind`, under `parent`;
    /// a client span got an answer (a status code).
    fn of(name: &str, parent: Option<&str>, service: &str, kind: SpanKind) -> Span {
        let mut s = Span {
            kind,
            ..span(name, service, parent, 0, 10)
        };
        if kind == SpanKind::Client {
            s.attributes
                .insert("http.response.status_code".into(), Value::Int(200));
        }
        s
    }

    #[test]
    fn a_call_answered_by_its_callee_is_whole() {
        let t = trace(vec![
            of("root", None, "front", SpanKind::Server),
            of("call", Some("root"), "front", SpanKind::Client),
            of("served", Some("call"), "back", SpanKind::Server),
        ]);
        assert_eq!(missing_pieces(&t), None);
    }

    #[test]
    fn the_callers_piece_alone_has_an_unanswered_call() {
        let t = trace(vec![
            of("root", None, "front", SpanKind::Server),
            of("call", Some("root"), "front", SpanKind::Client),
        ]);
        assert_eq!(
            missing_pieces(&t).as_deref(),
            Some("calls without a server span: front call")
        );
    }

    #[test]
    fn a_call_without_an_answer_needs_no_server_span() {
        let mut call = of("call", Some("root"), "front", SpanKind::Client);
        call.attributes.clear();
        let t = trace(vec![of("root", None, "front", SpanKind::Server), call]);
        assert_eq!(missing_pieces(&t), None);
    }

    #[test]
    fn pieces_without_their_parents_are_more_roots() {
        let t = trace(vec![
            of("root", None, "front", SpanKind::Server),
            of("served", Some("call"), "back", SpanKind::Server),
        ]);
        assert_eq!(
            missing_pieces(&t).as_deref(),
            Some("2 spans without their parent: front root, back served")
        );
    }
}
