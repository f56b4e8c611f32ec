//! End to end on loopback with the real Jaeger binary in two roles: Jaeger
//! itself (`jaeger/config.yaml`) and the OpenTelemetry Collector
//! (`otel-collector.yaml`, the very file `docker compose` uses). The three
//! services export to the collector; we read what Jaeger's query API serves.
//!
//! The binary comes from `jaeger_harness::jaeger_for_tests()`: built from
//! the Go module proxy on first use (cached), `JAEGER_BIN` overrides. Under
//! `CI=true` a missing binary fails these tests; elsewhere they report
//! "SKIPPED (not run)" and return.

use std::path::PathBuf;
use std::time::Duration;

use crate::common::{traceresponse_ids, Options, Protocol, Suite};
use jaeger_harness::{jaeger_for_tests, repo_file, Collector, Jaeger, TAIL_SAMPLING_OVERLAY};
use trace_view::model::{Span, SpanKind, Value};
use trace_view::TraceId;

const WAIT: Duration = Duration::from_secs(60);

struct Stack {
    jaeger: Jaeger,
    collector: Collector,
}

fn stack(overlays: &[PathBuf], env: &[(&str, &str)]) -> Option<Stack> {
    let bin = jaeger_for_tests()?;
    let jaeger = Jaeger::start(&bin).expect("start Jaeger");
    let collector = Collector::start_with(&bin, jaeger.ports.otlp_grpc, overlays, env)
        .expect("start the collector");
    Some(Stack { jaeger, collector })
}

fn via_collector(stack: &Stack, protocol: Protocol, options: Options) -> Options {
    let endpoint = match protocol {
        Protocol::Grpc => stack.collector.otlp_grpc_endpoint(),
        Protocol::HttpProtobuf => stack.collector.otlp_http_endpoint(),
    };
    Options {
        protocol,
        otlp_endpoint: Some(endpoint),
        ..options
    }
}

async fn jaeger_trace(stack: &Stack, trace_id: &str, spans: usize) -> Vec<Span> {
    let id = TraceId::parse(trace_id).unwrap();
    let trace = stack
        .jaeger
        .query()
        .unwrap()
        .wait_for_trace(id, spans, WAIT)
        .await
        .unwrap_or_else(|e| panic!("trace {trace_id} in Jaeger: {e}"));
    trace.spans
}

fn find<'a>(spans: &'a [Span], service: &str, operation: &str, kind: SpanKind) -> &'a Span {
    let found: Vec<_> = spans
        .iter()
        .filter(|s| s.service == service && s.name == operation && s.kind == kind)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "{kind:?} {service} {operation} in {spans:#?}"
    );
    found[0]
}

fn overlaps(a: &Span, b: &Span) -> bool {
    a.start_us < b.end_us() && b.start_us < a.end_us()
}

/// Checks the seven-span shape and returns (root, user client, orders client).
fn check_shape(spans: &[Span]) -> (&Span, &Span, &Span) {
    assert_eq!(spans.len(), 7, "{spans:#?}");
    let root = find(
        spans,
        "profile-aggregator",
        "GET /user-profile/{id}",
        SpanKind::Server,
    );
    let user_client = find(
        spans,
        "profile-aggregator",
        "GET /users/{id}",
        SpanKind::Client,
    );
    let order_client = find(
        spans,
        "profile-aggregator",
        "GET /users/{id}/orders",
        SpanKind::Client,
    );
    let user_server = find(spans, "user-service", "GET /users/{id}", SpanKind::Server);
    let order_server = find(
        spans,
        "order-service",
        "GET /users/{id}/orders",
        SpanKind::Server,
    );
    let user_db = find(
        spans,
        "user-service",
        "db.query SELECT users",
        SpanKind::Internal,
    );
    let order_db = find(
        spans,
        "order-service",
        "db.query SELECT orders",
        SpanKind::Internal,
    );
    assert_eq!(root.parent_id, None);
    for (child, parent) in [
        (user_client, root),
        (order_client, root),
        (user_server, user_client),
        (order_server, order_client),
        (user_db, user_server),
        (order_db, order_server),
    ] {
        assert_eq!(
            child.parent_id.as_ref(),
            Some(&parent.span_id),
            "{} {} is CHILD_OF {} {}",
            child.service,
            child.name,
            parent.service,
            parent.name
        );
    }
    (root, user_client, order_client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_and_concurrent_traces_reach_jaeger_through_the_collector() {
    let Some(stack) = stack(&[], &[]) else { return };
    let suite = Suite::start(via_collector(&stack, Protocol::Grpc, Options::default())).await;

    let mut totals = Vec::new();
    for mode in ["sequential", "concurrent"] {
        let response = suite.profile("42", mode, &[]).await;
        assert_eq!(response.status(), 200);
        let (trace_id, _) = traceresponse_ids(&response);
        let body: serde_json::Value = response.json().await.unwrap();
        let total_ms = body["timing"]["total_ms"].as_f64().unwrap();

        let spans = jaeger_trace(&stack, &trace_id, 7).await;
        let (root, user, orders) = check_shape(&spans);
        match mode {
            "sequential" => assert!(!overlaps(user, orders), "sequential client spans overlap"),
            _ => assert!(
                overlaps(user, orders),
                "concurrent client spans do not overlap"
            ),
        }
        // The root span measures what the handler measured, plus the
        // middleware around it: a few milliseconds at most.
        let root_ms = root.duration_us as f64 / 1000.0;
        assert!(
            root_ms >= total_ms - 1.0 && root_ms - total_ms < 25.0,
            "{mode}: root span {root_ms} ms vs timing.total_ms {total_ms} ms"
        );
        totals.push(root_ms);
    }
    assert!(
        totals[0] > totals[1],
        "sequential {} ms > concurrent {} ms",
        totals[0],
        totals[1]
    );

    let services = stack.jaeger.query().unwrap().services().await.unwrap();
    for service in ["profile-aggregator", "user-service", "order-service"] {
        assert!(
            services.iter().any(|s| s == service),
            "{service} not in {services:?}"
        );
    }
    assert!(
        !services.iter().any(|s| s == "jaeger"),
        "Jaeger traces itself: {services:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_request_is_an_error_trace_in_jaeger() {
    let Some(stack) = stack(&[], &[]) else { return };
    let suite = Suite::start(via_collector(
        &stack,
        Protocol::Grpc,
        Options {
            order_latency: "3s",
            order_timeout: "200ms",
            ..Options::default()
        },
    ))
    .await;
    let response = suite.profile("42", "concurrent", &[]).await;
    assert_eq!(response.status(), 504);
    let (trace_id, _) = traceresponse_ids(&response);
    // root + 2 clients + user server + user db; the order service's spans
    // end later (it keeps waiting after we gave up), or sooner (abandoned):
    // wait for the aggregator's own three, whatever else came first.
    let id = TraceId::parse(&trace_id).unwrap();
    let spans = stack
        .jaeger
        .query()
        .unwrap()
        .wait_for_trace_where(id, 5, WAIT, |trace| {
            trace
                .spans
                .iter()
                .filter(|s| s.service == "profile-aggregator")
                .count()
                >= 3
        })
        .await
        .unwrap_or_else(|e| panic!("trace {trace_id} in Jaeger: {e}"))
        .spans;
    let root = find(
        &spans,
        "profile-aggregator",
        "GET /user-profile/{id}",
        SpanKind::Server,
    );
    assert!(
        root.is_error(),
        "root span carries error status: {:?} {:?}",
        root.status,
        root.attributes
    );
    assert_eq!(
        root.attributes.get("http.response.status_code"),
        Some(&Value::Int(504))
    );
    let client = find(
        &spans,
        "profile-aggregator",
        "GET /users/{id}/orders",
        SpanKind::Client,
    );
    assert!(client.is_error());
    assert_eq!(
        client.attributes.get("error.type"),
        Some(&Value::String("timeout".into()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protobuf_reaches_jaeger_through_the_collector() {
    let Some(stack) = stack(&[], &[]) else { return };
    let suite = Suite::start(via_collector(
        &stack,
        Protocol::HttpProtobuf,
        Options::default(),
    ))
    .await;
    let response = suite.profile("8", "concurrent", &[]).await;
    assert_eq!(response.status(), 200);
    let (trace_id, _) = traceresponse_ids(&response);
    let spans = jaeger_trace(&stack, &trace_id, 7).await;
    check_shape(&spans);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_sampling_keeps_slow_and_error_traces_and_drops_fast_ok_ones() {
    let decision_wait = Duration::from_secs(3);
    let Some(stack) = stack(
        &[repo_file(TAIL_SAMPLING_OVERLAY)],
        &[
            ("TAIL_SAMPLING_PERCENT", "0"),
            ("TAIL_SAMPLING_LATENCY_THRESHOLD_MS", "1000"),
            ("TAIL_SAMPLING_DECISION_WAIT", "3s"),
        ],
    ) else {
        return;
    };
    // Three suites, so each trace's speed is fixed by construction rather
    // than hoped for: fast (~20 ms), slow (>= 1200 ms) and failing.
    let fast = Suite::start(via_collector(
        &stack,
        Protocol::Grpc,
        Options {
            user_latency: "10ms",
            order_latency: "10ms",
            ..Options::default()
        },
    ))
    .await;
    let slow = Suite::start(via_collector(
        &stack,
        Protocol::Grpc,
        Options {
            user_latency: "10ms",
            order_latency: "1200ms",
            ..Options::default()
        },
    ))
    .await;
    let dead_url = crate::common::closed_port_url();
    let failing = Suite::start(via_collector(
        &stack,
        Protocol::Grpc,
        Options {
            user_latency: "10ms",
            order_url: Some(dead_url),
            ..Options::default()
        },
    ))
    .await;

    let response = fast.profile("1", "concurrent", &[]).await;
    assert_eq!(response.status(), 200);
    let (fast_trace, _) = traceresponse_ids(&response);
    let response = slow.profile("1", "sequential", &[]).await;
    assert_eq!(response.status(), 200);
    let (slow_trace, _) = traceresponse_ids(&response);
    let response = failing.profile("1", "sequential", &[]).await;
    assert_eq!(response.status(), 502);
    let (error_trace, _) = traceresponse_ids(&response);

    let slow_spans = jaeger_trace(&stack, &slow_trace, 7).await;
    check_shape(&slow_spans);
    // root + 2 clients + user server + user db
    let error_spans = jaeger_trace(&stack, &error_trace, 5).await;
    assert!(error_spans.iter().any(Span::is_error));

    // The fast trace's decision was due before the slow one's: by now, plus
    // a decision period of margin, it has been made — and it was "drop".
    tokio::time::sleep(decision_wait).await;
    let query = stack.jaeger.query().unwrap();
    let fast_in_jaeger = query
        .find_trace(TraceId::parse(&fast_trace).unwrap())
        .await
        .unwrap();
    assert!(
        fast_in_jaeger.is_none(),
        "the fast OK trace was kept: {fast_in_jaeger:?}"
    );
}

/// What a person sees in Jaeger's UI: the *Process* section names version,
/// instance and host; *System Architecture* draws the two real calls — and,
/// because Jaeger's memory store counts every parent→child pair of spans
/// (`internal/storage/v2/memory/tenant.go`, `getDependencies`), a loop on
/// each service for its spans' children within the same process. Lesson 5.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jaeger_shows_the_process_and_draws_each_parent_child_pair_as_an_edge() {
    let Some(stack) = stack(&[], &[]) else { return };
    let suite = Suite::start(via_collector(&stack, Protocol::Grpc, Options::default())).await;
    let response = suite.profile("42", "sequential", &[]).await;
    assert_eq!(response.status(), 200);
    let (trace_id, _) = traceresponse_ids(&response);
    let spans = jaeger_trace(&stack, &trace_id, 7).await;
    check_shape(&spans);
    for span in &spans {
        for key in [
            "service.version",
            "service.instance.id",
            "host.name",
            "process.pid",
            "process.runtime.name",
        ] {
            assert!(
                span.resource.contains_key(key),
                "{} {}: no {key} in {:?}",
                span.service,
                span.name,
                span.resource
            );
        }
        assert!(
            !span.attributes.keys().any(|k| k.starts_with("code.")),
            "{:?}",
            span.attributes
        );
    }

    // The collapsed line: Jaeger sorts tags by name, and after `busy_ns`
    // come the request's own attributes.
    let raw: serde_json::Value = reqwest::get(format!(
        "{}/api/traces/{trace_id}",
        stack.jaeger.query().unwrap().base_url()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let root = raw["data"][0]["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["references"].as_array().is_none_or(Vec::is_empty))
        .expect("the root span");
    let keys: Vec<&str> = root["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys[0], "busy_ns", "{keys:?}");
    assert_eq!(keys[1], "client.address", "{keys:?}");
    assert_eq!(keys[2], "http.request.method", "{keys:?}");

    let links = stack
        .jaeger
        .query()
        .unwrap()
        .dependencies(Duration::from_secs(3600))
        .await
        .unwrap();
    let edges: Vec<(&str, &str, u64)> = links
        .iter()
        .map(|l| (l.parent.as_str(), l.child.as_str(), l.call_count))
        .collect();
    assert_eq!(
        edges,
        [
            // SERVER → its two CLIENT spans: same process, drawn as a loop.
            ("order-service", "order-service", 1), // SERVER → db.query
            ("profile-aggregator", "order-service", 1), // the real calls
            ("profile-aggregator", "profile-aggregator", 2),
            ("profile-aggregator", "user-service", 1),
            ("user-service", "user-service", 1), // SERVER → db.query
        ]
    );
}

/// Lesson 5: the search box's `error=true` finds nothing in Jaeger 2.13's
/// memory store (it reads the text "true" as the boolean false and then
/// looks for status OK); a search on the attributes the spans carry works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_request_is_found_by_its_status_code_and_error_type_not_by_error_true() {
    let Some(stack) = stack(&[], &[]) else { return };
    let suite = Suite::start(via_collector(
        &stack,
        Protocol::Grpc,
        Options {
            order_url: Some(crate::common::closed_port_url()),
            ..Options::default()
        },
    ))
    .await;
    let response = suite.profile("42", "sequential", &[]).await;
    assert_eq!(response.status(), 502);
    let (trace_id, _) = traceresponse_ids(&response);
    // root + 2 clients + user server + user db
    let spans = jaeger_trace(&stack, &trace_id, 5).await;
    assert!(spans.iter().any(Span::is_error));
    let client = find(
        &spans,
        "profile-aggregator",
        "GET /users/{id}/orders",
        SpanKind::Client,
    );
    assert_eq!(
        client.attributes.get("error.type"),
        Some(&Value::String("connect_error".into()))
    );

    let query = stack.jaeger.query().unwrap();
    let id = TraceId::parse(&trace_id).unwrap();
    let search = |tags: &'static [(&'static str, &'static str)]| {
        let query = query.clone();
        async move {
            query
                .find_traces_tagged("profile-aggregator", tags, 20)
                .await
                .unwrap()
                .iter()
                .map(|t| t.trace_id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(search(&[("http.response.status_code", "502")]).await, [id]);
    assert_eq!(search(&[("error.type", "connect_error")]).await, [id]);
    assert_eq!(
        search(&[("error", "true")]).await,
        [],
        "Jaeger's memory store now finds error=true: update lesson 5"
    );
}

/// Lesson 3's request with a `tracestate` the SDK's `TraceState` can hold
/// only part of: Jaeger shows each span's `trace_state` as the tag
/// `w3c.tracestate` (the part the SDK kept), and each SERVER span the whole
/// list beside it as `w3c.tracestate.received`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tracestate_the_sdk_holds_in_part_shows_in_jaeger() {
    let Some(stack) = stack(&[], &[]) else { return };
    let suite = Suite::start(via_collector(&stack, Protocol::Grpc, Options::default())).await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let whole = "congo=t61rcWkgMzE,a@b@c=1,t@vvvvvvvvvvvvvv=2";
    let response = suite
        .profile(
            "42",
            "concurrent",
            &[
                (
                    "traceparent",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                ),
                ("tracestate", "congo=t61rcWkgMzE,a@b@c=1,congo=again"),
                ("tracestate", "t@vvvvvvvvvvvvvv=2"),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    let spans = jaeger_trace(&stack, trace_id, 7).await;
    assert_eq!(spans.len(), 7, "{spans:#?}");
    for span in &spans {
        let tag = |key: &str| span.attributes.get(key).cloned();
        assert_eq!(
            tag("w3c.tracestate"),
            Some(Value::String("congo=t61rcWkgMzE".into())),
            "{} {}",
            span.service,
            span.name
        );
        let received = (span.kind == SpanKind::Server).then(|| Value::String(whole.into()));
        assert_eq!(
            tag("w3c.tracestate.received"),
            received,
            "{} {}",
            span.service,
            span.name
        );
    }
}
