//! W3C Trace Context and Baggage across the hops: a caller's context is
//! honoured, `tracestate` and `baggage` travel unchanged, and an invalid
//! `traceparent` starts a new trace without failing the request.

use crate::common::stub::Stub;
use crate::common::{one, summary, traceresponse_ids, Options, Suite};
use axum::http::StatusCode as HttpStatus;
use otlp_receiver::SpanKind;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";
const TRACESTATE: &str = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";
const BAGGAGE: &str = "tenant=acme,experiment=fan-out";

fn traceparent() -> String {
    format!("00-{TRACE_ID}-{PARENT_ID}-01")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_context_is_honoured_through_the_real_services() {
    let suite = Suite::start(Options::default()).await;
    let tp = traceparent();
    let response = suite
        .profile(
            "42",
            "concurrent",
            &[
                ("traceparent", &tp),
                ("tracestate", TRACESTATE),
                ("baggage", BAGGAGE),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    let (trace_id, _) = traceresponse_ids(&response);
    assert_eq!(trace_id, TRACE_ID, "the caller's trace id is kept");

    let spans = suite.trace(TRACE_ID, 7).await;
    let root = one(
        &spans,
        "profile-aggregator",
        SpanKind::Server,
        "GET /user-profile/{id}",
    );
    assert_eq!(
        root.parent_span_id.as_deref(),
        Some(PARENT_ID),
        "the caller's span is the parent"
    );
    // The tracestate rode along to every service.
    for s in &spans {
        assert_eq!(s.trace_state, TRACESTATE, "{} {}", s.service_name, s.name);
    }
    assert_eq!(
        spans
            .iter()
            .map(|s| s.service_name.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_headers_reach_both_downstream_services() {
    let users = Stub::start(HttpStatus::OK).await;
    let orders = Stub::start(HttpStatus::OK).await;
    let suite = Suite::start(Options {
        user_url: Some(users.url.clone()),
        order_url: Some(orders.url.clone()),
        ..Options::default()
    })
    .await;
    let tp = traceparent();
    let response = suite
        .profile(
            "1",
            "sequential",
            &[
                ("traceparent", &tp),
                ("tracestate", TRACESTATE),
                ("baggage", BAGGAGE),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);

    let spans = suite.trace(TRACE_ID, 3).await;
    for (stub, name) in [
        (&users, "GET /users/{id}"),
        (&orders, "GET /users/{id}/orders"),
    ] {
        let seen = stub.requests();
        assert_eq!(seen.len(), 1);
        let headers = &seen[0];
        let client = one(&spans, "profile-aggregator", SpanKind::Client, name);
        assert_eq!(
            headers.get("traceparent").unwrap(),
            &format!("00-{TRACE_ID}-{}-01", client.span_id),
            "a new parent id per outgoing call: the client span's"
        );
        assert_eq!(headers.get("tracestate").unwrap(), TRACESTATE);
        let baggage = headers.get("baggage").unwrap().to_str().unwrap();
        let mut entries: Vec<&str> = baggage.split(',').map(str::trim).collect();
        entries.sort();
        assert_eq!(
            entries,
            ["experiment=fan-out", "tenant=acme"],
            "baggage unchanged: {baggage}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_traceparent_starts_a_new_trace_and_the_request_succeeds() {
    let suite = Suite::start(Options::default()).await;
    let cases = [
        ("bad version", format!("ff-{TRACE_ID}-{PARENT_ID}-01")),
        (
            "short trace id",
            format!("00-{}-{PARENT_ID}-01", &TRACE_ID[1..]),
        ),
        ("long parent id", format!("00-{TRACE_ID}-{PARENT_ID}0-01")),
        (
            "all-zero trace id",
            format!("00-{}-{PARENT_ID}-01", "0".repeat(32)),
        ),
        (
            "all-zero parent id",
            format!("00-{TRACE_ID}-{}-01", "0".repeat(16)),
        ),
        (
            "uppercase hex",
            format!("00-{}-{PARENT_ID}-01", TRACE_ID.to_uppercase()),
        ),
        ("garbage", "not a traceparent".to_owned()),
    ];
    for (case, tp) in cases {
        let response = suite
            .profile(
                "42",
                "sequential",
                &[("traceparent", &tp), ("tracestate", TRACESTATE)],
            )
            .await;
        assert_eq!(response.status(), 200, "{case}: the request still succeeds");
        let (trace_id, _) = traceresponse_ids(&response);
        assert_ne!(trace_id, TRACE_ID, "{case}: a new trace");
        assert_ne!(trace_id.to_lowercase(), TRACE_ID, "{case}");
        let spans = suite.trace(&trace_id, 7).await;
        let root = one(
            &spans,
            "profile-aggregator",
            SpanKind::Server,
            "GET /user-profile/{id}",
        );
        assert_eq!(
            root.parent_span_id,
            None,
            "{case}: no parent: {:#?}",
            summary(&spans)
        );
        assert_eq!(
            root.trace_state, "",
            "{case}: tracestate is dropped with an invalid traceparent"
        );
    }
}
