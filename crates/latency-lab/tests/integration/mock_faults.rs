//! The mocks' latency models and faults through the real processes: W3C
//! baggage overrides that reach the right service only, injected failures
//! and hangs, the simulated connection pool, the delay limit, and a prompt
//! exit with a hung request in flight.
//!
//! Timing assertions are orderings and generous bounds: the exact delay a
//! mock chose is asserted on its span attribute, not on the clock.

use std::time::{Duration, Instant};

use crate::common::{error_body, one, summary, traceresponse_ids, Options, Suite};
use otlp_receiver::{AttrValue, CollectedSpan, SpanKind, StatusCode};

const USER_DB: &str = "db.query SELECT users";
const ORDER_DB: &str = "db.query SELECT orders";
const POOL_WAIT: &str = "db.pool.wait";

fn delay_ms(span: &CollectedSpan) -> Option<f64> {
    span.attr("latency_lab.delay_ms")
        .and_then(AttrValue::as_f64)
}

fn has(spans: &[CollectedSpan], service: &str, name: &str) -> bool {
    spans
        .iter()
        .any(|s| s.service_name == service && s.name == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_baggage_latency_override_slows_only_its_service_and_only_that_trace() {
    let suite = Suite::start(Options::default()).await;
    let response = suite
        .profile("42", "concurrent", &[("baggage", "latency.orders=600ms")])
        .await;
    assert_eq!(response.status(), 200);
    let (trace_id, _) = traceresponse_ids(&response);
    let spans = suite.trace(&trace_id, 7).await;

    let order_db = one(&spans, "order-service", SpanKind::Internal, ORDER_DB);
    assert_eq!(
        delay_ms(order_db),
        Some(600.0),
        "{:#?}",
        order_db.attributes
    );
    assert_eq!(order_db.attr_str("latency_lab.latency_spec"), Some("600ms"));
    assert_eq!(
        order_db.attr_str("latency_lab.override_source"),
        Some("baggage")
    );
    assert_eq!(
        order_db.attr_str("latency_lab.baggage_overrides"),
        Some("latency.orders")
    );
    assert_eq!(order_db.attr_str("latency_lab.fault"), Some("none"));
    assert!(order_db.duration() >= Duration::from_millis(600));

    // The user service saw the same baggage and ignored a key not its own.
    let user_db = one(&spans, "user-service", SpanKind::Internal, USER_DB);
    assert_eq!(delay_ms(user_db), Some(100.0));
    assert_eq!(user_db.attr_str("latency_lab.latency_spec"), Some("100ms"));
    assert_eq!(
        user_db.attr_str("latency_lab.override_source"),
        Some("config")
    );
    assert_eq!(user_db.attr_str("latency_lab.baggage_overrides"), None);
    assert!(user_db.duration() < order_db.duration());

    // The override belonged to that trace: the next request is as configured.
    let response = suite.profile("42", "concurrent", &[]).await;
    let (trace_id, _) = traceresponse_ids(&response);
    let spans = suite.trace(&trace_id, 7).await;
    let order_db = one(&spans, "order-service", SpanKind::Internal, ORDER_DB);
    assert_eq!(delay_ms(order_db), Some(200.0));
    assert_eq!(
        order_db.attr_str("latency_lab.override_source"),
        Some("config")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_sent_in_baggage_is_the_one_sampled() {
    let suite = Suite::start(Options::default()).await;
    // W3C Baggage values carry ',' and '=' percent-encoded.
    let baggage = "latency.user=uniform(min%3D300ms%2Cmax%3D400ms)+spike(p%3D1%2C100ms)";
    let response = suite
        .profile("42", "sequential", &[("baggage", baggage)])
        .await;
    assert_eq!(response.status(), 200);
    let (trace_id, _) = traceresponse_ids(&response);
    let spans = suite.trace(&trace_id, 7).await;
    let user_db = one(&spans, "user-service", SpanKind::Internal, USER_DB);
    assert_eq!(
        user_db.attr_str("latency_lab.latency_spec"),
        Some("uniform(300ms,400ms)+spike(p=1,100ms)")
    );
    let delay = delay_ms(user_db).expect("delay_ms");
    assert!((400.0..=500.0).contains(&delay), "{delay}");
    assert_eq!(
        user_db
            .attr("latency_lab.spiked")
            .and_then(AttrValue::as_bool),
        Some(true)
    );
    assert!(user_db.duration() >= Duration::from_millis(400));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_baggage_failure_fails_only_its_service() {
    let suite = Suite::start(Options::default()).await;

    // fail.orders: the order service fails, the user service does not care.
    let response = suite
        .profile("42", "sequential", &[("baggage", "fail.orders=1")])
        .await;
    let (trace_id, _) = traceresponse_ids(&response);
    let (status, code, message) = error_body(response).await;
    assert_eq!((status, code.as_str()), (502, "dependency_failed"));
    assert!(
        message.contains("order-service") && message.contains("503"),
        "{message}"
    );
    let spans = suite
        .trace_where(&trace_id, |s| {
            has(s, "order-service", ORDER_DB) && has(s, "user-service", USER_DB)
        })
        .await;
    let user_db = one(&spans, "user-service", SpanKind::Internal, USER_DB);
    assert_eq!(user_db.attr_str("latency_lab.fault"), Some("none"));
    assert_eq!(user_db.status_code, StatusCode::Unset);
    let order_db = one(&spans, "order-service", SpanKind::Internal, ORDER_DB);
    assert_eq!(order_db.attr_str("latency_lab.fault"), Some("error"));
    assert_eq!(order_db.status_code, StatusCode::Error);
    assert_eq!(order_db.attr_str("error.type"), Some("injected_fault"));
    // The failure came after the configured delay: the span keeps its length.
    assert_eq!(delay_ms(order_db), Some(200.0));
    assert!(order_db.duration() >= Duration::from_millis(200));
    let order_server = one(
        &spans,
        "order-service",
        SpanKind::Server,
        "GET /users/{id}/orders",
    );
    assert_eq!(order_server.status_code, StatusCode::Error);
    assert_eq!(
        order_server.attr_i64("http.response.status_code"),
        Some(503)
    );

    // fail.user, the example: the user service fails, 502 names it.
    let response = suite
        .profile("42", "sequential", &[("baggage", "fail.user=1")])
        .await;
    let (trace_id, _) = traceresponse_ids(&response);
    let (status, code, message) = error_body(response).await;
    assert_eq!((status, code.as_str()), (502, "dependency_failed"));
    assert!(message.contains("user-service"), "{message}");
    let spans = suite
        .trace_where(&trace_id, |s| {
            has(s, "user-service", USER_DB)
                && s.iter()
                    .any(|s| s.kind == SpanKind::Server && s.service_name == "profile-aggregator")
        })
        .await;
    let user_db = one(&spans, "user-service", SpanKind::Internal, USER_DB);
    assert_eq!(user_db.attr_str("latency_lab.fault"), Some("error"));
    assert_eq!(
        user_db.attr_str("latency_lab.baggage_overrides"),
        Some("fail.user")
    );
    let root = one(
        &spans,
        "profile-aggregator",
        SpanKind::Server,
        "GET /user-profile/{id}",
    );
    assert_eq!(root.status_code, StatusCode::Error);
    let user_client = one(
        &spans,
        "profile-aggregator",
        SpanKind::Client,
        "GET /users/{id}",
    );
    assert_eq!(user_client.attr_i64("http.response.status_code"), Some(503));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_or_excessive_overrides_are_400s_that_teach_the_forms() {
    let suite = Suite::start(Options {
        extra_env: vec![("order-service", "ORDER_SERVICE_MAX_DELAY", "1s")],
        ..Options::default()
    })
    .await;

    for (baggage, says) in [
        ("latency.user=banana", "accepted forms"),
        ("fail.user=often", "between 0 and 1"),
    ] {
        let response = suite
            .profile("42", "sequential", &[("baggage", baggage)])
            .await;
        let (trace_id, _) = traceresponse_ids(&response);
        let (status, _, message) = error_body(response).await;
        assert_eq!(status, 400, "{baggage}: {message}");
        assert!(message.contains(says), "{baggage}: {message}");
        let spans = suite
            .trace_where(&trace_id, |s| {
                s.iter().any(|s| s.service_name == "user-service")
                    && s.iter().any(|s| {
                        s.kind == SpanKind::Server && s.service_name == "profile-aggregator"
                    })
            })
            .await;
        let server = one(&spans, "user-service", SpanKind::Server, "GET /users/{id}");
        assert_eq!(server.attr_i64("http.response.status_code"), Some(400));
        assert_eq!(
            server.status_code,
            StatusCode::Unset,
            "a 400 is the caller's error"
        );
        assert!(
            !has(&spans, "user-service", USER_DB),
            "a refused request costs no database time: {:#?}",
            summary(&spans)
        );
    }

    // Above the order service's 1 s limit, outright or at a bound.
    for baggage in [
        "latency.orders=5s",
        "latency.orders=uniform(10ms%2C2s)",
        "latency.orders=10ms+spike(p%3D0.001%2C2s)",
    ] {
        let response = suite
            .profile("42", "sequential", &[("baggage", baggage)])
            .await;
        let (status, _, message) = error_body(response).await;
        assert_eq!(status, 400, "{baggage}: {message}");
        assert!(
            message.contains("maximum delay of 1s"),
            "{baggage}: {message}"
        );
    }
    // Within it: fine. The limit is the order service's own.
    let response = suite
        .profile(
            "42",
            "sequential",
            &[("baggage", "latency.orders=900ms,latency.user=1500ms")],
        )
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_pool_queues_and_the_trace_says_how_many_were_ahead() {
    let suite = Suite::start(Options {
        extra_env: vec![("order-service", "ORDER_SERVICE_DB_POOL_SIZE", "1")],
        ..Options::default()
    })
    .await;
    let n = 5;
    let responses = futures_join((0..n).map(|_| suite.profile("42", "concurrent", &[]))).await;
    let mut waits = Vec::new();
    for response in responses {
        assert_eq!(response.status(), 200);
        let (trace_id, _) = traceresponse_ids(&response);
        let spans = suite.trace(&trace_id, 8).await;
        assert_eq!(
            spans.len(),
            8,
            "7 spans + the pool wait: {:#?}",
            summary(&spans)
        );
        let server = one(
            &spans,
            "order-service",
            SpanKind::Server,
            "GET /users/{id}/orders",
        );
        let wait = one(&spans, "order-service", SpanKind::Internal, POOL_WAIT);
        let query = one(&spans, "order-service", SpanKind::Internal, ORDER_DB);
        // The wait and the query are siblings under the SERVER span, one
        // after the other: no unexplained gap before the query.
        assert_eq!(
            wait.parent_span_id.as_deref(),
            Some(server.span_id.as_str())
        );
        assert_eq!(
            query.parent_span_id.as_deref(),
            Some(server.span_id.as_str())
        );
        assert!(wait.end_unix_nanos <= query.start_unix_nanos);
        let ahead = wait
            .events
            .iter()
            .find(|e| e.name == "waiting for a database connection")
            .and_then(|e| e.attributes.get("requests_ahead"))
            .and_then(AttrValue::as_i64)
            .unwrap_or_else(|| panic!("requests_ahead event: {:#?}", wait.events));
        // Everyone ahead held the only connection for a whole 200 ms query,
        // but one: the count is taken when a request joins the queue, and
        // one that joined a moment earlier may not have reached the
        // semaphore yet, so this request can take the connection first
        // (CI once saw "1 ahead, waited 88 µs").
        let floor = Duration::from_millis(190) * u32::try_from((ahead - 1).max(0)).unwrap();
        assert!(
            wait.duration() >= floor,
            "{ahead} ahead, waited {:?}",
            wait.duration()
        );
        assert!(!has(&spans, "user-service", POOL_WAIT), "no pool, no wait");
        waits.push((ahead, wait.duration()));
    }
    waits.sort();
    assert!(
        waits.last().unwrap().0 >= 1,
        "concurrent requests queued behind each other: {waits:?}"
    );
    // With one connection and five requests, the last in line waits for
    // most of the others' queries.
    assert!(
        waits.iter().map(|w| w.1).max().unwrap() >= Duration::from_millis(190 * 3),
        "{waits:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hang_ends_when_the_caller_gives_up_and_the_mock_stays_healthy() {
    let suite = Suite::start(Options {
        order_timeout: "300ms",
        // One connection: if the abandoned request kept it, the next
        // request would queue forever.
        extra_env: vec![("order-service", "ORDER_SERVICE_DB_POOL_SIZE", "1")],
        ..Options::default()
    })
    .await;
    let started = Instant::now();
    let response = suite
        .profile("42", "concurrent", &[("baggage", "hang.orders=1")])
        .await;
    let (trace_id, _) = traceresponse_ids(&response);
    let (status, code, message) = error_body(response).await;
    assert_eq!((status, code.as_str()), (504, "dependency_timeout"));
    assert!(message.contains("order-service"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // The hung query's span ends when the aggregator hangs up — not at the
    // 30 s limit — and says so.
    let spans = suite
        .trace_where(&trace_id, |s| has(s, "order-service", ORDER_DB))
        .await;
    let order_db = one(&spans, "order-service", SpanKind::Internal, ORDER_DB);
    assert_eq!(order_db.attr_str("latency_lab.fault"), Some("hang"));
    assert_eq!(delay_ms(order_db), None, "a hang has no delay");
    assert!(order_db.duration() >= Duration::from_millis(250));
    assert!(
        order_db.duration() < Duration::from_secs(10),
        "{:?}",
        order_db.duration()
    );
    assert!(
        order_db.events.iter().any(|e| e.name.contains("abandoned")),
        "{:#?}",
        order_db.events
    );

    // A plain delay the caller will not wait for ends the same way.
    let response = suite
        .profile("42", "concurrent", &[("baggage", "latency.orders=5s")])
        .await;
    assert_eq!(response.status(), 504);
    let (trace_id, _) = traceresponse_ids(&response);
    let spans = suite
        .trace_where(&trace_id, |s| has(s, "order-service", ORDER_DB))
        .await;
    let order_db = one(&spans, "order-service", SpanKind::Internal, ORDER_DB);
    assert_eq!(delay_ms(order_db), Some(5000.0));
    assert!(
        order_db.duration() < Duration::from_secs(4),
        "{:?}",
        order_db.duration()
    );
    assert!(order_db.events.iter().any(|e| e.name.contains("abandoned")));

    // The connection came back: the next request is served normally.
    let response = suite.profile("42", "concurrent", &[]).await;
    assert_eq!(response.status(), 200);
    let orders = suite.orders.as_ref().unwrap();
    let health = suite
        .client
        .get(format!("{}/healthz", orders.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_request_does_not_delay_the_exit() {
    let mut suite = Suite::start(Options {
        extra_env: vec![("user-service", "USER_SERVICE_HANG_RATE", "1")],
        ..Options::default()
    })
    .await;
    let users = suite.users.take().unwrap();
    let url = format!("{}/users/7", users.url);
    let client = suite.client.clone();
    let hung = tokio::spawn(async move { client.get(url).send().await });
    // Let the request reach the hang; the span checked below proves it did.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!hung.is_finished(), "the request hangs");

    let started = Instant::now();
    let status = users.terminate().await;
    assert!(status.success(), "{status}");
    // Far below the 30 s a hang may last: the exit did not wait for it.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    let response = hung.await.unwrap().expect("the hung request is answered");
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "shutting_down", "{body}");

    // Its span was flushed on the way out, marked as the hang it was.
    let spans = suite
        .receiver
        .store()
        .wait_for(crate::common::WAIT, |all| {
            all.iter()
                .any(|s| s.service_name == "user-service" && s.name == USER_DB)
        })
        .await
        .unwrap();
    let db = spans
        .iter()
        .find(|s| s.service_name == "user-service" && s.name == USER_DB)
        .unwrap();
    assert_eq!(db.attr_str("latency_lab.fault"), Some("hang"));
    assert_eq!(db.status_code, StatusCode::Error);
}

async fn futures_join<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    // The requests must be in flight together; polling them on one task is
    // enough for that (reqwest does the I/O).
    let mut pinned: Vec<_> = futures.map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(Option::unwrap).collect()
}
