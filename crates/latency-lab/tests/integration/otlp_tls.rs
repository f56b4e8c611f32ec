//! Every service of the suite exports over TLS with the token: the
//! aggregator and both mocks pointed at an `https://` gateway (a TLS
//! listener in front of the project's OTLP receiver) with the test CA in
//! `OTEL_EXPORTER_OTLP_CERTIFICATE`. One request's trace arrives whole —
//! spans of all three services — and every export the gateway saw carried
//! `OTEL_EXPORTER_OTLP_HEADERS`' token. The mock service's own TLS tests
//! (`crates/mock-service/tests/otlp_tls`) cover the failure cases, mutual
//! TLS and the system store on one service; this one proves the variables
//! reach every binary.

// The listener and the throw-away PKI are the mock service's test helpers,
// shared rather than copied (this test uses fewer of their parts).
#[allow(dead_code)]
#[path = "../../../mock-service/tests/otlp_tls/front.rs"]
mod front;
#[allow(dead_code)]
#[path = "../../../mock-service/tests/otlp_tls/pki.rs"]
mod pki;

use otlp_receiver::ReceiverConfig;

use crate::common::{traceresponse_ids, Options, Protocol, Suite, WAIT};
use front::TlsFront;
use pki::{path, Pki};

const TOKEN: &str = "Bearer t0ken";

const SERVICES: [&str; 3] = ["profile-aggregator", "user-service", "order-service"];

async fn every_service_exports_over_tls(protocol: Protocol) {
    let pki = Pki::new();
    let gateway = otlp_receiver::start(ReceiverConfig::default())
        .await
        .expect("receiver starts");
    let front = TlsFront::start(pki.server.clone(), gateway.grpc_addr(), gateway.http_addr()).await;
    // `extra_env` takes static strings: a test's few bytes, leaked.
    let ca: &'static str = Box::leak(path(&pki.ca).into_boxed_str());
    let mut extra_env = Vec::new();
    for service in SERVICES {
        extra_env.push((service, "OTEL_EXPORTER_OTLP_CERTIFICATE", ca));
        extra_env.push((
            service,
            "OTEL_EXPORTER_OTLP_HEADERS",
            "authorization=Bearer%20t0ken",
        ));
        extra_env.push((service, "OTEL_METRIC_EXPORT_INTERVAL", "300"));
    }
    let suite = Suite::start(Options {
        protocol,
        user_latency: "5ms",
        order_latency: "5ms",
        otlp_endpoint: Some(format!("https://127.0.0.1:{}", front.addr.port())),
        extra_env,
        ..Options::default()
    })
    .await;
    let response = suite.profile("7", "concurrent", &[]).await;
    assert_eq!(response.status(), 200, "{protocol:?}");
    let (trace_id, _) = traceresponse_ids(&response);

    let spans = gateway
        .store()
        .wait_for(WAIT, |spans| {
            SERVICES.iter().all(|service| {
                spans
                    .iter()
                    .any(|s| s.trace_id == trace_id && s.service_name == *service)
            })
        })
        .await
        .unwrap_or_else(|e| panic!("{protocol:?}: the trace of all three services over TLS: {e}"));
    let trace: Vec<_> = spans.iter().filter(|s| s.trace_id == trace_id).collect();
    assert!(
        trace.iter().filter(|s| s.parent_span_id.is_none()).count() == 1,
        "{protocol:?}: one root, the mocks' spans joined the aggregator's trace"
    );
    gateway
        .metrics()
        .wait_for_histograms("http.server.request.duration", WAIT, |points| {
            points.iter().any(|p| p.count >= 1)
        })
        .await
        .unwrap_or_else(|e| panic!("{protocol:?}: no metric arrived over TLS: {e}"));
    let in_clear = suite.stop_services().await;
    assert!(
        in_clear.store().spans().is_empty(),
        "nothing went to the suite's own receiver"
    );

    let seen = front.seen();
    let traces_path = match protocol {
        Protocol::Grpc => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        Protocol::HttpProtobuf => "/v1/traces",
    };
    assert!(
        seen.iter().filter(|s| s.path == traces_path).count() >= SERVICES.len(),
        "{protocol:?}: each service's spans went through the TLS listener: {seen:?}"
    );
    for request in &seen {
        assert_eq!(request.authorization.as_deref(), Some(TOKEN), "{request:?}");
    }
    assert!(
        front.failed_handshakes().is_empty(),
        "{:?}",
        front.failed_handshakes()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_exports_over_tls_with_the_token() {
    tokio::join!(
        every_service_exports_over_tls(Protocol::Grpc),
        every_service_exports_over_tls(Protocol::HttpProtobuf),
    );
}
