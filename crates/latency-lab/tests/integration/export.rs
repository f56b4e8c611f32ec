//! Both OTLP protocols deliver, and a service flushes its spans when asked
//! to stop (SIGTERM), so the last requests before an exit are not lost.

use crate::common::{one, traceresponse_ids, Options, Protocol, Suite};
use otlp_receiver::SpanKind;

async fn full_trace_arrives(protocol: Protocol) {
    let suite = Suite::start(Options {
        protocol,
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
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
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
