//! Forwarding (`forward_to`): what the receiver takes in — over gRPC, OTLP/HTTP protobuf and
//! OTLP/HTTP JSON, spans and metrics — arrives protobuf-equal at an upstream receiver, with
//! everything the lab's own model leaves out (scope versions, links, dropped counts, trace
//! state, schema URLs); a dead upstream is counted, never felt by the exporter.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};
use otlp_receiver::{start, ForwardStats, ReceiverConfig, ReceiverError, RunningReceiver};
use prost::Message;

/// What the upstream got: (path, body) in arrival order.
type Got = Arc<Mutex<Vec<(String, Bytes)>>>;

/// An upstream OTLP/HTTP endpoint that keeps every body.
async fn upstream() -> (String, Got) {
    let got: Got = Arc::default();
    let keep = |path: &'static str| {
        move |State(got): State<Got>, body: Bytes| async move {
            got.lock().unwrap().push((path.to_owned(), body));
            ""
        }
    };
    let app = axum::Router::new()
        .route("/v1/traces", post(keep("/v1/traces")))
        .route("/v1/metrics", post(keep("/v1/metrics")))
        .with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

async fn forwarding_to(url: &str) -> RunningReceiver {
    start(ReceiverConfig {
        forward_to: Some(url.to_owned()),
        ..ReceiverConfig::default()
    })
    .await
    .expect("receiver starts")
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        key_strindex: 0,
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
    }
}

/// A request with what a waterfall never shows: a scope version and attributes, a link, trace
/// state, flags, dropped counts, schema URLs.
fn traces(name: &str) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "forwarded"), kv("host.name", "h1")],
                dropped_attributes_count: 2,
                entity_refs: Vec::new(),
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "lib".to_owned(),
                    version: "1.2.3".to_owned(),
                    attributes: vec![kv("scope.attr", "x")],
                    dropped_attributes_count: 1,
                }),
                spans: vec![Span {
                    trace_id: vec![7; 16],
                    span_id: vec![1; 8],
                    trace_state: "vendor=abc".to_owned(),
                    parent_span_id: Vec::new(),
                    flags: 0x301,
                    name: name.to_owned(),
                    kind: span::SpanKind::Server as i32,
                    start_time_unix_nano: 1_000,
                    end_time_unix_nano: 2_000,
                    attributes: vec![kv("http.route", "/x")],
                    dropped_attributes_count: 3,
                    events: Vec::new(),
                    dropped_events_count: 4,
                    links: vec![span::Link {
                        trace_id: vec![9; 16],
                        span_id: vec![2; 8],
                        trace_state: String::new(),
                        attributes: vec![kv("link.kind", "batch")],
                        dropped_attributes_count: 0,
                        flags: 1,
                    }],
                    dropped_links_count: 5,
                    status: Some(Status {
                        message: "boom".to_owned(),
                        code: 2,
                    }),
                }],
                schema_url: "https://opentelemetry.io/schemas/1.30.0".to_owned(),
            }],
            schema_url: "https://opentelemetry.io/schemas/1.30.0".to_owned(),
        }],
    }
}

fn metrics() -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "forwarded")],
                dropped_attributes_count: 0,
                entity_refs: Vec::new(),
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: None,
                metrics: vec![Metric {
                    name: "queue.depth".to_owned(),
                    description: "items".to_owned(),
                    unit: "{item}".to_owned(),
                    metadata: Vec::new(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: vec![NumberDataPoint {
                            attributes: vec![kv("queue", "a")],
                            start_time_unix_nano: 0,
                            time_unix_nano: 5,
                            exemplars: Vec::new(),
                            flags: 0,
                            value: Some(
                                opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsInt(3),
                            ),
                        }],
                    })),
                }],
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// Waits until the upstream holds `n` bodies.
async fn wait_for(got: &Got, n: usize) -> Vec<(String, Bytes)> {
    for _ in 0..200 {
        let bodies = got.lock().unwrap().clone();
        if bodies.len() >= n {
            return bodies;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the upstream got {:?}", got.lock().unwrap().len());
}

#[tokio::test]
async fn every_transport_arrives_upstream_protobuf_equal() {
    let (url, got) = upstream().await;
    let receiver = forwarding_to(&url).await;
    let client = reqwest::Client::new();

    // OTLP/HTTP protobuf.
    let sent_proto = traces("over protobuf");
    let response = client
        .post(format!("{}/v1/traces", receiver.http_endpoint()))
        .header("content-type", "application/x-protobuf")
        .body(sent_proto.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // OTLP/HTTP JSON (the crate's serde forms are OTLP/JSON's).
    let sent_json = traces("over json");
    let response = client
        .post(format!("{}/v1/traces", receiver.http_endpoint()))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&sent_json).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // gRPC.
    let sent_grpc = traces("over grpc");
    let mut grpc = TraceServiceClient::connect(receiver.grpc_endpoint())
        .await
        .unwrap();
    grpc.export(sent_grpc.clone()).await.unwrap();
    // Metrics over OTLP/HTTP protobuf.
    let sent_metrics = metrics();
    let response = client
        .post(format!("{}/v1/metrics", receiver.http_endpoint()))
        .header("content-type", "application/x-protobuf")
        .body(sent_metrics.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let bodies = wait_for(&got, 4).await;
    let traces_got: Vec<ExportTraceServiceRequest> = bodies
        .iter()
        .filter(|(path, _)| path == "/v1/traces")
        .map(|(_, body)| ExportTraceServiceRequest::decode(body.clone()).unwrap())
        .collect();
    assert_eq!(traces_got, [sent_proto.clone(), sent_json, sent_grpc]);
    // The protobuf body goes up byte for byte.
    assert_eq!(
        bodies.iter().find(|(p, _)| p == "/v1/traces").unwrap().1,
        sent_proto.encode_to_vec()
    );
    let metrics_got: Vec<ExportMetricsServiceRequest> = bodies
        .iter()
        .filter(|(path, _)| path == "/v1/metrics")
        .map(|(_, body)| ExportMetricsServiceRequest::decode(body.clone()).unwrap())
        .collect();
    assert_eq!(metrics_got, [sent_metrics]);
    // The lab keeps its own copy too.
    assert_eq!(receiver.store().spans().len(), 3);
    assert!(receiver.flush_forwarding(Duration::from_secs(5)).await);
    assert_eq!(
        receiver.forwarded().unwrap().1,
        ForwardStats {
            sent: 4,
            failed: 0,
            dropped: 0
        }
    );
    receiver.shutdown().await;
}

#[tokio::test]
async fn a_dead_upstream_is_counted_and_the_exporter_never_notices() {
    // A port nobody listens on.
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let receiver = forwarding_to(&dead).await;
    let response = reqwest::Client::new()
        .post(format!("{}/v1/traces", receiver.http_endpoint()))
        .header("content-type", "application/x-protobuf")
        .body(traces("lost upstream").encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the exporter is answered at once");
    assert_eq!(receiver.store().spans().len(), 1);
    assert!(receiver.flush_forwarding(Duration::from_secs(30)).await);
    assert_eq!(
        receiver.forwarded().unwrap(),
        (
            dead.as_str(),
            ForwardStats {
                sent: 0,
                failed: 1,
                dropped: 0
            }
        )
    );
}

#[tokio::test]
async fn a_forward_url_that_is_not_plain_http_is_refused_at_start() {
    for url in [
        "localhost:4318",
        "https://collector:4318",
        "ftp://x",
        "http://",
    ] {
        let error = start(ReceiverConfig {
            forward_to: Some(url.to_owned()),
            ..ReceiverConfig::default()
        })
        .await
        .unwrap_err();
        assert!(
            matches!(&error, ReceiverError::Forward { url: u, .. } if u == url),
            "{url}: {error}"
        );
        assert!(
            error.to_string().contains("http://localhost:4318"),
            "{error}"
        );
    }
}
