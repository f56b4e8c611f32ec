//! Sequential vs concurrent vs unlinked fan-out, as the trace timeline shows
//! them. Orderings, overlaps and generous ratios only: the machine is noisy.

use crate::common::{one, summary, traceresponse_ids, Options, Suite, WAIT};
use otlp_receiver::SpanKind;

const USER_MS: f64 = 300.0;
const ORDER_MS: f64 = 400.0;

fn options() -> Options {
    Options {
        user_latency: "300ms",
        order_latency: "400ms",
        ..Options::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_waits_for_the_sum_concurrent_for_the_slowest() {
    let suite = Suite::start(options()).await;

    let response = suite.profile("7", "sequential", &[]).await;
    assert_eq!(response.status(), 200);
    let (seq_trace, _) = traceresponse_ids(&response);
    let seq: serde_json::Value = response.json().await.unwrap();

    let response = suite.profile("7", "concurrent", &[]).await;
    assert_eq!(response.status(), 200);
    let (con_trace, _) = traceresponse_ids(&response);
    let con: serde_json::Value = response.json().await.unwrap();

    let seq_total = seq["timing"]["total_ms"].as_f64().unwrap();
    let con_total = con["timing"]["total_ms"].as_f64().unwrap();
    assert!(
        seq_total >= USER_MS + ORDER_MS,
        "sequential total {seq_total} < sum of delays"
    );
    assert!(
        con_total >= ORDER_MS,
        "concurrent total {con_total} < slowest delay"
    );
    // Well below the sum: saving at least half of the shorter call.
    assert!(
        con_total < USER_MS + ORDER_MS - USER_MS / 2.0,
        "concurrent total {con_total} is not well below the sum {}",
        USER_MS + ORDER_MS
    );
    assert!(con_total < seq_total);

    let spans = suite.trace(&seq_trace, 7).await;
    let user = one(
        &spans,
        "profile-aggregator",
        SpanKind::Client,
        "GET /users/{id}",
    );
    let orders = one(
        &spans,
        "profile-aggregator",
        SpanKind::Client,
        "GET /users/{id}/orders",
    );
    assert!(
        !user.overlaps(orders),
        "sequential client spans overlap: {:#?}",
        summary(&spans)
    );
    assert!(
        user.end_unix_nanos <= orders.start_unix_nanos,
        "user call first, then orders"
    );

    let spans = suite.trace(&con_trace, 7).await;
    let user = one(
        &spans,
        "profile-aggregator",
        SpanKind::Client,
        "GET /users/{id}",
    );
    let orders = one(
        &spans,
        "profile-aggregator",
        SpanKind::Client,
        "GET /users/{id}/orders",
    );
    assert!(
        user.overlaps(orders),
        "concurrent client spans do not overlap: {:#?}",
        summary(&spans)
    );
    let root = one(
        &spans,
        "profile-aggregator",
        SpanKind::Server,
        "GET /user-profile/{id}",
    );
    for client in [user, orders] {
        assert_eq!(
            client.parent_span_id.as_deref(),
            Some(root.span_id.as_str()),
            "joined work keeps its parent"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlinked_mode_splits_the_request_into_three_traces() {
    let suite = Suite::start(options()).await;
    let response = suite.profile("9", "unlinked", &[]).await;
    assert_eq!(response.status(), 200);
    let (trace_id, _) = traceresponse_ids(&response);

    // The downstream work happened (both services answered) ...
    let store = suite.receiver.store();
    let all = store
        .wait_for(WAIT, |spans| {
            spans
                .iter()
                .any(|s| s.service_name == "user-service" && s.kind == SpanKind::Server)
                && spans
                    .iter()
                    .any(|s| s.service_name == "order-service" && s.kind == SpanKind::Server)
                && spans
                    .iter()
                    .any(|s| s.trace_id == trace_id && s.kind == SpanKind::Server)
                && spans.iter().filter(|s| s.kind == SpanKind::Client).count() >= 2
        })
        .await
        .expect("spans of the unlinked request");
    // ... but none of it is in the request's trace.
    let request_trace: Vec<_> = all.iter().filter(|s| s.trace_id == trace_id).collect();
    assert_eq!(
        request_trace.len(),
        1,
        "only the aggregator's server span stays in the request trace: {:#?}",
        summary(&all)
    );
    let downstream: Vec<_> = all
        .iter()
        .filter(|s| s.kind == SpanKind::Server && s.service_name != "profile-aggregator")
        .collect();
    assert_eq!(downstream.len(), 2);
    assert_ne!(
        downstream[0].trace_id, downstream[1].trace_id,
        "each call started its own trace"
    );
    for server in downstream {
        assert_ne!(server.trace_id, trace_id);
        // Its parent is an aggregator CLIENT span that is itself a root.
        let client = all
            .iter()
            .find(|s| Some(s.span_id.as_str()) == server.parent_span_id.as_deref())
            .expect("the orphaned client span was exported too");
        assert_eq!(client.kind, SpanKind::Client);
        assert_eq!(client.parent_span_id, None);
        // Lesson 2: each orphan is a trace of three spans: the orphaned
        // call, the service it reached, that service's query.
        let orphan = suite.trace(&server.trace_id, 3).await;
        assert_eq!(orphan.len(), 3, "{:#?}", summary(&orphan));
        assert!(orphan
            .iter()
            .any(|s| s.kind == SpanKind::Internal && s.name.starts_with("db.query")));
    }
}
