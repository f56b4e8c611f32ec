//! The standard OpenTelemetry environment variables, as a user sets them.
//! Absence of spans is checked only after every service has been stopped
//! with SIGTERM (which flushes), so "nothing arrived" is a fact, not a
//! timeout.

use std::collections::BTreeSet;

use crate::common::{traceresponse_ids, Options, ServiceProcess, Suite, LAB};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_name_and_resource_attributes_come_from_the_environment() {
    let suite = Suite::start(Options {
        extra_env: vec![
            ("user-service", "OTEL_SERVICE_NAME", "users-eu-west"),
            (
                "order-service",
                "OTEL_RESOURCE_ATTRIBUTES",
                "service.name=orders-v2,deployment.environment.name=lab",
            ),
            (
                "profile-aggregator",
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment.name=lab",
            ),
        ],
        ..Options::default()
    })
    .await;
    let response = suite.profile("3", "concurrent", &[]).await;
    assert_eq!(response.status(), 200);
    let (trace_id, _) = traceresponse_ids(&response);
    let spans = suite.trace(&trace_id, 7).await;
    let names: BTreeSet<&str> = spans.iter().map(|s| s.service_name.as_str()).collect();
    assert_eq!(
        names,
        BTreeSet::from(["orders-v2", "profile-aggregator", "users-eu-west"])
    );
    for s in spans.iter().filter(|s| s.service_name != "users-eu-west") {
        assert_eq!(
            s.resource
                .get("deployment.environment.name")
                .and_then(|v| v.as_str()),
            Some("lab"),
            "{}",
            s.service_name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_off_at_the_edge_means_no_spans_anywhere_parent_based_downstream() {
    let suite = Suite::start(Options {
        extra_env: vec![("profile-aggregator", "OTEL_TRACES_SAMPLER", "always_off")],
        ..Options::default()
    })
    .await;
    let response = suite.profile("3", "sequential", &[]).await;
    assert_eq!(response.status(), 200, "sampling never changes the answer");
    let receiver = suite.stop_services().await;
    let spans = receiver.store().spans();
    assert!(
        spans.is_empty(),
        "unsampled parent, parent-based children: {}",
        spans.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_disabled_exports_nothing_but_context_still_propagates() {
    let suite = Suite::start(Options {
        extra_env: vec![("profile-aggregator", "OTEL_SDK_DISABLED", "true")],
        ..Options::default()
    })
    .await;
    let response = suite.profile("3", "sequential", &[]).await;
    assert_eq!(response.status(), 200);
    let (trace_id, _) = traceresponse_ids(&response);
    let receiver = suite.stop_services().await;
    let spans = receiver.store().spans();
    assert!(!spans.iter().any(|s| s.service_name == "profile-aggregator"));
    let downstream: Vec<_> = spans.iter().filter(|s| s.trace_id == trace_id).collect();
    assert_eq!(
        downstream.len(),
        4,
        "user and order spans still join the request's trace"
    );
}

/// `OTEL_PROPAGATORS` on the aggregator: `baggage` alone continues no
/// caller's trace and starts none downstream (each service its own trace),
/// yet the baggage still reaches the mocks; `none` carries neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otel_propagators_chooses_what_goes_in_and_out() {
    let caller = "4bf92f3577b34da6a3ce929d0e0e4736";
    let headers = [
        ("traceparent", format!("00-{caller}-00f067aa0ba902b7-01")),
        ("baggage", "latency.orders=700ms".to_owned()),
    ];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for (propagators, baggage_arrives) in [("baggage", true), ("none", false)] {
        let suite = Suite::start(Options {
            order_latency: "20ms",
            extra_env: vec![("profile-aggregator", "OTEL_PROPAGATORS", propagators)],
            ..Options::default()
        })
        .await;
        let response = suite.profile("3", "sequential", &headers).await;
        assert_eq!(response.status(), 200);
        assert!(
            response.headers().get("traceresponse").is_none(),
            "{propagators}: no tracecontext, no traceresponse"
        );
        let receiver = suite.stop_services().await;
        let spans = receiver.store().spans();
        let aggregator = spans
            .iter()
            .find(|s| s.service_name == "profile-aggregator" && s.parent_span_id.is_none())
            .unwrap_or_else(|| panic!("{propagators}: the aggregator's span is a root"));
        assert_ne!(aggregator.trace_id, caller, "{propagators}");
        let order_server = spans
            .iter()
            .find(|s| s.service_name == "order-service" && s.parent_span_id.is_none())
            .unwrap_or_else(|| panic!("{propagators}: the order service starts its own trace"));
        assert_ne!(order_server.trace_id, aggregator.trace_id, "{propagators}");
        let query = spans
            .iter()
            .find(|s| s.service_name == "order-service" && s.name.starts_with("db.query"))
            .unwrap();
        let query_ms = (query.end_unix_nanos - query.start_unix_nanos) / 1_000_000;
        assert_eq!(
            query_ms >= 600,
            baggage_arrives,
            "{propagators}: the order query took {query_ms} ms (700 ms asked in baggage, 20 ms configured)"
        );
    }
}

#[test]
fn bad_telemetry_configuration_stops_the_service_with_a_clear_message() {
    for (key, value) in [
        ("OTEL_TRACES_SAMPLER", "sometimes"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "not a url"),
        ("LATENCY_LAB_SPAN_SOURCE", "yes"),
        ("LATENCY_LAB_SPAN_EXPORTER", "stock"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "bad name=1"),
        ("OTEL_METRICS_EXPORTER", "prometheus"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "5s"),
        ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "carrier-pigeon"),
        ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "not a url"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "lots"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "0"),
        ("OTEL_BSP_EXPORT_TIMEOUT", "30s"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "10s"),
        ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "-1"),
        ("OTEL_PROPAGATORS", "b3"),
        ("OTEL_PROPAGATORS", "tracecontext,carrier-pigeon"),
        ("OTEL_PROPAGATORS", "none,baggage"),
    ] {
        let output = std::process::Command::new(LAB)
            .args(["serve", "user-service", "--listen", "127.0.0.1:0"])
            .env(key, value)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{key}={value} must not start");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(key), "{key}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// What a tiny OTLP/HTTP endpoint in the test received: (path, body) per
/// POST. It answers an empty success to everything, spans and metrics alike,
/// so the service's metrics can be seen without any collector.
type Posts = std::sync::Arc<std::sync::Mutex<Vec<(String, Vec<u8>)>>>;

async fn otlp_http_sink() -> (String, Posts) {
    use axum::body::Bytes;
    use axum::extract::State;

    let posts: Posts = Default::default();
    let app = axum::Router::new()
        .route(
            "/{*path}",
            axum::routing::post(
                |State(posts): State<Posts>, uri: axum::http::Uri, body: Bytes| async move {
                    posts
                        .lock()
                        .unwrap()
                        .push((uri.path().to_owned(), body.to_vec()));
                    (
                        [("content-type", "application/x-protobuf")],
                        Vec::<u8>::new(),
                    )
                },
            ),
        )
        .with_state(posts.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), posts)
}

/// Serves `user-service` exporting to a sink, sends one request, stops it
/// with SIGTERM (which flushes), and returns the metric export bodies.
async fn metric_exports_of_one_request(extra: &[(&str, &str)]) -> Vec<Vec<u8>> {
    let (sink, posts) = otlp_http_sink().await;
    let mut env = vec![
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".to_owned()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", sink),
        ("OTEL_METRIC_EXPORT_INTERVAL", "60000".to_owned()),
    ];
    env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let service = ServiceProcess::start("user-service", &[], &env).await;
    let status = reqwest::get(format!("{}/users/3", service.url))
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    assert!(service.terminate().await.success());
    let posts = posts.lock().unwrap();
    posts
        .iter()
        .filter(|(path, _)| path == "/v1/metrics")
        .map(|(_, body)| body.clone())
        .collect()
}

fn mentions(body: &[u8], needle: &str) -> bool {
    body.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_leave_beside_the_spans_and_flush_on_sigterm() {
    // The interval is a minute: what arrives was sent by the shutdown.
    let exports = metric_exports_of_one_request(&[]).await;
    assert!(!exports.is_empty(), "SIGTERM exports the metrics once more");
    let last = exports.last().unwrap();
    for name in [
        "http.server.request.duration",
        "/users/{id}",
        "db.client.operation.duration",
        "user-service",
    ] {
        assert!(mentions(last, name), "the export names {name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_exporter_none_and_sdk_disabled_send_no_metrics() {
    for switch in [
        ("OTEL_METRICS_EXPORTER", "none"),
        ("OTEL_SDK_DISABLED", "true"),
    ] {
        let exports = metric_exports_of_one_request(&[switch]).await;
        assert!(exports.is_empty(), "{}={}", switch.0, switch.1);
    }
}
