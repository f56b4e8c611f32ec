//! The aggregator's remedies, each proven against injected faults by what
//! the caller gets AND what the trace says: timeouts, retries (with backoff
//! and a budget), the circuit breaker, hedged requests, the bulkhead and the
//! degraded answer.
//!
//! The faulty dependency is a scripted stub (`common::fault_stub`) in this
//! process; the aggregator is the real binary. Timing assertions are
//! orderings and generous ratios: the machine is noisy.

use std::time::{Duration, Instant};

use crate::common::closed_port_url;
use crate::common::fault_stub::{FaultStub, Script, Step};
use crate::common::stub::Stub;
use crate::common::{summary, traceresponse_ids, Options, Suite};
use otlp_receiver::{AttrValue, CollectedSpan, SpanEvent, SpanKind, StatusCode};

const ORDERS_CALL: &str = "GET /users/{id}/orders";
const USER_CALL: &str = "GET /users/{id}";
const AGGREGATOR: &str = "profile-aggregator";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The aggregator with a healthy user stub, `orders` as the order service
/// and these extra flags.
async fn with_orders(orders: &FaultStub, flags: &[&str]) -> (Suite, Stub) {
    let users = Stub::start(axum::http::StatusCode::OK).await;
    let suite = Suite::start(Options {
        user_url: Some(users.url.clone()),
        order_url: Some(orders.url.clone()),
        aggregator_args: flags.iter().map(|f| f.to_string()).collect(),
        ..Options::default()
    })
    .await;
    (suite, users)
}

/// What one profile request got.
struct Answer {
    status: u16,
    body: serde_json::Value,
    trace_id: String,
    elapsed: Duration,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }

    fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or_default()
    }
}

/// `GET /user-profile/42?{query}`.
async fn get(suite: &Suite, query: &str) -> Answer {
    let started = Instant::now();
    let response = suite
        .client
        .get(format!("{}/user-profile/42?{query}", suite.aggregator.url))
        .send()
        .await
        .expect("the aggregator answers");
    let (trace_id, _) = traceresponse_ids(&response);
    let status = response.status().as_u16();
    let body = response.json().await.expect("a JSON body");
    Answer {
        status,
        body,
        trace_id,
        elapsed: started.elapsed(),
    }
}

/// The aggregator's spans of a trace, once its SERVER span (which ends
/// last, after every CLIENT and INTERNAL span of the request) is exported.
async fn aggregator_spans(suite: &Suite, trace_id: &str) -> Vec<CollectedSpan> {
    let mut spans: Vec<CollectedSpan> = suite
        .trace_where(trace_id, |spans| {
            spans
                .iter()
                .any(|s| s.service_name == AGGREGATOR && s.kind == SpanKind::Server)
        })
        .await
        .into_iter()
        .filter(|s| s.service_name == AGGREGATOR)
        .collect();
    spans.sort_by_key(|s| s.start_unix_nanos);
    spans
}

fn server(spans: &[CollectedSpan]) -> &CollectedSpan {
    spans
        .iter()
        .find(|s| s.kind == SpanKind::Server)
        .expect("the SERVER span")
}

/// Spans of this kind and name, by start time.
fn named<'a>(spans: &'a [CollectedSpan], kind: SpanKind, name: &str) -> Vec<&'a CollectedSpan> {
    spans
        .iter()
        .filter(|s| s.kind == kind && s.name == name)
        .collect()
}

/// The `bulkhead.wait` spans of calls to the order service (the user
/// service has a bulkhead of its own).
fn order_waits(spans: &[CollectedSpan]) -> Vec<&CollectedSpan> {
    named(spans, SpanKind::Internal, "bulkhead.wait")
        .into_iter()
        .filter(|s| s.attr_str("dependency") == Some("order-service"))
        .collect()
}

fn events<'a>(span: &'a CollectedSpan, name: &str) -> Vec<&'a SpanEvent> {
    span.events.iter().filter(|e| e.name == name).collect()
}

fn event_str<'a>(event: &'a SpanEvent, key: &str) -> Option<&'a str> {
    event.attributes.get(key).and_then(AttrValue::as_str)
}

fn event_i64(event: &SpanEvent, key: &str) -> Option<i64> {
    event.attributes.get(key).and_then(AttrValue::as_i64)
}

fn attr_bool(span: &CollectedSpan, key: &str) -> Option<bool> {
    span.attr(key).and_then(AttrValue::as_bool)
}

fn resend_counts(calls: &[&CollectedSpan]) -> Vec<Option<i64>> {
    calls
        .iter()
        .map(|s| s.attr_i64("http.request.resend_count"))
        .collect()
}

// ---------------------------------------------------------------- timeouts

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_request_timeout_gives_504_and_an_error_span() {
    let orders = FaultStub::start(Script::always(Step::ok().after(ms(800)))).await;
    let (suite, _users) = with_orders(&orders, &[]).await;

    // The flag's timeout (10 s in the harness) lets the slow answer through...
    let patient = get(&suite, "mode=sequential").await;
    assert_eq!(patient.status, 200, "{}", patient.body);

    // ... the query's does not.
    let answer = get(&suite, "mode=sequential&order_timeout=150ms").await;
    assert_eq!(answer.status, 504, "{}", answer.body);
    assert_eq!(answer.code(), "dependency_timeout");
    assert!(
        answer.message().contains("order-service") && answer.message().contains("150 ms"),
        "{}",
        answer.message()
    );
    assert!(
        answer.elapsed < ms(700),
        "gave up at the timeout, not after the 800 ms answer: {:?}",
        answer.elapsed
    );

    let spans = aggregator_spans(&suite, &answer.trace_id).await;
    let calls = named(&spans, SpanKind::Client, ORDERS_CALL);
    assert_eq!(calls.len(), 1, "{:#?}", summary(&spans));
    assert_eq!(calls[0].status_code, StatusCode::Error);
    assert_eq!(calls[0].attr_str("error.type"), Some("timeout"));
    assert!(calls[0].duration() < ms(700), "{:?}", calls[0].duration());
    let root = server(&spans);
    assert_eq!(root.status_code, StatusCode::Error);
    assert_eq!(root.attr_i64("http.response.status_code"), Some(504));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_remedy_parameters_are_400s_naming_the_accepted_forms() {
    let orders = FaultStub::start(Script::always(Step::ok())).await;
    let (suite, _users) = with_orders(&orders, &[]).await;
    for (query, expect) in [
        ("retry=maybe", "expected on or off"),
        ("breaker=1", "expected on or off"),
        ("fallback=yes", "expected on or off"),
        ("hedge_after=soon", "p95"),
        ("hedge_after=p100", "p1 to p99.9"),
        ("order_timeout=0s", "at least 1ms and at most 1m"),
        (
            "order_timeout=1ns",
            "order_timeout=\"1ns\": a timeout must be at least 1ms",
        ),
        ("user_timeout=2h", "at least 1ms and at most 1m"),
        ("hedge_after=50us", "at least 1ms and at most 1m"),
        ("user_timeout=fast", "200ms"),
        ("bulkhead=on", "--max-in-flight"),
    ] {
        let answer = get(&suite, query).await;
        assert_eq!(answer.status, 400, "{query}: {}", answer.body);
        assert_eq!(answer.code(), "invalid_request", "{query}");
        assert!(
            answer.message().contains(expect),
            "{query}: {}",
            answer.message()
        );
    }
    assert_eq!(orders.count(), 0, "a refused request calls nobody");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_or_repeated_parameters_are_400s_and_known_ones_combine() {
    let orders = FaultStub::start(Script::always(Step::ok())).await;
    let (suite, _users) = with_orders(&orders, &["--max-in-flight", "2"]).await;

    // A typo must not run the request as if no remedy had been asked for.
    let answer = get(&suite, "mode=concurrent&retyr=on").await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(answer.code(), "invalid_request");
    let message = answer.message();
    assert!(message.contains("retyr"), "{message}");
    for accepted in [
        "mode",
        "retry",
        "breaker",
        "hedge_after",
        "bulkhead",
        "fallback",
        "user_timeout",
        "order_timeout",
    ] {
        assert!(message.contains(accepted), "lacks {accepted}: {message}");
    }

    // Two answers to one question: refused rather than one picked.
    let answer = get(&suite, "retry=on&retry=off").await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(answer.code(), "invalid_request");
    assert!(answer.message().contains("retry"), "{}", answer.message());
    assert_eq!(orders.count(), 0, "a refused request calls nobody");

    let answer = get(
        &suite,
        "mode=concurrent&retry=on&breaker=on&hedge_after=p95&bulkhead=on\
         &fallback=true&user_timeout=2s&order_timeout=1500ms",
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["mode"], "concurrent");
    assert!(answer.body["orders"].is_array(), "{}", answer.body);
    assert_eq!(orders.count(), 1);
}

// ----------------------------------------------------------------- retries

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_resend_5xx_with_backoff_that_grows() {
    let orders = FaultStub::start(Script::first(3, Step::status(503)).then(Step::ok())).await;
    let flags = [
        "--retry-max",
        "3",
        "--retry-backoff",
        "60ms",
        "--retry-jitter",
        "none",
        "--retry-budget-min",
        "10",
    ];
    let (suite, _users) = with_orders(&orders, &flags).await;

    let answer = get(&suite, "retry=on").await;
    assert_eq!(
        answer.status, 200,
        "the fourth attempt succeeds: {}",
        answer.body
    );
    assert_eq!(orders.count(), 4);

    let spans = aggregator_spans(&suite, &answer.trace_id).await;
    let calls = named(&spans, SpanKind::Client, ORDERS_CALL);
    assert_eq!(
        calls.len(),
        4,
        "one CLIENT span per attempt: {:#?}",
        summary(&spans)
    );
    // Absent on the first attempt (semantic conventions), then 1, 2, 3.
    assert_eq!(resend_counts(&calls), [None, Some(1), Some(2), Some(3)]);
    let statuses: Vec<_> = calls
        .iter()
        .map(|s| s.attr_i64("http.response.status_code"))
        .collect();
    assert_eq!(statuses, [Some(503), Some(503), Some(503), Some(200)]);
    for failed in &calls[..3] {
        assert_eq!(failed.status_code, StatusCode::Error);
    }
    assert_eq!(calls[3].status_code, StatusCode::Unset);

    // Each attempt's traceparent names its own CLIENT span.
    let root = server(&spans);
    for (arrival, call) in orders.arrivals().iter().zip(&calls) {
        let traceparent = arrival.traceparent.as_deref().expect("traceparent");
        assert!(
            traceparent.contains(&call.span_id),
            "{traceparent} vs {}",
            call.span_id
        );
        assert_eq!(call.parent_span_id.as_deref(), Some(root.span_id.as_str()));
    }

    // One backoff span between each pair of attempts, growing.
    let waits = named(&spans, SpanKind::Internal, "retry.backoff");
    assert_eq!(waits.len(), 3, "{:#?}", summary(&spans));
    for (i, wait) in waits.iter().enumerate() {
        assert_eq!(
            wait.attr_i64("http.request.resend_count"),
            Some(i as i64 + 1)
        );
        assert!(
            wait.start_unix_nanos >= calls[i].end_unix_nanos,
            "wait {i} after attempt {i}"
        );
        assert!(
            wait.end_unix_nanos <= calls[i + 1].start_unix_nanos,
            "attempt {} after wait {i}",
            i + 1
        );
    }
    let delays: Vec<f64> = waits
        .iter()
        .map(|w| {
            w.attr("retry.delay_ms")
                .and_then(AttrValue::as_f64)
                .unwrap()
        })
        .collect();
    assert!(
        (59.0..=61.0).contains(&delays[0])
            && delays[1] > 1.9 * delays[0]
            && delays[2] > 1.9 * delays[1],
        "without jitter each delay doubles: {delays:?}"
    );
    let lengths: Vec<Duration> = waits.iter().map(|w| w.duration()).collect();
    assert!(
        lengths[1] > lengths[0].mul_f64(1.3) && lengths[2] > lengths[1].mul_f64(1.3),
        "the waits grow on the timeline too: {lengths:?}"
    );
    let arrivals = orders.arrivals();
    let gaps: Vec<Duration> = arrivals.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(
        gaps[0] < gaps[1] && gaps[1] < gaps[2],
        "the stub sees growing gaps: {gaps:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4xx_is_never_retried() {
    let orders = FaultStub::start(Script::sequence([Step::status(400), Step::status(404)])).await;
    let (suite, _users) = with_orders(&orders, &["--retry", "--retry-budget-min", "10"]).await;

    for (expected, code) in [(400, "invalid_request"), (404, "not_found")] {
        let before = orders.count();
        let answer = get(&suite, "mode=sequential").await;
        assert_eq!(
            (answer.status, answer.code()),
            (expected, code),
            "{}",
            answer.body
        );
        assert_eq!(orders.count(), before + 1, "one attempt, no retry");

        let spans = aggregator_spans(&suite, &answer.trace_id).await;
        let calls = named(&spans, SpanKind::Client, ORDERS_CALL);
        assert_eq!(calls.len(), 1, "{:#?}", summary(&spans));
        assert_eq!(calls[0].attr_i64("http.request.resend_count"), None);
        assert!(named(&spans, SpanKind::Internal, "retry.backoff").is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_errors_and_timeouts_are_retried() {
    // Connection refused on the user service.
    let orders = FaultStub::start(Script::always(Step::ok())).await;
    let suite = Suite::start(Options {
        user_url: Some(closed_port_url()),
        order_url: Some(orders.url.clone()),
        aggregator_args: ["--retry", "--retry-max", "2", "--retry-backoff", "5ms"]
            .map(String::from)
            .to_vec(),
        ..Options::default()
    })
    .await;
    let answer = get(&suite, "mode=sequential").await;
    assert_eq!(
        (answer.status, answer.code()),
        (502, "dependency_unreachable")
    );
    let spans = aggregator_spans(&suite, &answer.trace_id).await;
    let calls = named(&spans, SpanKind::Client, USER_CALL);
    assert_eq!(
        resend_counts(&calls),
        [None, Some(1), Some(2)],
        "{:#?}",
        summary(&spans)
    );
    for call in &calls {
        assert_eq!(call.attr_str("error.type"), Some("connect_error"));
    }
    let exhausted = events(server(&spans), "retry.exhausted");
    assert_eq!(exhausted.len(), 1, "{:#?}", server(&spans).events);

    // Timeouts on the order service.
    let slow = FaultStub::start(Script::always(Step::ok().after(ms(1500)))).await;
    let (suite, _users) = with_orders(
        &slow,
        &["--retry", "--retry-max", "1", "--retry-backoff", "5ms"],
    )
    .await;
    let answer = get(&suite, "order_timeout=100ms").await;
    assert_eq!((answer.status, answer.code()), (504, "dependency_timeout"));
    let spans = aggregator_spans(&suite, &answer.trace_id).await;
    let calls = named(&spans, SpanKind::Client, ORDERS_CALL);
    assert_eq!(
        resend_counts(&calls),
        [None, Some(1)],
        "{:#?}",
        summary(&spans)
    );
    for call in &calls {
        assert_eq!(call.attr_str("error.type"), Some("timeout"));
    }
    assert_eq!(slow.count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_stop_at_the_budget() {
    let orders = FaultStub::start(Script::always(Step::status(500))).await;
    let flags = [
        "--retry",
        "--retry-max",
        "5",
        "--retry-backoff",
        "1ms",
        "--retry-jitter",
        "none",
        "--retry-budget",
        "0.1",
        "--retry-budget-min",
        "2",
        "--retry-budget-window",
        "60s",
    ];
    let (suite, _users) = with_orders(&orders, &flags).await;

    // Call 1: the floor of 2 allows two retries (2 + 0.1 × 1 = 2.1), the
    // third is refused.
    let first = get(&suite, "").await;
    assert_eq!((first.status, first.code()), (502, "dependency_failed"));
    assert_eq!(orders.count(), 3);
    let spans = aggregator_spans(&suite, &first.trace_id).await;
    let calls = named(&spans, SpanKind::Client, ORDERS_CALL);
    assert_eq!(
        resend_counts(&calls),
        [None, Some(1), Some(2)],
        "{:#?}",
        summary(&spans)
    );
    let refused = events(server(&spans), "retry.budget_exhausted");
    assert_eq!(refused.len(), 1, "{:#?}", server(&spans).events);
    assert_eq!(event_str(refused[0], "dependency"), Some("order-service"));
    assert_eq!(event_str(refused[0], "retry.kind"), Some("retry"));
    assert_eq!(event_i64(refused[0], "http.request.resend_count"), Some(2));

    // Call 2: 2 retries already spent of 2.2 allowed: no retry at all.
    let second = get(&suite, "").await;
    assert_eq!(second.status, 502);
    assert_eq!(orders.count(), 4);
    let spans = aggregator_spans(&suite, &second.trace_id).await;
    assert_eq!(named(&spans, SpanKind::Client, ORDERS_CALL).len(), 1);
    assert_eq!(events(server(&spans), "retry.budget_exhausted").len(), 1);

    // Calls 3–10: the ratio earns exactly one more retry, at call 10
    // (2 + 0.1 × 10 = 3). Without the budget: 6 attempts per call, 60.
    for _ in 3..=10 {
        assert_eq!(get(&suite, "").await.status, 502);
    }
    assert_eq!(orders.count(), 10 + 3, "10 calls, 3 retries");

    // Retries switched off per request: one attempt, no budget involved.
    let off = get(&suite, "retry=off").await;
    assert_eq!(off.status, 502);
    assert_eq!(orders.count(), 14);
    let spans = aggregator_spans(&suite, &off.trace_id).await;
    assert!(events(server(&spans), "retry.budget_exhausted").is_empty());
}

// ---------------------------------------------------------- circuit breaker

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_opens_fails_fast_half_opens_and_closes() {
    let orders = FaultStub::start(Script::first(4, Step::status(500)).then(Step::ok())).await;
    let flags = [
        "--breaker",
        "--breaker-window",
        "4",
        "--breaker-min-calls",
        "4",
        "--breaker-failure-ratio",
        "0.5",
        "--breaker-open-for",
        "2s",
    ];
    let (suite, _users) = with_orders(&orders, &flags).await;

    // Closed: four failures go through; the fourth opens the breaker.
    let mut failures = Vec::new();
    for _ in 0..4 {
        let answer = get(&suite, "").await;
        assert_eq!((answer.status, answer.code()), (502, "dependency_failed"));
        failures.push(answer);
    }
    let opened_at = Instant::now();
    // Open: fail fast with 503, no call made ...
    let rejected = get(&suite, "").await;
    // ... unless the request bypasses the breaker: this call goes through
    // (and the stub, past its four failures, answers).
    let bypass = get(&suite, "breaker=off").await;
    assert!(
        opened_at.elapsed() < ms(1500),
        "both requests came while the breaker was open"
    );

    assert_eq!((rejected.status, rejected.code()), (503, "circuit_open"));
    assert!(
        rejected.message().contains("order-service"),
        "{}",
        rejected.message()
    );
    assert!(
        rejected.elapsed < ms(500),
        "failed fast: {:?}",
        rejected.elapsed
    );
    assert_eq!(bypass.status, 200, "{}", bypass.body);
    assert_eq!(orders.count(), 5, "no call while open, except the bypass");

    let spans = aggregator_spans(&suite, &failures[3].trace_id).await;
    let changes = events(server(&spans), "breaker.state_change");
    assert_eq!(changes.len(), 1, "{:#?}", server(&spans).events);
    assert_eq!(event_str(changes[0], "from"), Some("closed"));
    assert_eq!(event_str(changes[0], "to"), Some("open"));
    assert_eq!(event_str(changes[0], "dependency"), Some("order-service"));
    let spans = aggregator_spans(&suite, &failures[2].trace_id).await;
    assert!(events(server(&spans), "breaker.state_change").is_empty());

    let spans = aggregator_spans(&suite, &rejected.trace_id).await;
    assert!(
        named(&spans, SpanKind::Client, ORDERS_CALL).is_empty(),
        "no CLIENT span: {:#?}",
        summary(&spans)
    );
    let event = events(server(&spans), "breaker.rejected");
    assert_eq!(event.len(), 1, "{:#?}", server(&spans).events);
    assert_eq!(event_str(event[0], "breaker.state"), Some("open"));
    assert_eq!(
        server(&spans).attr_i64("http.response.status_code"),
        Some(503)
    );

    // After --breaker-open-for, one probe goes through; it succeeds: closed.
    let wait = Duration::from_millis(2300).saturating_sub(opened_at.elapsed());
    tokio::time::sleep(wait).await;
    let probe = get(&suite, "").await;
    assert_eq!(probe.status, 200, "{}", probe.body);
    let spans = aggregator_spans(&suite, &probe.trace_id).await;
    let changes: Vec<(Option<&str>, Option<&str>)> = events(server(&spans), "breaker.state_change")
        .into_iter()
        .map(|e| (event_str(e, "from"), event_str(e, "to")))
        .collect();
    assert_eq!(
        changes,
        [
            (Some("open"), Some("half_open")),
            (Some("half_open"), Some("closed"))
        ]
    );
    assert_eq!(named(&spans, SpanKind::Client, ORDERS_CALL).len(), 1);

    // Closed again: calls flow normally.
    let after = get(&suite, "").await;
    assert_eq!(after.status, 200);
    assert_eq!(orders.count(), 7);
}

// -------------------------------------------------------------------- hedge

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hedge_wins_against_a_spiked_primary_and_the_loser_is_cancelled() {
    let spike = Step::ok().after(ms(3000));
    // Request 0 spikes; ten fast answers; request 11 spikes again.
    let script = Script::sequence(
        std::iter::once(spike)
            .chain(std::iter::repeat_n(Step::ok(), 10))
            .chain(std::iter::once(spike)),
    );
    let orders = FaultStub::start(script).await;
    let (suite, _users) = with_orders(&orders, &[]).await;

    // A fixed delay.
    let answer = get(&suite, "hedge_after=150ms").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(
        answer.elapsed < ms(2000),
        "the hedge answered, not the spike: {:?}",
        answer.elapsed
    );
    assert_eq!(orders.count(), 2);
    let spans = aggregator_spans(&suite, &answer.trace_id).await;
    assert_hedged(&spans, ms(150));
    let primary = named(&spans, SpanKind::Client, ORDERS_CALL)[0];
    assert_eq!(primary.attr_i64("hedge.attempt"), Some(1));
    assert_eq!(
        attr_bool(primary, "cancelled"),
        Some(true),
        "the spiked primary lost"
    );

    // Nine plain calls fill the latency window (with the hedge's answer: 10).
    for _ in 0..9 {
        assert_eq!(get(&suite, "hedge_after=off").await.status, 200);
    }
    assert_eq!(orders.count(), 11);

    // A percentile of recent latencies: the p90 of fast answers is a few
    // milliseconds, so the spiked call is hedged almost at once.
    let answer = get(&suite, "hedge_after=p90").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.elapsed < ms(2000), "{:?}", answer.elapsed);
    assert_eq!(orders.count(), 13);
    let spans = aggregator_spans(&suite, &answer.trace_id).await;
    assert_hedged(&spans, Duration::ZERO);
}

/// Two CLIENT spans marked `hedge`, attempt 2 started at least `after`
/// after attempt 1; one answered, the other was cancelled when it did.
/// (Which one wins is the stub's doing: it spikes whichever request arrives
/// first, and with a tiny delay the hedge may overtake the primary.)
fn assert_hedged(spans: &[CollectedSpan], after: Duration) {
    let calls = named(spans, SpanKind::Client, ORDERS_CALL);
    assert_eq!(calls.len(), 2, "{:#?}", summary(spans));
    let attempt = |n: i64| {
        *calls
            .iter()
            .find(|s| s.attr_i64("hedge.attempt") == Some(n))
            .unwrap_or_else(|| panic!("hedge.attempt {n}: {:#?}", calls))
    };
    let (primary, hedge) = (attempt(1), attempt(2));
    for call in [primary, hedge] {
        assert_eq!(
            attr_bool(call, "hedge"),
            Some(true),
            "{:?}",
            call.attributes
        );
    }
    assert!(
        hedge.start_unix_nanos - primary.start_unix_nanos >= after.as_nanos() as u64,
        "the hedge waits for the delay"
    );
    let (loser, winner): (Vec<&CollectedSpan>, Vec<&CollectedSpan>) = calls
        .iter()
        .copied()
        .partition(|s| attr_bool(s, "cancelled") == Some(true));
    assert_eq!((loser.len(), winner.len()), (1, 1), "{:#?}", calls);
    let (loser, winner) = (loser[0], winner[0]);
    // The winner answered.
    assert_eq!(winner.attr_i64("http.response.status_code"), Some(200));
    // The loser was cancelled when the winner answered: no status, an event
    // naming the winner.
    assert_eq!(loser.attr_i64("http.response.status_code"), None);
    assert_eq!(loser.status_code, StatusCode::Unset);
    let cancelled = events(loser, "hedge.cancelled");
    assert_eq!(cancelled.len(), 1, "{:?}", loser.events);
    assert_eq!(
        event_i64(cancelled[0], "hedge.winner"),
        winner.attr_i64("hedge.attempt")
    );
    assert!(
        loser.end_unix_nanos >= winner.end_unix_nanos,
        "cancelled once the winner answered"
    );
    assert!(
        loser.duration() < ms(2000),
        "not left running: {:?}",
        loser.duration()
    );
    assert_eq!(events(server(spans), "hedge.sent").len(), 1);
}

// ----------------------------------------------------------------- bulkhead

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bulkhead_queues_inside_the_aggregator_and_shows_the_wait() {
    let orders = FaultStub::start(Script::always(Step::ok().after(ms(500)))).await;
    let (suite, _users) = with_orders(&orders, &["--max-in-flight", "1"]).await;

    // Two requests at once: the second waits for the first's permit.
    let first = get(&suite, "");
    let second = async {
        tokio::time::sleep(ms(100)).await;
        get(&suite, "").await
    };
    let (first, second) = tokio::join!(first, second);
    assert_eq!((first.status, second.status), (200, 200));
    let arrivals = orders.arrivals();
    assert!(arrivals[1].at - arrivals[0].at >= ms(400), "one at a time");

    let spans = aggregator_spans(&suite, &second.trace_id).await;
    let waits = order_waits(&spans);
    assert_eq!(waits.len(), 1, "{:#?}", summary(&spans));
    let wait = waits[0];
    assert_eq!(attr_bool(wait, "bulkhead.queued"), Some(true));
    assert_eq!(wait.attr_i64("bulkhead.in_flight"), Some(1));
    assert_eq!(wait.attr_i64("bulkhead.max_in_flight"), Some(1));
    assert!(
        wait.duration() >= ms(250),
        "queued behind the first call: {:?}",
        wait.duration()
    );
    let call = named(&spans, SpanKind::Client, ORDERS_CALL)[0];
    assert!(
        call.start_unix_nanos >= wait.end_unix_nanos,
        "the call starts after the wait"
    );
    let spans = aggregator_spans(&suite, &first.trace_id).await;
    let wait = order_waits(&spans)[0];
    assert_eq!(attr_bool(wait, "bulkhead.queued"), Some(false));

    // The timeout bounds the wait: 503 bulkhead_full, an error span.
    let holder = get(&suite, "");
    let impatient = async {
        tokio::time::sleep(ms(100)).await;
        get(&suite, "order_timeout=150ms").await
    };
    let (holder, impatient) = tokio::join!(holder, impatient);
    assert_eq!(holder.status, 200);
    assert_eq!(
        (impatient.status, impatient.code()),
        (503, "bulkhead_full"),
        "{}",
        impatient.body
    );
    let spans = aggregator_spans(&suite, &impatient.trace_id).await;
    let wait = order_waits(&spans)[0];
    assert_eq!(wait.status_code, StatusCode::Error);
    assert!(named(&spans, SpanKind::Client, ORDERS_CALL).is_empty());

    // Bypassed per request: no wait span, and the call overlaps the other.
    let count = orders.count();
    let holder = get(&suite, "");
    let bypass = async {
        tokio::time::sleep(ms(100)).await;
        get(&suite, "bulkhead=off").await
    };
    let (_, bypass) = tokio::join!(holder, bypass);
    assert_eq!(bypass.status, 200);
    let arrivals = orders.arrivals();
    assert!(
        arrivals[count + 1].at - arrivals[count].at < ms(400),
        "not queued"
    );
    let spans = aggregator_spans(&suite, &bypass.trace_id).await;
    assert!(order_waits(&spans).is_empty());
}

// ----------------------------------------------------------------- fallback

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fallback_degrades_the_orders_not_the_request() {
    let orders = FaultStub::start(Script::always(Step::status(500))).await;
    let users = FaultStub::start(Script::sequence([
        Step::ok(),
        Step::ok(),
        Step::status(500),
    ]))
    .await;
    let suite = Suite::start(Options {
        user_url: Some(users.url.clone()),
        order_url: Some(orders.url.clone()),
        ..Options::default()
    })
    .await;

    // Orders fail: with the fallback, the user and a degraded answer.
    let answer = get(&suite, "mode=concurrent&fallback=true").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["user"]["name"], "Stub User");
    assert!(answer.body["orders"].is_null(), "{}", answer.body);
    assert_eq!(answer.body["degraded"], serde_json::json!(["orders"]));
    let spans = aggregator_spans(&suite, &answer.trace_id).await;
    let root = server(&spans);
    assert_eq!(root.status_code, StatusCode::Unset, "a 200 is not an error");
    let applied = events(root, "fallback.applied");
    assert_eq!(applied.len(), 1, "{:#?}", root.events);
    assert_eq!(event_str(applied[0], "dependency"), Some("order-service"));
    assert_eq!(
        event_str(applied[0], "fallback.cause"),
        Some("dependency_failed")
    );
    // The failed call itself is still an error span.
    let call = named(&spans, SpanKind::Client, ORDERS_CALL)[0];
    assert_eq!(call.status_code, StatusCode::Error);

    // Without it, the request fails as before.
    let answer = get(&suite, "fallback=false").await;
    assert_eq!((answer.status, answer.code()), (502, "dependency_failed"));

    // The user has no fallback: a profile without its user means nothing.
    let answer = get(&suite, "fallback=true").await;
    assert_eq!(answer.status, 502, "{}", answer.body);
    assert!(
        answer.message().contains("user-service"),
        "{}",
        answer.message()
    );

    // A healthy answer keeps its shape: orders an array, no `degraded`.
    let healthy = FaultStub::start(Script::always(Step::ok())).await;
    let (suite, _users) = with_orders(&healthy, &["--fallback"]).await;
    let answer = get(&suite, "").await;
    assert_eq!(answer.status, 200);
    assert!(answer.body["orders"].is_array(), "{}", answer.body);
    assert!(answer.body.get("degraded").is_none(), "{}", answer.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fallback_covers_an_open_breaker_and_a_timeout() {
    let orders = FaultStub::start(Script::sequence([
        Step::ok().after(ms(800)),
        Step::status(503),
        Step::status(503),
    ]))
    .await;
    let flags = [
        "--fallback",
        "--breaker",
        "--breaker-window",
        "2",
        "--breaker-min-calls",
        "2",
        "--breaker-open-for",
        "30s",
    ];
    let (suite, _users) = with_orders(&orders, &flags).await;

    // A timeout falls back too.
    let answer = get(&suite, "breaker=off&order_timeout=100ms").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let spans = aggregator_spans(&suite, &answer.trace_id).await;
    let applied = events(server(&spans), "fallback.applied");
    assert_eq!(applied.len(), 1, "{:#?}", server(&spans).events);
    assert_eq!(
        event_str(applied[0], "fallback.cause"),
        Some("dependency_timeout")
    );

    // Two failures open the breaker (each answered degraded) ...
    for _ in 0..2 {
        assert_eq!(
            get(&suite, "").await.body["degraded"],
            serde_json::json!(["orders"])
        );
    }
    // ... and the open circuit is answered degraded, at once.
    let answer = get(&suite, "").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.elapsed < ms(700), "{:?}", answer.elapsed);
    let spans = aggregator_spans(&suite, &answer.trace_id).await;
    let root = server(&spans);
    assert_eq!(
        events(root, "breaker.rejected").len(),
        1,
        "{:#?}",
        root.events
    );
    let applied = events(root, "fallback.applied");
    assert_eq!(
        event_str(applied[0], "fallback.cause"),
        Some("circuit_open")
    );
}
