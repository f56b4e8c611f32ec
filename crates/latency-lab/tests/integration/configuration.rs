//! The standard OpenTelemetry environment variables, as a user sets them.
//! Absence of spans is checked only after every service has been stopped
//! with SIGTERM (which flushes), so "nothing arrived" is a fact, not a
//! timeout.

use std::collections::BTreeSet;

use crate::common::{traceresponse_ids, Options, Suite, LAB};

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

#[test]
fn bad_telemetry_configuration_stops_the_service_with_a_clear_message() {
    for (key, value) in [
        ("OTEL_TRACES_SAMPLER", "sometimes"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "not a url"),
        ("LATENCY_LAB_SPAN_SOURCE", "yes"),
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
