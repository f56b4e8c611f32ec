//! The direct sinks send what the variables ask for: the headers of
//! `OTEL_EXPORTER_OTLP_HEADERS`, a `User-Agent` naming the exporter, the
//! OTLP content type, to the right path. A small server records each
//! request's head; whether the answer pleases the sink does not matter here.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{OriginalUri, State};
use http::{HeaderMap, HeaderValue};

use super::grpc::GrpcSpanSink;
use super::http::HttpSpanSink;
use super::worker::{Batch, BatchSink};

type Seen = Arc<Mutex<Vec<(String, HeaderMap)>>>;

async fn record(State(seen): State<Seen>, OriginalUri(uri): OriginalUri, headers: HeaderMap) {
    seen.lock().unwrap().push((uri.path().to_owned(), headers));
}

/// A runtime serving the recorder on a free port; its address.
fn recorder() -> (tokio::runtime::Runtime, std::net::SocketAddr, Seen) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let seen = Seen::default();
    let app = axum::Router::new()
        .fallback(record)
        .with_state(seen.clone());
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(async move { axum::serve(listener, app).await });
    (runtime, addr, seen)
}

fn api_key() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("api-key", HeaderValue::from_static("s3cret"));
    headers
}

fn only_request(seen: &Seen) -> (String, HeaderMap) {
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    seen[0].clone()
}

#[test]
fn http_posts_the_request_with_the_headers_and_a_user_agent() {
    let (_runtime, addr, seen) = recorder();
    let sink = HttpSpanSink::new(
        &format!("http://{addr}/v1/traces"),
        Duration::from_secs(5),
        api_key(),
    )
    .unwrap();
    // The export thread's way: a blocking send, outside any runtime.
    futures_executor::block_on(sink.send(&Batch::default())).unwrap();
    let (path, headers) = only_request(&seen);
    assert_eq!(path, "/v1/traces");
    assert_eq!(headers["api-key"], "s3cret");
    assert_eq!(headers["content-type"], "application/x-protobuf");
    let agent = headers["user-agent"].to_str().unwrap();
    assert!(agent.starts_with("OTel-OTLP-Exporter-Rust/"), "{agent}");
}

#[test]
fn grpc_calls_export_with_the_headers_as_metadata_and_a_user_agent() {
    let (runtime, addr, seen) = recorder();
    let sink = {
        let _inside = runtime.enter();
        GrpcSpanSink::new(
            &format!("http://{addr}"),
            Duration::from_secs(5),
            api_key(),
            None,
        )
        .unwrap()
    };
    // The recorder is no gRPC server: the call fails, its head arrived.
    let _ = futures_executor::block_on(sink.send(&Batch::default()));
    let (path, headers) = only_request(&seen);
    assert_eq!(
        path,
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
    );
    assert_eq!(headers["api-key"], "s3cret");
    assert_eq!(headers["content-type"], "application/grpc");
    let agent = headers["user-agent"].to_str().unwrap();
    assert!(agent.starts_with("OTel-OTLP-Exporter-Rust/"), "{agent}");
}
