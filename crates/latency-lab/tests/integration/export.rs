//! Both OTLP protocols deliver, a service flushes its spans when asked to
//! stop (SIGTERM), so the last requests before an exit are not lost, and a
//! collector outage under steady load loses no span.

use std::time::Duration;

use crate::common::{one, traceresponse_ids, Options, Protocol, Suite};
use otlp_receiver::SpanKind;

async fn full_trace_arrives(protocol: Protocol) {
    full_trace_arrives_with(protocol, Vec::new()).await;
}

async fn full_trace_arrives_with(
    protocol: Protocol,
    extra_env: Vec<(&'static str, &'static str, &'static str)>,
) {
    let suite = Suite::start(Options {
        protocol,
        extra_env,
        ..Options::default()
    })
    .await;
    let response = suite.profile("5", "concurrent", &[]).await;
    assert_eq!(response.status(), 200);
    let (trace_id, _) = traceresponse_ids(&response);
    let spans = suite.trace(&trace_id, 7).await;
    for service in ["profile-aggregator", "user-service", "order-service"] {
        assert!(
            spans.iter().any(|s| s.service_name == service),
            "{protocol:?}: no span from {service}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_delivers_spans() {
    full_trace_arrives(Protocol::Grpc).await;
}

/// `KEY=VALUE` for every service.
fn for_every_service(
    key: &'static str,
    value: &'static str,
) -> Vec<(&'static str, &'static str, &'static str)> {
    ["profile-aggregator", "user-service", "order-service"]
        .into_iter()
        .map(|service| (service, key, value))
        .collect()
}

/// Headers go on every export request of the direct path
/// (`telemetry::export::sink_tests` checks they arrive).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_with_headers_delivers_spans() {
    let headers = for_every_service("OTEL_EXPORTER_OTLP_HEADERS", "x-latency-lab=export-test");
    full_trace_arrives_with(Protocol::Grpc, headers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protobuf_with_headers_delivers_spans() {
    let headers = for_every_service("OTEL_EXPORTER_OTLP_HEADERS", "x-latency-lab=export-test");
    full_trace_arrives_with(Protocol::HttpProtobuf, headers).await;
}

/// `LATENCY_LAB_SPAN_EXPORTER=sdk`: the OpenTelemetry OTLP exporter sends
/// instead of the direct path, and delivers the same trace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_through_the_sdk_exporter_delivers_spans() {
    let sdk = for_every_service("LATENCY_LAB_SPAN_EXPORTER", "sdk");
    full_trace_arrives_with(Protocol::Grpc, sdk).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protobuf_through_the_sdk_exporter_delivers_spans() {
    let sdk = for_every_service("LATENCY_LAB_SPAN_EXPORTER", "sdk");
    full_trace_arrives_with(Protocol::HttpProtobuf, sdk).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protobuf_delivers_spans() {
    full_trace_arrives(Protocol::HttpProtobuf).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_flushes_pending_spans() {
    // A schedule delay far longer than the test waits: the spans can only
    // arrive through the shutdown flush.
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
        let suite = Suite::start(Options {
            protocol,
            schedule_delay_ms: 600_000,
            ..Options::default()
        })
        .await;
        let response = suite.profile("11", "sequential", &[]).await;
        assert_eq!(response.status(), 200);
        let (trace_id, _) = traceresponse_ids(&response);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            suite.receiver.store().trace(&trace_id).is_empty(),
            "{protocol:?}: nothing is exported before the schedule delay"
        );

        let Suite {
            receiver,
            aggregator,
            users,
            orders,
            ..
        } = suite;
        for process in [Some(aggregator), users, orders].into_iter().flatten() {
            let name = process.name;
            let status = process.terminate().await;
            assert!(
                status.success(),
                "{name} exits cleanly on SIGTERM: {status}"
            );
        }
        let spans = receiver.store().trace(&trace_id);
        assert_eq!(spans.len(), 7, "{protocol:?}: every span flushed at exit");
        one(
            &spans,
            "profile-aggregator",
            SpanKind::Server,
            "GET /user-profile/{id}",
        );
        receiver.shutdown().await;
    }
}

/// The outage: 10 s under `CI=true`, otherwise 30 s (the guarantee).
fn outage() -> Duration {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        Duration::from_secs(10)
    } else {
        Duration::from_secs(30)
    }
}

/// 100 requests a second on a fixed schedule until `stop`; each request's
/// status (0: no answer) and trace id.
async fn steady_load(
    client: reqwest::Client,
    aggregator: String,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> Vec<(u16, Option<String>)> {
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut requests = tokio::task::JoinSet::new();
    tokio::pin!(stop);
    let mut n = 0u32;
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {
                n += 1;
                let request = client.get(format!(
                    "{aggregator}/user-profile/{}?mode=concurrent",
                    n % 50 + 1
                ));
                requests.spawn(async move {
                    match request.send().await {
                        Ok(response) => {
                            let trace = response
                                .headers()
                                .contains_key("traceresponse")
                                .then(|| traceresponse_ids(&response).0);
                            (response.status().as_u16(), trace)
                        }
                        Err(_) => (0, None),
                    }
                });
            }
        }
    }
    requests.join_all().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_outage_under_steady_load_loses_no_span() {
    let Suite {
        receiver,
        aggregator,
        users,
        orders,
        client,
    } = Suite::start(Options {
        user_latency: "5ms",
        order_latency: "5ms",
        receiver_max_traces: 100_000,
        ..Options::default()
    })
    .await;
    let (stop_load, stopped) = tokio::sync::oneshot::channel();
    let load = tokio::spawn(steady_load(client, aggregator.url.clone(), stopped));

    tokio::time::sleep(Duration::from_secs(1)).await;
    let down = receiver.stop().await;
    let stored = down.store().spans().len();
    tokio::time::sleep(outage()).await;
    assert_eq!(
        down.store().spans().len(),
        stored,
        "nothing arrives while it is down"
    );
    let receiver = down
        .restart()
        .await
        .expect("the receiver restarts on its ports");
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop_load.send(()).unwrap();
    let results = load.await.unwrap();

    let failed = results.iter().filter(|(status, _)| *status != 200).count();
    assert_eq!(failed, 0, "zero failed requests of {}", results.len());
    let outage_requests = 100 * outage().as_secs() as usize;
    assert!(
        results.len() > outage_requests,
        "{} requests",
        results.len()
    );

    // SIGTERM flushes what is still queued; then every trace is whole.
    for process in [Some(aggregator), users, orders].into_iter().flatten() {
        let name = process.name;
        let status = process.terminate().await;
        assert!(
            status.success(),
            "{name} exits cleanly on SIGTERM: {status}"
        );
    }
    let traces: Vec<String> = results.into_iter().filter_map(|(_, t)| t).collect();
    let expected = traces.len() * 7;
    let spans = receiver
        .store()
        .wait_for(Duration::from_secs(30), |spans| spans.len() >= expected)
        .await
        .unwrap_or_else(|e| panic!("expected {expected} spans: {e}"));
    let mut per_trace: std::collections::HashMap<&str, usize> = Default::default();
    for span in &spans {
        *per_trace.entry(span.trace_id.as_str()).or_default() += 1;
    }
    let incomplete: Vec<_> = traces
        .iter()
        .filter(|t| per_trace.get(t.as_str()).copied() != Some(7))
        .collect();
    assert!(
        incomplete.is_empty(),
        "{} of {} traces incomplete, e.g. {:?}",
        incomplete.len(),
        traces.len(),
        incomplete.first()
    );
    assert_eq!(receiver.store().dropped_traces(), 0);
    receiver.shutdown().await;
}
