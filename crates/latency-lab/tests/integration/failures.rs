//! A dead, failing or slow dependency: the right status, a body naming the
//! dependency, and spans marked as errors — never a panic or a hang.

use crate::common::stub::Stub;
use crate::common::{closed_port_url, error_body, one, summary, traceresponse_ids, Options, Suite};
use axum::http::StatusCode as HttpStatus;
use otlp_receiver::{SpanKind, StatusCode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_dependency_is_a_502_with_error_spans() {
    let suite = Suite::start(Options {
        user_url: Some(closed_port_url()),
        ..Options::default()
    })
    .await;
    for mode in ["sequential", "concurrent"] {
        let response = suite.profile("42", mode, &[]).await;
        let (trace_id, _) = traceresponse_ids(&response);
        let (status, code, message) = error_body(response).await;
        assert_eq!(status, 502, "{mode}");
        assert_eq!(code, "dependency_unreachable");
        assert!(message.contains("user-service"), "{message}");

        let spans = suite
            .trace_where(&trace_id, |spans| {
                spans.iter().any(|s| s.kind == SpanKind::Server)
            })
            .await;
        let root = one(
            &spans,
            "profile-aggregator",
            SpanKind::Server,
            "GET /user-profile/{id}",
        );
        assert_eq!(
            root.status_code,
            StatusCode::Error,
            "{:#?}",
            summary(&spans)
        );
        assert_eq!(root.attr_i64("http.response.status_code"), Some(502));
        assert_eq!(root.attr_str("error.type"), Some("502"));
        assert!(
            root.events
                .iter()
                .any(|e| e.name.contains("user-service is unreachable")),
            "the error is recorded on the server span: {:#?}",
            root.events
        );
        let client = one(
            &spans,
            "profile-aggregator",
            SpanKind::Client,
            "GET /users/{id}",
        );
        assert_eq!(client.status_code, StatusCode::Error);
        assert_eq!(client.attr_str("error.type"), Some("connect_error"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_dependency_is_a_502_naming_it() {
    let orders = Stub::start(HttpStatus::INTERNAL_SERVER_ERROR).await;
    let suite = Suite::start(Options {
        order_url: Some(orders.url.clone()),
        ..Options::default()
    })
    .await;
    let response = suite.profile("42", "sequential", &[]).await;
    let (trace_id, _) = traceresponse_ids(&response);
    let (status, code, message) = error_body(response).await;
    assert_eq!((status, code.as_str()), (502, "dependency_failed"));
    assert!(
        message.contains("order-service") && message.contains("500"),
        "{message}"
    );

    let spans = suite.trace(&trace_id, 5).await;
    let client = one(
        &spans,
        "profile-aggregator",
        SpanKind::Client,
        "GET /users/{id}/orders",
    );
    assert_eq!(client.status_code, StatusCode::Error);
    assert_eq!(client.attr_i64("http.response.status_code"), Some(500));
    assert_eq!(client.attr_str("error.type"), Some("500"));
    let root = one(
        &spans,
        "profile-aggregator",
        SpanKind::Server,
        "GET /user-profile/{id}",
    );
    assert_eq!(root.status_code, StatusCode::Error);
    // The healthy dependency's spans are there and fine.
    let user_server = one(&spans, "user-service", SpanKind::Server, "GET /users/{id}");
    assert_eq!(user_server.status_code, StatusCode::Unset);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_dependency_past_its_timeout_is_a_504() {
    let suite = Suite::start(Options {
        order_latency: "3s",
        order_timeout: "300ms",
        ..Options::default()
    })
    .await;
    let started = std::time::Instant::now();
    let response = suite.profile("42", "concurrent", &[]).await;
    let elapsed = started.elapsed();
    let (trace_id, _) = traceresponse_ids(&response);
    let (status, code, message) = error_body(response).await;
    assert_eq!((status, code.as_str()), (504, "dependency_timeout"));
    assert!(message.contains("order-service"), "{message}");
    // Ordering, not a tight bound: we gave up well before the 3 s the
    // dependency would have taken.
    assert!(
        elapsed < std::time::Duration::from_millis(2500),
        "took {elapsed:?}"
    );

    let spans = suite
        .trace_where(&trace_id, |spans| {
            spans
                .iter()
                .filter(|s| s.service_name == "profile-aggregator")
                .count()
                >= 3
        })
        .await;
    let client = spans
        .iter()
        .find(|s| s.kind == SpanKind::Client && s.name == "GET /users/{id}/orders")
        .expect("orders client span");
    assert_eq!(client.status_code, StatusCode::Error);
    assert_eq!(client.attr_str("error.type"), Some("timeout"));
    let root = one(
        &spans,
        "profile-aggregator",
        SpanKind::Server,
        "GET /user-profile/{id}",
    );
    assert_eq!(root.status_code, StatusCode::Error);
    assert_eq!(root.attr_i64("http.response.status_code"), Some(504));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_user_id_is_refused_at_the_edge_without_any_call() {
    let suite = Suite::start(Options::default()).await;
    let mut refused = Vec::new();
    for mode in ["sequential", "concurrent", "unlinked"] {
        for id in ["abc", "0", "-1"] {
            let response = suite.profile(id, mode, &[]).await;
            let (trace_id, _) = traceresponse_ids(&response);
            let (status, code, message) = error_body(response).await;
            assert_eq!(
                (status, code.as_str()),
                (400, "invalid_request"),
                "{id} {mode}"
            );
            // Word for word what the user service would have answered.
            assert_eq!(
                message,
                format!("user id must be a positive integer, got {id:?}")
            );
            refused.push(trace_id);
        }
    }
    // A well-formed id afterwards: the mocks do trace when they are called.
    let response = suite.profile("42", "sequential", &[]).await;
    assert_eq!(response.status(), 200);
    let (answered, _) = traceresponse_ids(&response);

    // Every service flushed: whatever was ever exported is in the store.
    let receiver = suite.stop_services().await;
    let spans = receiver.store().spans();
    for trace_id in &refused {
        let trace: Vec<_> = spans.iter().filter(|s| &s.trace_id == trace_id).collect();
        assert_eq!(trace.len(), 1, "the SERVER span alone: {trace:#?}");
        let root = trace[0];
        assert_eq!(
            (root.service_name.as_str(), root.kind, root.name.as_str()),
            (
                "profile-aggregator",
                SpanKind::Server,
                "GET /user-profile/{id}"
            )
        );
        assert_eq!(root.attr_i64("http.response.status_code"), Some(400));
        assert_eq!(
            root.status_code,
            StatusCode::Unset,
            "4xx is not a server error"
        );
        assert_eq!(root.attr_str("error.type"), None);
    }
    // Not even in a trace of its own (`unlinked` spawns its calls): every
    // CLIENT span and every span of a mock belongs to the one good request.
    let elsewhere: Vec<_> = spans
        .iter()
        .filter(|s| s.kind == SpanKind::Client || s.service_name != "profile-aggregator")
        .filter(|s| s.trace_id != answered)
        .collect();
    assert!(elsewhere.is_empty(), "{:#?}", summary(&spans));
    for mock in ["user-service", "order-service"] {
        assert!(
            spans
                .iter()
                .any(|s| s.trace_id == answered && s.service_name == mock),
            "{mock} traced the good request: {:#?}",
            summary(&spans)
        );
    }
}
