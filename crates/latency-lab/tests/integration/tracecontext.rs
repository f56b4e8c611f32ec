//! W3C Trace Context, rule by rule, through a real hop: a request with
//! crafted header lines goes to the real aggregator process, and a recording
//! stub in place of both downstream services checks the exact `traceparent`
//! and `tracestate` each outgoing call carried.
//!
//! Then `POST /verify-tracecontext`, the endpoint for the official W3C test
//! harness: on when asked for, loopback only, each call in order.

use std::time::{Duration, Instant};

use crate::common::stub::{Recorded, Stub};
use crate::common::{one, summary, Options, Suite};
use axum::http::StatusCode as HttpStatus;
use otlp_receiver::SpanKind;

const TRACE: &str = "12345678901234567890123456789012";
const PARENT: &str = "1234567890123456";

fn tp(flags: &str) -> String {
    format!("00-{TRACE}-{PARENT}-{flags}")
}

/// A `traceparent` as it crossed the wire, split without the code under
/// test: `00-<32 hex>-<16 hex>-<2 hex>`, lowercase.
#[derive(Debug, Clone, PartialEq)]
struct Wire {
    trace_id: String,
    parent_id: String,
    flags: String,
}

fn wire(value: &str) -> Wire {
    let parts: Vec<&str> = value.split('-').collect();
    let hex = |s: &str, n: usize| {
        s.len() == n && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    assert!(
        parts.len() == 4
            && parts[0] == "00"
            && hex(parts[1], 32)
            && hex(parts[2], 16)
            && hex(parts[3], 2),
        "not a version-00 traceparent: {value:?}"
    );
    assert_ne!(parts[1], "0".repeat(32), "{value}");
    assert_ne!(parts[2], "0".repeat(16), "{value}");
    Wire {
        trace_id: parts[1].to_owned(),
        parent_id: parts[2].to_owned(),
        flags: parts[3].to_owned(),
    }
}

/// The one line of `name` a call carried (`None` without one); more than
/// one line fails the test, since we always send a single line.
fn single_line(call: &Recorded, name: &str) -> Option<String> {
    let lines: Vec<&str> = call
        .headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().expect("visible ASCII"))
        .collect();
    assert!(lines.len() <= 1, "{name} sent as several lines: {lines:?}");
    lines.first().map(|l| (*l).to_owned())
}

/// The aggregator, with one recording stub as both its dependencies.
struct Hop {
    suite: Suite,
    stub: Stub,
}

/// What one profile request made the aggregator send downstream.
struct Sent {
    traceresponse: Wire,
    /// The user call, then the orders call (`mode=sequential`).
    traceparents: Vec<Wire>,
    tracestates: Vec<Option<String>>,
}

impl Hop {
    async fn start() -> Self {
        let stub = Stub::start(HttpStatus::OK).await;
        let suite = Suite::start(Options {
            user_url: Some(stub.url.clone()),
            order_url: Some(stub.url.clone()),
            ..Options::default()
        })
        .await;
        Self { suite, stub }
    }

    /// One profile request with these header lines (a repeated name is sent
    /// as separate lines, in order).
    async fn send(&self, lines: &[(&str, String)]) -> Sent {
        let before = self.stub.calls().len();
        let mut request = self.suite.client.get(format!(
            "{}/user-profile/1?mode=sequential",
            self.suite.aggregator.url
        ));
        for (name, value) in lines {
            request = request.header(*name, value.as_str());
        }
        let response = request.send().await.expect("aggregator answers");
        assert_eq!(response.status(), 200, "{lines:?}");
        let traceresponse = wire(response.headers()["traceresponse"].to_str().unwrap());
        let calls = self.stub.calls()[before..].to_vec();
        assert_eq!(calls.len(), 2, "one call to each dependency");
        let traceparents: Vec<Wire> = calls
            .iter()
            .map(|c| wire(&single_line(c, "traceparent").expect("a traceparent is sent")))
            .collect();
        let tracestates = calls.iter().map(|c| single_line(c, "tracestate")).collect();
        Sent {
            traceresponse,
            traceparents,
            tracestates,
        }
    }
}

impl Sent {
    /// Both calls continue the incoming trace, each with a parent-id of its
    /// own, and carry `flags`.
    fn assert_joined(&self, case: &str, flags: &str) {
        let [user, orders] = &self.traceparents[..] else {
            unreachable!()
        };
        for call in [user, orders] {
            assert_eq!(
                call.trace_id, TRACE,
                "{case}: the incoming trace is continued"
            );
            assert_ne!(call.parent_id, PARENT, "{case}: a new parent-id");
            assert_eq!(call.flags, flags, "{case}: flags");
        }
        assert_ne!(
            user.parent_id, orders.parent_id,
            "{case}: one parent-id per call"
        );
        assert_eq!(self.traceresponse.trace_id, TRACE, "{case}");
        assert_eq!(
            self.traceresponse.flags, flags,
            "{case}: traceresponse flags"
        );
    }

    /// Both calls belong to one new trace and carry `flags`; nothing of the
    /// incoming context (tracestate included) is passed on.
    fn assert_new_trace(&self, case: &str, flags: &str) {
        let [user, orders] = &self.traceparents[..] else {
            unreachable!()
        };
        assert_ne!(user.trace_id, TRACE, "{case}: a new trace");
        assert_eq!(
            user.trace_id, orders.trace_id,
            "{case}: one trace per request"
        );
        assert_eq!(self.traceresponse.trace_id, user.trace_id, "{case}");
        assert_ne!(user.parent_id, orders.parent_id, "{case}");
        for call in [user, orders] {
            assert_eq!(call.flags, flags, "{case}: flags");
        }
        assert_eq!(self.tracestates, [None, None], "{case}: no tracestate");
    }
}

enum Expect {
    /// Continue the incoming trace with these outgoing flags.
    Join(&'static str),
    /// Start a new trace with these outgoing flags.
    New(&'static str),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traceparent_rules_through_a_real_hop() {
    use Expect::{Join, New};
    let hop = Hop::start().await;
    let zeros32 = "0".repeat(32);
    let zeros16 = "0".repeat(16);
    let with = |v: String| vec![v];
    // (case, traceparent lines, expectation). Every case also sends
    // `tracestate: foo=1`, which must follow the traceparent's fate.
    let cases: Vec<(&str, Vec<String>, Expect)> = vec![
        ("sampled", with(tp("01")), Join("01")),
        ("not sampled", with(tp("00")), Join("00")),
        ("unknown flags are sent as zero", with(tp("fd")), Join("01")),
        (
            "future version read by the 00 rules",
            with(format!("cc-{TRACE}-{PARENT}-01")),
            Join("01"),
        ),
        (
            "future version with more fields",
            with(format!(
                "cc-{TRACE}-{PARENT}-01-what-the-future-will-be-like"
            )),
            Join("01"),
        ),
        (
            "leading spaces and tabs",
            with(format!(" \t {}", tp("01"))),
            Join("01"),
        ),
        (
            "trailing spaces and tabs",
            with(format!("{}\t \t", tp("01"))),
            Join("01"),
        ),
        ("no traceparent", vec![], New("03")),
        ("empty traceparent", with(String::new()), New("03")),
        (
            "version ff",
            with(format!("ff-{TRACE}-{PARENT}-01")),
            New("03"),
        ),
        (
            "version too long",
            with(format!("000-{TRACE}-{PARENT}-01")),
            New("03"),
        ),
        (
            "version too short",
            with(format!("0-{TRACE}-{PARENT}-01")),
            New("03"),
        ),
        (
            "version illegal characters",
            with(format!(".0-{TRACE}-{PARENT}-01")),
            New("03"),
        ),
        (
            "version 00 with a trailing dot",
            with(format!("{}.", tp("01"))),
            New("03"),
        ),
        (
            "version 00 with more fields",
            with(format!("{}-extra", tp("01"))),
            New("03"),
        ),
        (
            "future version, no dash after the flags",
            with(format!(
                "cc-{TRACE}-{PARENT}-01.what-the-future-will-be-like"
            )),
            New("03"),
        ),
        (
            "trace-id too short",
            with(format!("00-{}-{PARENT}-01", &TRACE[1..])),
            New("03"),
        ),
        (
            "trace-id too long",
            with(format!("00-{TRACE}3-{PARENT}-01")),
            New("03"),
        ),
        (
            "trace-id uppercase",
            with(format!("00-{}-{PARENT}-01", "ABCDEF".repeat(5) + "AB")),
            New("03"),
        ),
        (
            "trace-id illegal character",
            with(format!("00-.{}-{PARENT}-01", &TRACE[1..])),
            New("03"),
        ),
        (
            "trace-id all zeros",
            with(format!("00-{zeros32}-{PARENT}-01")),
            New("03"),
        ),
        (
            "parent-id too short",
            with(format!("00-{TRACE}-{}-01", &PARENT[1..])),
            New("03"),
        ),
        (
            "parent-id too long",
            with(format!("00-{TRACE}-{PARENT}7-01")),
            New("03"),
        ),
        (
            "parent-id uppercase",
            with(format!("00-{TRACE}-ABCDEF1234567890-01")),
            New("03"),
        ),
        (
            "parent-id all zeros",
            with(format!("00-{TRACE}-{zeros16}-01")),
            New("03"),
        ),
        ("flags illegal characters", with(tp(".0")), New("03")),
        ("flags too long", with(tp("001")), New("03")),
        ("flags too short", with(tp("1")), New("03")),
        ("two traceparent lines", vec![tp("01"), tp("01")], New("03")),
        (
            "two traceparent lines, different",
            vec![tp("01"), format!("00-{}-{PARENT}-01", "a".repeat(32))],
            New("03"),
        ),
        (
            "two lines, one invalid",
            vec![tp("01"), "garbage".to_owned()],
            New("03"),
        ),
    ];
    for (case, traceparents, expect) in cases {
        let mut lines: Vec<(&str, String)> = traceparents
            .into_iter()
            .map(|v| ("traceparent", v))
            .collect();
        lines.push(("tracestate", "foo=1".to_owned()));
        let sent = hop.send(&lines).await;
        match expect {
            Join(flags) => {
                sent.assert_joined(case, flags);
                assert_eq!(
                    sent.tracestates,
                    [Some("foo=1".to_owned()), Some("foo=1".to_owned())],
                    "{case}: the tracestate is passed on"
                );
            }
            New(flags) => sent.assert_new_trace(case, flags),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracestate_rules_through_a_real_hop() {
    let hop = Hop::start().await;
    let key_chars = "abcdefghijklmnopqrstuvwxyz0123456789_-*/@";
    let value_chars: String = (0x20u8..=0x7e)
        .filter(|c| *c != b',' && *c != b'=')
        .map(char::from)
        .collect();
    let members = |from: usize, to: usize| {
        (from..=to)
            .map(|i| format!("bar{i:02}={i:02}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let lines32 = vec![
        members(1, 10),
        members(11, 20),
        members(21, 30),
        members(31, 32),
    ];
    let lines33 = vec![
        members(1, 10),
        members(11, 20),
        members(21, 30),
        members(31, 33),
    ];
    let s = |v: &str| v.to_owned();
    // (case, tracestate lines, the tracestate both calls must carry)
    let cases: Vec<(&str, Vec<String>, Option<String>)> = vec![
        ("no tracestate", vec![], None),
        ("one member", vec![s("foo=1")], Some(s("foo=1"))),
        (
            "vendor example, unchanged",
            vec![s("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")],
            Some(s("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")),
        ),
        (
            "several lines combined in order",
            vec![s("foo=1,bar=2"), s("rojo=1,congo=2"), s("baz=3")],
            Some(s("foo=1,bar=2,rojo=1,congo=2,baz=3")),
        ),
        (
            "an empty line after is ignored",
            vec![s("foo=1"), s("")],
            Some(s("foo=1")),
        ),
        (
            "an empty line before is ignored",
            vec![s(""), s("foo=1")],
            Some(s("foo=1")),
        ),
        ("only an empty line", vec![s("")], None),
        (
            "spaces and tabs around commas",
            vec![s("foo=1 \t , \t bar=2, \t baz=3")],
            Some(s("foo=1,bar=2,baz=3")),
        ),
        (
            "tabs and spaces",
            vec![s("foo=1\t \t,\t \tbar=2,\t \tbaz=3")],
            Some(s("foo=1,bar=2,baz=3")),
        ),
        (
            "leading and trailing OWS",
            vec![s("\t foo=1 \t")],
            Some(s("foo=1")),
        ),
        (
            "empty list members",
            vec![s("foo=1,,bar=2, ,")],
            Some(s("foo=1,bar=2")),
        ),
        (
            "a value's leading spaces are kept",
            vec![s("foo=  1")],
            Some(s("foo=  1")),
        ),
        (
            "32 members over four lines",
            lines32.clone(),
            Some(lines32.join(",")),
        ),
        ("33 members over four lines", lines33, None),
        (
            "every key character",
            vec![format!("{key_chars}=1")],
            Some(format!("{key_chars}=1")),
        ),
        (
            "every key character after a digit",
            vec![format!("0{key_chars}=1")],
            Some(format!("0{key_chars}=1")),
        ),
        ("key of one letter", vec![s("a=1")], Some(s("a=1"))),
        ("key of one digit", vec![s("7=1")], Some(s("7=1"))),
        (
            "every value character",
            vec![format!("foo={value_chars}")],
            Some(format!("foo={value_chars}")),
        ),
        (
            "multi-tenant key, every character",
            vec![format!("{key_chars}@a-z0-9_-*/=1")],
            Some(format!("{key_chars}@a-z0-9_-*/=1")),
        ),
        (
            "tenant-id starting with a digit",
            vec![s("1t@v=1")],
            Some(s("1t@v=1")),
        ),
        (
            "'@' right after the first character",
            vec![s("a@bc=1")],
            Some(s("a@bc=1")),
        ),
        ("'@' last", vec![s("foo@=1,bar=2")], Some(s("foo@=1,bar=2"))),
        (
            "'@' after '@'",
            vec![s("foo@@bar=1")],
            Some(s("foo@@bar=1")),
        ),
        (
            "several '@'",
            vec![s("foo@bar@baz=1,bar=2")],
            Some(s("foo@bar@baz=1,bar=2")),
        ),
        (
            "key of 256, '@' everywhere after the first",
            vec![format!("a{}=1", "@".repeat(255))],
            Some(format!("a{}=1", "@".repeat(255))),
        ),
        (
            "key of 256",
            vec![s("foo=1"), format!("{}=1", "z".repeat(256))],
            Some(format!("foo=1,{}=1", "z".repeat(256))),
        ),
        (
            "key of 257",
            vec![s("foo=1"), format!("{}=1", "z".repeat(257))],
            None,
        ),
        (
            "'@' key of 257",
            vec![s("foo=1"), format!("a{}=1", "@".repeat(256))],
            None,
        ),
        (
            "tenant-id of 241, system-id of 14",
            vec![
                s("foo=1"),
                format!("{}@{}=1", "t".repeat(241), "v".repeat(14)),
            ],
            Some(format!("foo=1,{}@{}=1", "t".repeat(241), "v".repeat(14))),
        ),
        (
            "tenant part of 242 (Level 1 refused it)",
            vec![s("foo=1"), format!("{}@v=1", "t".repeat(242))],
            Some(format!("foo=1,{}@v=1", "t".repeat(242))),
        ),
        (
            "system part of 15 (Level 1 refused it)",
            vec![s("foo=1"), format!("t@{}=1", "v".repeat(15))],
            Some(format!("foo=1,t@{}=1", "v".repeat(15))),
        ),
        (
            "system part starting with a digit",
            vec![s("t@1v=1")],
            Some(s("t@1v=1")),
        ),
        (
            "value of 256",
            vec![format!("foo={}", "v".repeat(256))],
            Some(format!("foo={}", "v".repeat(256))),
        ),
        (
            "value of 257",
            vec![format!("foo={}", "v".repeat(257))],
            None,
        ),
        ("key with a space before '='", vec![s("foo =1")], None),
        ("uppercase key", vec![s("FOO=1")], None),
        ("dot in key", vec![s("foo.bar=1")], None),
        ("key starting with '@'", vec![s("@foo=1,bar=2")], None),
        ("key starting with '_'", vec![s("_foo=1,bar=2")], None),
        ("key starting with '-'", vec![s("-foo=1,bar=2")], None),
        ("key starting with '*'", vec![s("*foo=1,bar=2")], None),
        ("key starting with '/'", vec![s("/foo=1,bar=2")], None),
        (
            "duplicate key, same value",
            vec![s("foo=1,foo=1")],
            Some(s("foo=1")),
        ),
        (
            "duplicate key, other value: the first kept",
            vec![s("foo=1,foo=2")],
            Some(s("foo=1")),
        ),
        (
            "duplicate key across lines",
            vec![s("foo=1"), s("foo=2")],
            Some(s("foo=1")),
        ),
        (
            "duplicate key: the rest of the list kept, in order",
            vec![s("rojo=1,foo=1,congo=2"), s("foo=2,baz=3")],
            Some(s("rojo=1,foo=1,congo=2,baz=3")),
        ),
        (
            "33 members with a duplicate are still 33",
            vec![lines32.join(","), s("bar01=x")],
            None,
        ),
        (
            "a duplicate with an invalid value drops the list",
            vec![s("foo=1,foo=")],
            None,
        ),
        ("'=' in a value", vec![s("foo=bar=baz")], None),
        ("empty value", vec![s("foo=,bar=3")], None),
        ("tab inside a value", vec![s("foo=a\tb")], None),
        ("member without '='", vec![s("foo=1,bar")], None),
    ];
    for (case, tracestates, expected) in cases {
        let mut lines = vec![("traceparent", tp("01"))];
        lines.extend(tracestates.into_iter().map(|v| ("tracestate", v)));
        let sent = hop.send(&lines).await;
        // Whatever happens to the tracestate, the traceparent is kept.
        sent.assert_joined(case, "01");
        assert_eq!(
            sent.tracestates,
            [expected.clone(), expected],
            "{case}: the tracestate each call carried"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_flag_through_a_real_hop() {
    let hop = Hop::start().await;
    // Continuing a trace: the random flag exactly as received, whatever the
    // sampled flag (an unsampled span is dropped by the SDK, whose flags are
    // then 00: the propagator restores random from what it extracted).
    for (incoming, outgoing) in [
        ("03", "03"),
        ("01", "01"),
        ("02", "02"),
        ("00", "00"),
        ("ff", "03"),
    ] {
        let sent = hop.send(&[("traceparent", tp(incoming))]).await;
        sent.assert_joined(&format!("incoming {incoming}"), outgoing);
    }
    // Starting a trace with the SDK's random trace-ids: random is set.
    let sent = hop.send(&[]).await;
    sent.assert_new_trace("no traceparent", "03");
    let sent = hop.send(&[("traceparent", tp("0x"))]).await;
    sent.assert_new_trace("invalid traceparent", "03");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_call_gets_its_client_span_as_parent() {
    let hop = Hop::start().await;
    let sent = hop
        .send(&[
            ("traceparent", tp("03")),
            ("tracestate", "congo=t61rcWkgMzE".into()),
        ])
        .await;
    sent.assert_joined("sampled + random", "03");
    let spans = hop.suite.trace(TRACE, 3).await;
    let server = one(
        &spans,
        "profile-aggregator",
        SpanKind::Server,
        "GET /user-profile/{id}",
    );
    assert_eq!(
        server.parent_span_id.as_deref(),
        Some(PARENT),
        "{:#?}",
        summary(&spans)
    );
    for (wire, name) in sent
        .traceparents
        .iter()
        .zip(["GET /users/{id}", "GET /users/{id}/orders"])
    {
        let client = one(&spans, "profile-aggregator", SpanKind::Client, name);
        assert_eq!(
            wire.parent_id, client.span_id,
            "{name}: the CLIENT span is the parent"
        );
        assert_eq!(
            client.parent_span_id.as_deref(),
            Some(server.span_id.as_str())
        );
        assert_eq!(client.trace_state, "congo=t61rcWkgMzE", "{name}");
    }
}

/// The SERVER span's attribute holding the whole received `tracestate` when
/// the SDK's `TraceState` (the spans' `trace_state`) cannot.
const RECEIVED: &str = "w3c.tracestate.received";

/// Each case gets a trace of its own, so its spans are told apart.
fn case_trace(case: usize) -> String {
    format!("{:032x}", 0xabc0_0000 + case)
}

/// The list a span records: its `trace_state`, or the whole received list
/// beside it where the SDK could hold only part.
fn recorded_list(span: &otlp_receiver::CollectedSpan) -> &str {
    span.attr_str(RECEIVED).unwrap_or(&span.trace_state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_spans_record_the_tracestate_sent_on_the_wire() {
    let hop = Hop::start().await;
    let system14 = format!("t@{}", "v".repeat(14));
    let s = |v: &str| v.to_owned();
    // (case, tracestate lines, sent downstream, the spans' trace_state,
    // the SERVER span's `w3c.tracestate.received`)
    type Case<'a> = (&'a str, Vec<String>, Option<String>, String, Option<String>);
    let cases: Vec<Case> = vec![
        (
            "keys the SDK accepts: trace_state is the list",
            vec![s("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7")],
            Some(s("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7")),
            s("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"),
            None,
        ),
        (
            "a 14-character system part: the whole list beside trace_state",
            vec![format!("foo=1,{system14}=2,bar=3")],
            Some(format!("foo=1,{system14}=2,bar=3")),
            s("foo=1,bar=3"),
            Some(format!("foo=1,{system14}=2,bar=3")),
        ),
        (
            "several '@'",
            vec![s("a@b@c=1"), s("congo=2")],
            Some(s("a@b@c=1,congo=2")),
            s("congo=2"),
            Some(s("a@b@c=1,congo=2")),
        ),
        (
            "only keys the SDK refuses",
            vec![format!("{system14}=1,x@_y=2")],
            Some(format!("{system14}=1,x@_y=2")),
            s(""),
            Some(format!("{system14}=1,x@_y=2")),
        ),
        (
            "a duplicate: what is recorded is what went on",
            vec![s("foo=1,bar=2,foo=3")],
            Some(s("foo=1,bar=2")),
            s("foo=1,bar=2"),
            None,
        ),
        (
            "a duplicate of a key the SDK refuses",
            vec![format!("{system14}=1,foo=2,{system14}=3")],
            Some(format!("{system14}=1,foo=2")),
            s("foo=2"),
            Some(format!("{system14}=1,foo=2")),
        ),
        (
            "lesson 3's example",
            vec![
                s("congo=t61rcWkgMzE,a@b@c=1,congo=again"),
                format!("{system14}=2"),
            ],
            Some(format!("congo=t61rcWkgMzE,a@b@c=1,{system14}=2")),
            s("congo=t61rcWkgMzE"),
            Some(format!("congo=t61rcWkgMzE,a@b@c=1,{system14}=2")),
        ),
        (
            "an invalid list: none anywhere",
            vec![s("foo=1,Foo=2")],
            None,
            s(""),
            None,
        ),
    ];
    for (i, (case, tracestates, wire_state, trace_state, received)) in cases.into_iter().enumerate()
    {
        let trace = case_trace(i);
        let mut lines = vec![("traceparent", format!("00-{trace}-{PARENT}-01"))];
        lines.extend(tracestates.into_iter().map(|v| ("tracestate", v)));
        let sent = hop.send(&lines).await;
        assert!(
            sent.traceparents.iter().all(|w| w.trace_id == trace),
            "{case}: the trace is continued"
        );
        assert_eq!(
            sent.tracestates,
            [wire_state.clone(), wire_state.clone()],
            "{case}: what the downstream received"
        );
        let spans = hop.suite.trace(&trace, 3).await;
        let server = one(
            &spans,
            "profile-aggregator",
            SpanKind::Server,
            "GET /user-profile/{id}",
        );
        assert_eq!(server.attr_str(RECEIVED), received.as_deref(), "{case}");
        for span in &spans {
            assert_eq!(span.trace_state, trace_state, "{case}: {}", span.name);
        }
        // The invariant: the list the SERVER span records is the one on
        // the wire, to the character.
        assert_eq!(
            recorded_list(server),
            wire_state.as_deref().unwrap_or(""),
            "{case}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_records_a_tracestate_the_sdk_cannot_hold() {
    // Lesson 3's request, through the real services.
    let suite = Suite::start(Options::default()).await;
    let trace = case_trace(99);
    let system14 = format!("t@{}", "v".repeat(14));
    let response = suite
        .profile(
            "42",
            "concurrent",
            &[
                ("traceparent", &format!("00-{trace}-{PARENT}-01")),
                ("tracestate", "congo=t61rcWkgMzE,a@b@c=1,congo=again"),
                ("tracestate", &format!("{system14}=2")),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    let whole = format!("congo=t61rcWkgMzE,a@b@c=1,{system14}=2");
    let spans = suite.trace(&trace, 7).await;
    let servers: Vec<_> = spans
        .iter()
        .filter(|s| s.kind == SpanKind::Server)
        .collect();
    assert_eq!(servers.len(), 3, "{:#?}", summary(&spans));
    // Each real service received the whole list (its SERVER span says so)
    // and every span holds the part the SDK can.
    for server in servers {
        assert_eq!(
            server.attr_str(RECEIVED),
            Some(whole.as_str()),
            "{}",
            server.service_name
        );
    }
    for span in &spans {
        assert_eq!(
            span.trace_state, "congo=t61rcWkgMzE",
            "{} {}",
            span.service_name, span.name
        );
        if span.kind != SpanKind::Server {
            assert_eq!(span.attr_str(RECEIVED), None, "SERVER spans only");
        }
    }
}

/// An aggregator with the validation endpoint on (through its environment
/// variable, as a container would set it).
async fn validation_suite() -> Suite {
    Suite::start(Options {
        extra_env: vec![("profile-aggregator", "TRACECONTEXT_VALIDATION", "true")],
        ..Options::default()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_endpoint_calls_each_url_in_order_then_answers() {
    const DELAY: Duration = Duration::from_millis(300);
    let first = Stub::start_with_delay(HttpStatus::OK, DELAY).await;
    let second = Stub::start_with_delay(HttpStatus::OK, DELAY).await;
    let suite = validation_suite().await;
    let body = serde_json::json!([
        {"url": format!("{}/callback/scope.0", first.url), "arguments": [{"url": "http://127.0.0.1:1/next", "arguments": []}]},
        {"url": format!("{}/callback/scope.1", second.url), "arguments": []},
    ]);
    let started = Instant::now();
    let response = suite
        .client
        .post(format!("{}/verify-tracecontext", suite.aggregator.url))
        .header("traceparent", tp("01"))
        .header("tracestate", "foo=1")
        .header("tracestate", "bar=2")
        .json(&body)
        .send()
        .await
        .unwrap();
    let answered = Instant::now();
    assert_eq!(response.status(), 200, "{:?}", response.text().await);

    let (a, b) = (first.calls(), second.calls());
    assert_eq!((a.len(), b.len()), (1, 1), "one call to each, already made");
    let (a, b) = (&a[0], &b[0]);
    assert!(
        b.at >= a.at + DELAY,
        "the second call starts after the first has answered"
    );
    assert!(
        answered >= b.at + DELAY && answered - started >= 2 * DELAY,
        "the answer comes after both calls finished"
    );
    for (call, path, arguments) in [
        (a, "/callback/scope.0", body[0]["arguments"].clone()),
        (b, "/callback/scope.1", serde_json::json!([])),
    ] {
        assert_eq!(call.method, "POST");
        assert_eq!(call.path, path);
        let sent: serde_json::Value = serde_json::from_slice(&call.body).unwrap();
        assert_eq!(sent, arguments, "`arguments` is the body");
        assert_eq!(
            single_line(call, "tracestate").as_deref(),
            Some("foo=1,bar=2")
        );
    }
    let (wa, wb) = (
        wire(&single_line(a, "traceparent").unwrap()),
        wire(&single_line(b, "traceparent").unwrap()),
    );
    assert_eq!((wa.trace_id.as_str(), wb.trace_id.as_str()), (TRACE, TRACE));
    assert_eq!((wa.flags.as_str(), wb.flags.as_str()), ("01", "01"));
    assert_ne!(wa.parent_id, wb.parent_id);

    // Each call is a CLIENT span, child of the endpoint's SERVER span.
    let spans = suite.trace(TRACE, 3).await;
    let server = one(
        &spans,
        "profile-aggregator",
        SpanKind::Server,
        "POST /verify-tracecontext",
    );
    assert_eq!(server.parent_span_id.as_deref(), Some(PARENT));
    for wire in [&wa, &wb] {
        let client = spans
            .iter()
            .find(|s| s.span_id == wire.parent_id)
            .unwrap_or_else(|| panic!("no span {}: {:#?}", wire.parent_id, summary(&spans)));
        assert_eq!(client.kind, SpanKind::Client);
        assert_eq!(
            client.parent_span_id.as_deref(),
            Some(server.span_id.as_str())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_endpoint_refuses_non_loopback_urls_before_any_call() {
    let stub = Stub::start(HttpStatus::OK).await;
    let suite = validation_suite().await;
    let response = suite
        .client
        .post(format!("{}/verify-tracecontext", suite.aggregator.url))
        .json(&serde_json::json!([
            {"url": format!("{}/callback/a.0", stub.url), "arguments": []},
            {"url": "http://192.0.2.1/callback/a.1", "arguments": []},
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("192.0.2.1 is not a loopback host")
            && message.contains("--tracecontext-validation-allow-remote"),
        "{message}"
    );
    assert!(
        stub.calls().is_empty(),
        "no call made, not even the valid one"
    );

    // Not JSON of the right shape: 400 too.
    let response = suite
        .client
        .post(format!("{}/verify-tracecontext", suite.aggregator.url))
        .header("content-type", "application/json")
        .body(r#"{"url": "http://127.0.0.1:1/"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_endpoint_is_off_by_default() {
    let stub = Stub::start(HttpStatus::OK).await;
    let suite = Suite::start(Options::default()).await;
    let response = suite
        .client
        .post(format!("{}/verify-tracecontext", suite.aggregator.url))
        .json(&serde_json::json!([{"url": format!("{}/callback/a.0", stub.url), "arguments": []}]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert!(stub.calls().is_empty());
}
