//! The W3C Trace Context propagator: `traceparent` and `tracestate` in,
//! `traceparent` and `tracestate` out, as the specification says.

use std::sync::LazyLock;

use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags, TraceState};
use opentelemetry::Context;

use super::incoming::IncomingTrace;
use super::traceparent::{self, Traceparent, TraceparentError, RANDOM, SAMPLED, TRACEPARENT};
use super::tracestate::{self, TRACESTATE};

static FIELDS: LazyLock<[String; 2]> =
    LazyLock::new(|| [TRACEPARENT.to_owned(), TRACESTATE.to_owned()]);

/// W3C Trace Context: Level 1, with the current (Level 2 draft) text's
/// `tracestate` key grammar and duplicate-key rule and its random flag.
///
/// Extraction: exactly one valid `traceparent` line, or a new trace (the
/// `tracestate` is then ignored too); every `tracestate` line combined, a
/// later duplicate of a key discarded, and the whole list dropped if any
/// member is invalid while the `traceparent` is kept. The span context gets
/// as much of the list as the SDK's `TraceState` can hold
/// ([`tracestate::TraceStateList::to_sdk`]); the whole list is kept beside
/// it for injection and for [`super::tracestate_beyond_sdk`].
///
/// Injection: `00-<trace-id>-<current span id>-<flags>`, where flags are our
/// own sampling decision plus the random flag (the `incoming` module says how
/// it survives), every other bit zero; the tracestate exactly as received
/// unless something in the process changed the span's `TraceState`. This
/// propagator adds no tracestate entry of its own.
#[derive(Debug, Clone)]
pub struct W3cTraceContextPropagator {
    local_trace_ids_random: bool,
}

impl Default for W3cTraceContextPropagator {
    fn default() -> Self {
        Self::new()
    }
}

impl W3cTraceContextPropagator {
    /// For a process whose tracer provider generates trace-ids at random, as
    /// the SDK's `RandomIdGenerator` (what [`crate::init()`] installs) does: a
    /// trace this process starts is then sent with the random flag set.
    pub fn new() -> Self {
        Self {
            local_trace_ids_random: true,
        }
    }

    /// Says whether trace-ids this process generates are random. With an
    /// ID generator that is not (sequential ids, say), pass `false`, or
    /// downstream samplers would trust ids that are not random.
    pub fn with_local_trace_ids_random(mut self, random: bool) -> Self {
        self.local_trace_ids_random = random;
        self
    }

    /// `cx` with the remote parent found in the carrier: `Ok(None)` without
    /// a `traceparent`, `Err` when it is invalid (the caller then starts a
    /// new trace). An invalid `tracestate` is not an error: it is dropped
    /// (and logged at debug level) while the parent is kept.
    pub fn extract_remote(
        &self,
        cx: &Context,
        extractor: &dyn Extractor,
    ) -> Result<Option<Context>, TraceparentError> {
        let lines = extractor.get_all(TRACEPARENT).unwrap_or_default();
        let Some(parent) = traceparent::parse_lines(&lines)? else {
            return Ok(None);
        };
        let lines = extractor.get_all(TRACESTATE).unwrap_or_default();
        let list = tracestate::parse_lines(&lines).unwrap_or_else(|error| {
            tracing::debug!(%error, "dropping the incoming tracestate");
            None
        });
        let sdk_trace_state = match list.as_ref().map(|list| list.to_sdk()) {
            Some(sdk) => {
                if !sdk.is_exact() {
                    tracing::debug!(
                        refused = ?sdk.refused,
                        "the SDK's TraceState cannot hold these keys: spans record \
                         the rest, the list is still passed on whole"
                    );
                }
                sdk.trace_state
            }
            None => TraceState::NONE,
        };
        let span_context = SpanContext::new(
            parent.trace_id,
            parent.parent_id,
            TraceFlags::new(parent.known_flags()),
            true,
            sdk_trace_state.clone(),
        );
        let incoming = IncomingTrace {
            trace_id: parent.trace_id,
            random: parent.random(),
            tracestate: list,
            sdk_trace_state,
        };
        Ok(Some(
            cx.with_remote_span_context(span_context)
                .with_value(incoming),
        ))
    }

    /// The `traceparent` this propagator sends for the current span of `cx`;
    /// `None` when there is no valid span.
    pub fn outgoing_traceparent(&self, cx: &Context) -> Option<Traceparent> {
        let span = cx.span();
        let sc = span.span_context();
        if !sc.is_valid() {
            return None;
        }
        let flags = sc.trace_flags().to_u8();
        let random = match IncomingTrace::of(cx, sc) {
            // Continuing a trace started upstream: the flag as received.
            Some(incoming) => incoming.random,
            // A remote context we did not extract: trust its flags.
            None if sc.is_remote() => flags & RANDOM != 0,
            // A trace this process started, with its own ID generator.
            None => self.local_trace_ids_random || flags & RANDOM != 0,
        };
        Some(Traceparent {
            version: 0,
            trace_id: sc.trace_id(),
            parent_id: sc.span_id(),
            flags: (flags & SAMPLED) | if random { RANDOM } else { 0 },
        })
    }

    /// The `tracestate` this propagator sends for the current span of `cx`,
    /// as one line; `None` when there is nothing to send.
    pub fn outgoing_tracestate(&self, cx: &Context) -> Option<String> {
        let span = cx.span();
        let sc = span.span_context();
        if !sc.is_valid() {
            return None;
        }
        if let Some(incoming) = IncomingTrace::of(cx, sc) {
            if sc.trace_state() == &incoming.sdk_trace_state {
                return incoming.tracestate.as_ref().map(ToString::to_string);
            }
        }
        // Set in the process (by a sampler, say): sent only if it is valid
        // on the wire, so we never forward what we would refuse ourselves.
        match tracestate::parse(&sc.trace_state().header()) {
            Ok(Some(list)) => Some(list.to_string()),
            Ok(None) => None,
            Err(error) => {
                tracing::debug!(%error, "not sending an invalid tracestate");
                None
            }
        }
    }
}

impl TextMapPropagator for W3cTraceContextPropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let Some(parent) = self.outgoing_traceparent(cx) else {
            return;
        };
        injector.set(TRACEPARENT, parent.to_string());
        if let Some(state) = self.outgoing_tracestate(cx) {
            injector.set(TRACESTATE, state);
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        match self.extract_remote(cx, extractor) {
            Ok(Some(remote)) => remote,
            Ok(None) => cx.clone(),
            Err(error) => {
                tracing::debug!(%error, "ignoring the incoming traceparent: starting a new trace");
                cx.clone()
            }
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(FIELDS.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use opentelemetry::trace::{SpanId, TraceId, Tracer, TracerProvider as _};
    use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};

    use super::*;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const PARENT: &str = "00f067aa0ba902b7";

    fn tp(flags: &str) -> String {
        format!("00-{TRACE}-{PARENT}-{flags}")
    }

    /// A carrier with repeated header lines, as HTTP has them.
    struct Lines<'a>(&'a [(&'a str, String)]);

    impl Extractor for Lines<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            self.get_all(key).map(|all| all[0])
        }
        fn keys(&self) -> Vec<&str> {
            self.0.iter().map(|(k, _)| *k).collect()
        }
        fn get_all(&self, key: &str) -> Option<Vec<&str>> {
            let all: Vec<&str> = self
                .0
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.as_str())
                .collect();
            (!all.is_empty()).then_some(all)
        }
    }

    /// What one hop sends: extract `incoming`, open a SERVER span and a
    /// CLIENT span under it with the SDK (`sampler` deciding), inject.
    /// Returns the outgoing headers and the CLIENT span's id.
    fn hop(
        propagator: &W3cTraceContextPropagator,
        sampler: Sampler,
        incoming: &[(&str, String)],
    ) -> (HashMap<String, String>, SpanId) {
        let provider = SdkTracerProvider::builder().with_sampler(sampler).build();
        let tracer = provider.tracer("test");
        let parent = propagator.extract(&Lines(incoming));
        let server = parent.with_span(tracer.start_with_context("server", &parent));
        let client = server.with_span(tracer.start_with_context("client", &server));
        let mut out = HashMap::new();
        propagator.inject_context(&client, &mut out);
        let id = client.span().span_context().span_id();
        (out, id)
    }

    /// (case, propagator, sampler, incoming traceparent lines, joins the
    /// incoming trace, outgoing flags)
    type FlagCase<'a> = (
        &'a str,
        &'a W3cTraceContextPropagator,
        Sampler,
        Vec<String>,
        bool,
        &'a str,
    );

    /// (case, incoming header lines, outgoing tracestate)
    type StateCase<'a> = (&'a str, Vec<(&'a str, String)>, Option<String>);

    fn parent_based() -> Sampler {
        Sampler::ParentBased(Box::new(Sampler::AlwaysOn))
    }

    #[test]
    fn outgoing_traceparent_per_incoming_one() {
        let w3c = W3cTraceContextPropagator::new();
        let not_random = W3cTraceContextPropagator::new().with_local_trace_ids_random(false);
        let cases: Vec<FlagCase> = vec![
            ("sampled", &w3c, parent_based(), vec![tp("01")], true, "01"),
            (
                "sampled + random kept",
                &w3c,
                parent_based(),
                vec![tp("03")],
                true,
                "03",
            ),
            (
                "not sampled",
                &w3c,
                parent_based(),
                vec![tp("00")],
                true,
                "00",
            ),
            // The SDK drops the span and zeroes its flags; random survives.
            (
                "random, not sampled: random kept",
                &w3c,
                parent_based(),
                vec![tp("02")],
                true,
                "02",
            ),
            (
                "unknown flags zeroed",
                &w3c,
                parent_based(),
                vec![tp("ff")],
                true,
                "03",
            ),
            (
                "unknown flags, no random",
                &w3c,
                parent_based(),
                vec![tp("fd")],
                true,
                "01",
            ),
            (
                "future version",
                &w3c,
                parent_based(),
                vec![format!("cc-{TRACE}-{PARENT}-01-later")],
                true,
                "01",
            ),
            (
                "OWS around",
                &w3c,
                parent_based(),
                vec![format!("\t {} \t", tp("01"))],
                true,
                "01",
            ),
            (
                "no traceparent: new random trace",
                &w3c,
                parent_based(),
                vec![],
                false,
                "03",
            ),
            (
                "no traceparent, not sampled",
                &w3c,
                Sampler::AlwaysOff,
                vec![],
                false,
                "02",
            ),
            (
                "no traceparent, ids not random",
                &not_random,
                parent_based(),
                vec![],
                false,
                "01",
            ),
            (
                "invalid: new trace",
                &w3c,
                parent_based(),
                vec![tp("0x")],
                false,
                "03",
            ),
            (
                "two lines: new trace",
                &w3c,
                parent_based(),
                vec![tp("01"), tp("01")],
                false,
                "03",
            ),
            (
                "random flag of an invalid header ignored",
                &not_random,
                parent_based(),
                vec![format!("{}.", tp("03"))],
                false,
                "01",
            ),
        ];
        for (case, propagator, sampler, lines, joins, flags) in cases {
            let incoming: Vec<(&str, String)> =
                lines.into_iter().map(|l| ("traceparent", l)).collect();
            let (out, client_id) = hop(propagator, sampler, &incoming);
            let sent = out
                .get("traceparent")
                .unwrap_or_else(|| panic!("{case}: nothing sent"));
            let parsed = traceparent::parse(sent).unwrap_or_else(|e| panic!("{case}: {sent}: {e}"));
            assert_eq!(parsed.version, 0, "{case}: {sent}");
            assert_eq!(
                parsed.trace_id.to_string() == TRACE,
                joins,
                "{case}: {sent}"
            );
            assert_eq!(
                parsed.parent_id, client_id,
                "{case}: the CLIENT span is the new parent"
            );
            assert_ne!(parsed.parent_id.to_string(), PARENT, "{case}");
            assert_eq!(format!("{:02x}", parsed.flags), flags, "{case}: {sent}");
        }
    }

    #[test]
    fn outgoing_tracestate_per_incoming_one() {
        let w3c = W3cTraceContextPropagator::new();
        let system14 = format!("t@{}=1", "v".repeat(14));
        let cases: Vec<StateCase> = vec![
            ("none", vec![("traceparent", tp("01"))], None),
            (
                "passed on unchanged",
                vec![
                    ("traceparent", tp("01")),
                    (
                        "tracestate",
                        "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7".into(),
                    ),
                ],
                Some("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7".into()),
            ),
            (
                "lines combined, OWS dropped",
                vec![
                    ("traceparent", tp("01")),
                    ("tracestate", " foo=1 \t, bar=2".into()),
                    ("tracestate", "".into()),
                    ("TraceState", "baz=3\t".into()),
                ],
                Some("foo=1,bar=2,baz=3".into()),
            ),
            (
                "unsampled parent: still passed on",
                vec![("traceparent", tp("00")), ("tracestate", "foo=1".into())],
                Some("foo=1".into()),
            ),
            (
                "a key the SDK's TraceState refuses is still passed on",
                vec![
                    ("traceparent", tp("01")),
                    ("tracestate", format!("foo=1,{system14}")),
                ],
                Some(format!("foo=1,{system14}")),
            ),
            (
                "keys of the current grammar are passed on",
                vec![
                    ("traceparent", tp("01")),
                    ("tracestate", "a@b@c=1,t@-v=2,0@=3".into()),
                ],
                Some("a@b@c=1,t@-v=2,0@=3".into()),
            ),
            (
                "a later duplicate is discarded, the rest passed on",
                vec![
                    ("traceparent", tp("01")),
                    ("tracestate", "foo=1,bar=2,foo=3".into()),
                    ("tracestate", format!("{system14},baz=4")),
                ],
                Some(format!("foo=1,bar=2,{system14},baz=4")),
            ),
            (
                "invalid list dropped, parent kept",
                vec![
                    ("traceparent", tp("01")),
                    ("tracestate", "foo=1,Foo=2".into()),
                ],
                None,
            ),
            (
                "invalid traceparent drops a valid tracestate",
                vec![("traceparent", tp("0x")), ("tracestate", "foo=1".into())],
                None,
            ),
            (
                "tracestate without traceparent",
                vec![("tracestate", "foo=1".into())],
                None,
            ),
            (
                "empty tracestate",
                vec![("traceparent", tp("01")), ("tracestate", "".into())],
                None,
            ),
        ];
        for (case, incoming, expected) in cases {
            let (out, _) = hop(&w3c, parent_based(), &incoming);
            assert!(out.contains_key("traceparent"), "{case}");
            assert_eq!(out.get("tracestate"), expected.as_ref(), "{case}");
        }
    }

    #[test]
    fn the_span_context_holds_what_the_sdk_can_and_the_rest_is_remembered() {
        let w3c = W3cTraceContextPropagator::new();
        let system14 = format!("t@{}=2", "v".repeat(14));
        // (incoming tracestate, the span context's, what is beyond the SDK)
        let cases = [
            ("congo=1,rojo=2", "congo=1,rojo=2", None),
            ("congo=1,congo=3", "congo=1", None),
            (
                &*format!("congo=1,{system14},x@y@z=3,rojo=4"),
                "congo=1,rojo=4",
                Some(format!("congo=1,{system14},x@y@z=3,rojo=4")),
            ),
            (&*system14, "", Some(system14.clone())),
        ];
        for (incoming, sdk, beyond) in cases {
            let cx = w3c.extract(&Lines(&[
                ("traceparent", tp("01")),
                ("tracestate", incoming.to_owned()),
            ]));
            assert_eq!(cx.span().span_context().trace_state().header(), sdk);
            assert_eq!(super::super::tracestate_beyond_sdk(&cx), beyond);
            // The whole list goes on, whatever the SDK could hold.
            let (out, _) = hop(
                &w3c,
                parent_based(),
                &[
                    ("traceparent", tp("01")),
                    ("tracestate", incoming.to_owned()),
                ],
            );
            let sent = beyond.unwrap_or_else(|| sdk.to_owned());
            assert_eq!(out.get("tracestate"), Some(&sent), "{incoming}");
        }
        // Nothing to remember without a tracestate, or in a context that was
        // not extracted.
        let cx = w3c.extract(&Lines(&[("traceparent", tp("01"))]));
        assert_eq!(super::super::tracestate_beyond_sdk(&cx), None);
        assert_eq!(super::super::tracestate_beyond_sdk(&Context::new()), None);
    }

    /// What docs/upstream/opentelemetry-rust-tracestate-keys.md reports of
    /// the 0.32 SDK, and why this module keeps the list beside the span
    /// context. When an upgrade makes this fail, the workaround may go.
    #[test]
    fn the_sdk_refuses_keys_the_specification_allows() {
        use opentelemetry_sdk::propagation::TraceContextPropagator;
        let system14 = format!("t@{}", "v".repeat(14));
        for refused in [system14.as_str(), "a@b@c", "t@_v"] {
            assert!(
                TraceState::from_key_value([(refused, "1")]).is_err(),
                "{refused}"
            );
            assert!(TraceState::NONE.insert(refused, "1").is_err(), "{refused}");
        }
        for accepted in ["fw529a3039@dt", "t@", &format!("t@{}", "v".repeat(13))] {
            assert!(
                TraceState::from_key_value([(accepted, "1")]).is_ok(),
                "{accepted}"
            );
        }
        // The stock propagator loses the whole list and sends it empty.
        let stock = TraceContextPropagator::new();
        let incoming = [
            ("traceparent", tp("01")),
            ("tracestate", format!("congo=1,{system14}=2")),
        ];
        let cx = stock.extract(&Lines(&incoming));
        assert_eq!(cx.span().span_context().trace_state().header(), "");
        let mut out = HashMap::new();
        stock.inject_context(&cx, &mut out);
        assert_eq!(out.get("tracestate").map(String::as_str), Some(""));
        // Ours passes it on whole.
        let mut out = HashMap::new();
        let cx = W3cTraceContextPropagator::new().extract(&Lines(&incoming));
        W3cTraceContextPropagator::new().inject_context(&cx, &mut out);
        assert_eq!(out["tracestate"], incoming[1].1);
    }

    #[test]
    fn tracestate_changed_in_process_is_sent_as_changed() {
        let w3c = W3cTraceContextPropagator::new();
        let incoming = [
            ("traceparent", tp("03")),
            ("tracestate", "congo=1".to_owned()),
        ];
        let parent = w3c.extract(&Lines(&incoming));
        let received = parent.span().span_context().trace_state().clone();
        let local = |state: TraceState| {
            SpanContext::new(
                TraceId::from_hex(TRACE).unwrap(),
                SpanId::from_hex("1111111111111111").unwrap(),
                TraceFlags::SAMPLED,
                false,
                state,
            )
        };
        let updated = parent.with_remote_span_context(local(received.insert("ours", "x").unwrap()));
        assert_eq!(
            w3c.outgoing_tracestate(&updated).as_deref(),
            Some("ours=x,congo=1")
        );
        // An entry that is invalid on the wire is never sent.
        let bad = parent.with_remote_span_context(local(received.insert("ours", "").unwrap()));
        assert_eq!(w3c.outgoing_tracestate(&bad), None);
        let same = parent.with_remote_span_context(local(received));
        assert_eq!(w3c.outgoing_tracestate(&same).as_deref(), Some("congo=1"));
    }

    #[test]
    fn a_context_not_extracted_here_keeps_its_own_random_flag() {
        let w3c = W3cTraceContextPropagator::new().with_local_trace_ids_random(false);
        for (flags, expected) in [(0x03, "03"), (0x01, "01"), (0x02, "02")] {
            let cx = Context::new().with_remote_span_context(SpanContext::new(
                TraceId::from_hex(TRACE).unwrap(),
                SpanId::from_hex(PARENT).unwrap(),
                TraceFlags::new(flags),
                true,
                TraceState::NONE,
            ));
            let mut out = HashMap::new();
            w3c.inject_context(&cx, &mut out);
            assert_eq!(out["traceparent"], tp(expected));
        }
    }

    #[test]
    fn nothing_is_sent_without_a_valid_span() {
        let mut out = HashMap::new();
        W3cTraceContextPropagator::new().inject_context(&Context::new(), &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn fields_are_the_two_headers() {
        let w3c = W3cTraceContextPropagator::new();
        assert_eq!(
            w3c.fields().collect::<Vec<_>>(),
            ["traceparent", "tracestate"]
        );
    }
}
