//! The meter provider `init` builds, exporting over real OTLP/HTTP to a tiny
//! receiver in the test: with the defaults a shutdown sends the recorded
//! histogram; with `OTEL_METRICS_EXPORTER=none` or `OTEL_SDK_DISABLED=true`
//! nothing is ever sent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::Router;
use telemetry::metrics::{build_meter_provider, duration_histogram};
use telemetry::TelemetryConfig;

type Received = Arc<Mutex<Vec<(String, Bytes)>>>;

/// Records every POST (path, body); answers an empty OTLP success.
async fn receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let app = Router::new()
        .route(
            "/{*path}",
            post(
                |State(r): State<Received>, uri: axum::http::Uri, body: Bytes| async move {
                    r.lock().unwrap().push((uri.path().to_owned(), body));
                    (
                        [("content-type", "application/x-protobuf")],
                        Vec::<u8>::new(),
                    )
                },
            ),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), received)
}

fn config(vars: &[(&str, &str)]) -> TelemetryConfig {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    TelemetryConfig::from_lookup("export-test", "0.0.1", |k| map.get(k).cloned()).unwrap()
}

/// Records one sample and shuts the provider down (which exports).
async fn record_and_shut_down(config: &TelemetryConfig) {
    let provider = build_meter_provider(config, telemetry::resource::resource(config)).unwrap();
    let meter = opentelemetry::metrics::MeterProvider::meter(&provider, "latency-lab");
    duration_histogram(&meter, "http.server.request.duration", "test").record(0.042, &[]);
    tokio::task::spawn_blocking(move || provider.shutdown())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_exports_over_otlp_http_to_v1_metrics() {
    let (base, received) = receiver().await;
    let config = config(&[
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &base),
    ]);
    record_and_shut_down(&config).await;
    let received = received.lock().unwrap();
    assert!(!received.is_empty(), "shutdown exports what was recorded");
    assert!(received.iter().all(|(path, _)| path == "/v1/metrics"));
    let body = &received.last().unwrap().1;
    let contains = |needle: &str| body.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(contains("http.server.request.duration"));
    assert!(contains("export-test"), "the resource names the service");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn none_and_sdk_disabled_send_nothing() {
    for switch in [
        ("OTEL_METRICS_EXPORTER", "none"),
        ("OTEL_SDK_DISABLED", "true"),
    ] {
        let (base, received) = receiver().await;
        let config = config(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &base),
            switch,
        ]);
        record_and_shut_down(&config).await;
        assert!(
            received.lock().unwrap().is_empty(),
            "{}={} sent metrics",
            switch.0,
            switch.1
        );
    }
}
