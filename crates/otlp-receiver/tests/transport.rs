//! The transports driven by hand: OTLP/JSON, raw protobuf, the error statuses a misbehaving
//! client gets, a raw gRPC client, and the receiver's lifecycle.

use std::io::Write;
use std::time::Duration;

use flate2::write::GzEncoder;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use otlp_receiver::{
    start, AttrValue, NumberValue, ReceiverConfig, ReceiverError, RunningReceiver, SpanKind,
    StatusCode, Temporality, METRICS_PATH, TRACES_PATH,
};
use prost::Message;

const TRACE_ID: &str = "5b8efff798038103d269b633813fc60c";

/// OTLP/JSON as the specification writes it: hex ids (one in upper case, which must come out
/// lower case), 64-bit integers as strings, enums as numbers.
const JSON_BODY: &str = r#"{
  "resourceSpans": [{
    "resource": { "attributes": [
      { "key": "service.name", "value": { "stringValue": "json-svc" } }
    ]},
    "scopeSpans": [{
      "scope": { "name": "hand-written" },
      "spans": [
        {
          "traceId": "5B8EFFF798038103D269B633813FC60C",
          "spanId": "eee19b7ec3c1b174",
          "parentSpanId": "",
          "name": "GET /checkout",
          "kind": 2,
          "startTimeUnixNano": "1544712660000000000",
          "endTimeUnixNano": "1544712661000000000",
          "attributes": [
            { "key": "http.response.status_code", "value": { "intValue": "503" } },
            { "key": "retry", "value": { "boolValue": true } },
            { "key": "weight", "value": { "doubleValue": 1.5 } }
          ],
          "events": [
            { "timeUnixNano": "1544712660500000000", "name": "retrying",
              "attributes": [{ "key": "attempt", "value": { "intValue": 2 } }] }
          ],
          "status": { "code": 2, "message": "upstream unavailable" }
        },
        {
          "traceId": "5b8efff798038103d269b633813fc60c",
          "spanId": "0102030405060708",
          "parentSpanId": "eee19b7ec3c1b174",
          "name": "SELECT cart",
          "kind": 3,
          "startTimeUnixNano": "1544712660100000000",
          "endTimeUnixNano": "1544712660200000000"
        }
      ]
    }]
  }]
}"#;

async fn receiver() -> RunningReceiver {
    start(ReceiverConfig::default())
        .await
        .expect("receiver starts")
}

fn traces_url(receiver: &RunningReceiver) -> String {
    format!("{}{}", receiver.http_endpoint(), TRACES_PATH)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).expect("gzip in memory");
    encoder.finish().expect("gzip in memory")
}

async fn post(
    receiver: &RunningReceiver,
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new().post(traces_url(receiver)).body(body);
    if let Some(value) = content_type {
        request = request.header("content-type", value);
    }
    if let Some(value) = content_encoding {
        request = request.header("content-encoding", value);
    }
    request.send().await.expect("request reaches the receiver")
}

fn content_type(response: &reqwest::Response) -> &str {
    response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

fn proto_request(
    service: &str,
    span_name: &str,
    attribute_bytes: usize,
) -> ExportTraceServiceRequest {
    let string = |s: String| {
        Some(AnyValue {
            value: Some(any_value::Value::StringValue(s)),
        })
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: string(service.into()),
                    key_strindex: 0,
                }],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: vec![0x11; 16],
                    span_id: vec![0x22; 8],
                    name: span_name.into(),
                    kind: 1,
                    start_time_unix_nano: 10,
                    end_time_unix_nano: 20,
                    attributes: vec![KeyValue {
                        key: "payload".into(),
                        value: string("x".repeat(attribute_bytes)),
                        key_strindex: 0,
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            schema_url: String::new(),
        }],
    }
}

async fn check_json_export(content_encoding: Option<&str>) {
    let receiver = receiver().await;
    let body = match content_encoding {
        Some(_) => gzip(JSON_BODY.as_bytes()),
        None => JSON_BODY.as_bytes().to_vec(),
    };
    let response = post(&receiver, Some("application/json"), content_encoding, body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(content_type(&response), "application/json");
    let answer = json_body(response).await;
    assert!(answer.is_object(), "{answer}");

    let spans = receiver
        .store()
        .wait_for_trace(&TRACE_ID.to_uppercase(), 2, Duration::from_secs(5))
        .await
        .expect("both spans stored");
    let root = &spans[0];
    assert_eq!(root.trace_id, TRACE_ID);
    assert_eq!(root.span_id, "eee19b7ec3c1b174");
    assert_eq!(root.parent_span_id, None);
    assert_eq!(root.service_name, "json-svc");
    assert_eq!(root.scope_name, "hand-written");
    assert_eq!(root.kind, SpanKind::Server);
    assert_eq!(root.start_unix_nanos, 1_544_712_660_000_000_000);
    assert_eq!(root.duration(), Duration::from_secs(1));
    assert_eq!(root.attr_i64("http.response.status_code"), Some(503));
    assert_eq!(root.attr("retry").and_then(AttrValue::as_bool), Some(true));
    assert_eq!(root.attr("weight").and_then(AttrValue::as_f64), Some(1.5));
    assert_eq!(root.events[0].name, "retrying");
    assert_eq!(root.events[0].attributes["attempt"].as_i64(), Some(2));
    assert_eq!(root.status_code, StatusCode::Error);
    assert_eq!(root.status_message, "upstream unavailable");

    let child = &spans[1];
    assert_eq!(child.name, "SELECT cart");
    assert_eq!(child.kind, SpanKind::Client);
    assert_eq!(child.parent_span_id.as_deref(), Some("eee19b7ec3c1b174"));
    assert!(child.overlaps(root));
    receiver.shutdown().await;
}

#[tokio::test]
async fn otlp_json_is_accepted() {
    check_json_export(None).await;
}

#[tokio::test]
async fn gzipped_otlp_json_is_accepted() {
    check_json_export(Some("gzip")).await;
}

#[tokio::test]
async fn raw_protobuf_is_accepted_and_answered_in_protobuf() {
    let receiver = receiver().await;
    let body = proto_request("proto-svc", "raw", 4).encode_to_vec();
    let response = post(&receiver, Some("application/x-protobuf"), None, body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(content_type(&response), "application/x-protobuf");
    let answer = ExportTraceServiceResponse::decode(response.bytes().await.unwrap())
        .expect("protobuf answer");
    assert_eq!(answer.partial_success, None);

    let spans = receiver.store().spans();
    assert_eq!(spans.len(), 1, "stored before the response was sent");
    assert_eq!(spans[0].service_name, "proto-svc");
    assert_eq!(spans[0].trace_id, "11".repeat(16));
    assert_eq!(spans[0].span_id, "22".repeat(8));
    assert_eq!(spans[0].kind, SpanKind::Internal);
    receiver.shutdown().await;
}

#[tokio::test]
async fn bad_requests_get_the_right_status_and_store_nothing() {
    let receiver = receiver().await;
    let garbage = vec![0xFF, 0xFF, 0xFF, 0xFF, 0x0F];

    let response = post(
        &receiver,
        Some("application/x-protobuf"),
        None,
        garbage.clone(),
    )
    .await;
    assert_eq!(response.status(), 400);
    assert_eq!(content_type(&response), "application/x-protobuf");
    let body = response.bytes().await.unwrap();
    assert!(
        String::from_utf8_lossy(&body).contains("malformed OTLP protobuf body"),
        "{body:?}"
    );

    let response = post(
        &receiver,
        Some("application/json"),
        None,
        b"{not json".to_vec(),
    )
    .await;
    assert_eq!(response.status(), 400);
    let status = json_body(response).await;
    assert_eq!(status["code"], 3);
    assert!(
        status["message"].as_str().unwrap().contains("OTLP/JSON"),
        "{status}"
    );

    let bad_hex = JSON_BODY.replace("eee19b7ec3c1b174", "not-hex!");
    let response = post(
        &receiver,
        Some("application/json"),
        None,
        bad_hex.into_bytes(),
    )
    .await;
    assert_eq!(response.status(), 400, "an id that is not hex is malformed");

    let response = post(&receiver, Some("text/plain"), None, b"hello".to_vec()).await;
    assert_eq!(response.status(), 415);
    let response = post(&receiver, None, None, garbage.clone()).await;
    assert_eq!(response.status(), 415, "no content type");

    let response = post(
        &receiver,
        Some("application/x-protobuf"),
        Some("br"),
        garbage.clone(),
    )
    .await;
    assert_eq!(response.status(), 415, "unknown content encoding");
    let response = post(
        &receiver,
        Some("application/x-protobuf"),
        Some("gzip"),
        garbage,
    )
    .await;
    assert_eq!(response.status(), 400, "corrupt gzip");

    let client = reqwest::Client::new();
    let response = client.get(traces_url(&receiver)).send().await.unwrap();
    assert_eq!(response.status(), 405);
    let response = client.put(traces_url(&receiver)).send().await.unwrap();
    assert_eq!(response.status(), 405);
    let response = client
        .post(format!("{}/v1/logs", receiver.http_endpoint()))
        .header("content-type", "application/x-protobuf")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);

    assert!(receiver.store().spans().is_empty());
    // Still serving after all that.
    let body = proto_request("after", "ok", 1).encode_to_vec();
    let response = post(&receiver, Some("application/x-protobuf"), None, body).await;
    assert_eq!(response.status(), 200);
    receiver.shutdown().await;
}

/// Decodes a JSON body without reqwest's `json` feature, keeping the dependency lean.
async fn json_body(response: reqwest::Response) -> serde_json::Value {
    serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON body")
}

#[tokio::test]
async fn grpc_accepts_gzip_and_messages_over_the_4_mib_default() {
    let receiver = receiver().await;
    let mut client = TraceServiceClient::connect(receiver.grpc_endpoint())
        .await
        .expect("gRPC connects")
        .send_compressed(tonic::codec::CompressionEncoding::Gzip);
    client
        .export(proto_request("grpc-raw", "small", 10))
        .await
        .expect("gzipped export accepted");

    let mut plain = TraceServiceClient::connect(receiver.grpc_endpoint())
        .await
        .expect("gRPC connects");
    let big = proto_request("grpc-raw", "big", 6 * 1024 * 1024);
    assert!(big.encoded_len() > 4 * 1024 * 1024);
    plain.export(big).await.expect("a 6 MiB export is accepted");

    let spans = receiver
        .store()
        .wait_for(Duration::from_secs(5), |s| s.len() == 2)
        .await
        .expect("both exports stored");
    assert_eq!(spans[0].name, "small");
    assert_eq!(spans[1].name, "big");
    assert_eq!(
        spans[1].attr_str("payload").map(str::len),
        Some(6 * 1024 * 1024)
    );
    receiver.shutdown().await;
}

#[tokio::test]
async fn endpoints_name_the_bound_loopback_ports() {
    let receiver = receiver().await;
    assert_ne!(receiver.grpc_addr().port(), 0);
    assert_ne!(receiver.http_addr().port(), 0);
    assert_ne!(receiver.grpc_addr(), receiver.http_addr());
    assert_eq!(
        receiver.grpc_endpoint(),
        format!("http://127.0.0.1:{}", receiver.grpc_addr().port())
    );
    assert_eq!(
        receiver.http_endpoint(),
        format!("http://127.0.0.1:{}", receiver.http_addr().port())
    );
    receiver.shutdown().await;
}

#[tokio::test]
async fn wildcard_binds_advertise_loopback() {
    let config = ReceiverConfig {
        grpc_addr: "0.0.0.0:0".parse().unwrap(),
        http_addr: "0.0.0.0:0".parse().unwrap(),
        max_traces: 5,
        forward_to: None,
    };
    let receiver = start(config).await.expect("receiver starts");
    assert!(receiver.grpc_endpoint().starts_with("http://127.0.0.1:"));
    let body = proto_request("wild", "ok", 1).encode_to_vec();
    let response = post(&receiver, Some("application/x-protobuf"), None, body).await;
    assert_eq!(response.status(), 200);
    receiver.shutdown().await;
}

#[tokio::test]
async fn a_taken_port_is_a_bind_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let config = ReceiverConfig {
        http_addr: addr,
        ..ReceiverConfig::default()
    };
    match start(config).await {
        Err(ReceiverError::Bind {
            addr: reported,
            source,
        }) => {
            assert_eq!(reported, addr);
            assert_eq!(source.kind(), std::io::ErrorKind::AddrInUse);
        }
        Err(other) => panic!("expected a bind error, got {other}"),
        Ok(_) => panic!("bound a port that is already taken"),
    }
}

async fn refuses_connections(addr: std::net::SocketAddr) -> bool {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn shutdown_stops_both_listeners() {
    let receiver = receiver().await;
    let (grpc, http) = (receiver.grpc_addr(), receiver.http_addr());
    assert!(tokio::net::TcpStream::connect(http).await.is_ok());
    let store = receiver.store().clone();
    tokio::time::timeout(Duration::from_secs(10), receiver.shutdown())
        .await
        .expect("shutdown completes");
    assert!(refuses_connections(grpc).await, "gRPC still listening");
    assert!(refuses_connections(http).await, "HTTP still listening");
    assert!(store.spans().is_empty(), "the store outlives the receiver");
}

#[tokio::test]
async fn dropping_the_receiver_stops_it_too() {
    let receiver = receiver().await;
    let http = receiver.http_addr();
    drop(receiver);
    assert!(
        refuses_connections(http).await,
        "HTTP still listening after drop"
    );
}

/// OTLP/JSON metrics as the specification writes them (64-bit integers as strings), gzipped.
/// One exception: the counter's `asInt` is a bare number, because opentelemetry-proto 0.32's
/// decoder drops a quoted one (the receiver then counts the point as ignored, see the end).
const JSON_METRICS: &str = r#"{
  "resourceMetrics": [{
    "resource": { "attributes": [
      { "key": "service.name", "value": { "stringValue": "json-svc" } }
    ]},
    "scopeMetrics": [{
      "scope": { "name": "hand-written" },
      "metrics": [{
        "name": "http.server.request.duration",
        "unit": "s",
        "histogram": {
          "aggregationTemporality": 2,
          "dataPoints": [{
            "attributes": [
              { "key": "http.route", "value": { "stringValue": "/checkout" } },
              { "key": "http.response.status_code", "value": { "intValue": "200" } }
            ],
            "startTimeUnixNano": "1544712660000000000",
            "timeUnixNano": "1544712670000000000",
            "count": "4",
            "sum": 1.1,
            "bucketCounts": ["1", "3", "0"],
            "explicitBounds": [0.1, 0.5],
            "min": 0.05,
            "max": 0.45
          }]
        }
      }, {
        "name": "retries",
        "sum": {
          "aggregationTemporality": 2,
          "isMonotonic": true,
          "dataPoints": [{ "asInt": 7, "timeUnixNano": "1544712670000000000" }]
        }
      }]
    }]
  }]
}"#;

#[tokio::test]
async fn gzipped_otlp_json_metrics_are_accepted() {
    let receiver = receiver().await;
    let response = reqwest::Client::new()
        .post(format!("{}{}", receiver.http_endpoint(), METRICS_PATH))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(gzip(JSON_METRICS.as_bytes()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(content_type(&response), "application/json");
    let points = receiver
        .metrics()
        .histograms("http.server.request.duration");
    assert_eq!(points.len(), 1, "{points:#?}");
    let point = &points[0];
    assert_eq!(point.origin.service_name, "json-svc");
    assert_eq!(point.origin.attr_str("http.route"), Some("/checkout"));
    assert_eq!(
        point.origin.attr_i64("http.response.status_code"),
        Some(200)
    );
    assert_eq!(point.count, 4);
    assert_eq!(point.bucket_counts, [1, 3, 0]);
    assert_eq!(point.explicit_bounds, [0.1, 0.5]);
    assert_eq!((point.min, point.max), (Some(0.05), Some(0.45)));
    assert_eq!(point.temporality, Temporality::Cumulative);
    assert_eq!(
        receiver.metrics().sums("retries")[0].value,
        NumberValue::Int(7)
    );

    // A malformed metrics body is refused like a malformed trace body, and stores nothing.
    let response = reqwest::Client::new()
        .post(format!("{}{}", receiver.http_endpoint(), METRICS_PATH))
        .header("content-type", "application/x-protobuf")
        .body(vec![0xff, 0xff, 0xff])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(receiver.metrics().series_count(), 2);
    assert_eq!(receiver.metrics().ignored_points(), 0);

    // A quoted `asInt` loses its value in the proto crate's JSON decoder: ignored, not zero.
    let quoted = JSON_METRICS.replace(r#""asInt": 7"#, r#""asInt": "8""#);
    let response = reqwest::Client::new()
        .post(format!("{}{}", receiver.http_endpoint(), METRICS_PATH))
        .header("content-type", "application/json")
        .body(quoted)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(receiver.metrics().ignored_points(), 1);
    assert_eq!(
        receiver.metrics().sums("retries")[0].value,
        NumberValue::Int(7)
    );
    assert!(receiver.store().spans().is_empty());
    receiver.shutdown().await;
}

#[tokio::test]
async fn a_stopped_receiver_restarts_on_the_same_ports_with_the_same_stores() {
    let receiver = receiver().await;
    let (grpc, http) = (receiver.grpc_addr(), receiver.http_addr());
    let request = proto_request("before", "before-span", 0);
    let response = post(
        &receiver,
        Some("application/x-protobuf"),
        None,
        request.encode_to_vec(),
    )
    .await;
    assert_eq!(response.status(), 200);

    let stopped = tokio::time::timeout(Duration::from_secs(10), receiver.stop())
        .await
        .expect("stop completes");
    assert!(refuses_connections(grpc).await, "gRPC still listening");
    assert!(refuses_connections(http).await, "HTTP still listening");
    assert_eq!(stopped.store().spans().len(), 1, "the store is kept");

    let receiver = stopped.restart().await.expect("the same ports bind again");
    assert_eq!((receiver.grpc_addr(), receiver.http_addr()), (grpc, http));
    let mut request = proto_request("after", "after-span", 0);
    request.resource_spans[0].scope_spans[0].spans[0].span_id = vec![0x33; 8];
    let mut client = TraceServiceClient::connect(receiver.grpc_endpoint())
        .await
        .expect("gRPC answers again");
    client.export(request).await.expect("export after restart");
    let names: Vec<String> = receiver
        .store()
        .spans()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["before-span", "after-span"]);
    receiver.shutdown().await;
}
