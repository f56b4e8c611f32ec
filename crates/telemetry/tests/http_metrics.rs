//! `http.server.request.duration` and `http.client.request.duration`, as a
//! service exports them: names, units, attributes, one sample per request
//! or attempt, the suite's bucket boundaries. One test binary, one global
//! in-memory meter provider installed before any instrument exists.

use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use telemetry::client::UrlTemplate;
use telemetry::metrics::testing::{global_in_memory, Point};
use telemetry::metrics::DURATION_BOUNDARIES;

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

fn keys(point: &Point) -> Vec<&str> {
    let mut keys: Vec<&str> = point.attributes.iter().map(|kv| kv.key.as_str()).collect();
    keys.sort_unstable();
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_and_client_durations_per_route_status_and_attempt() {
    let metrics = global_in_memory();
    let router = Router::new()
        .route("/users/{id}", get(|| async { "ok" }))
        .route("/broken", get(|| async { StatusCode::SERVICE_UNAVAILABLE }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .layer(axum::middleware::from_fn(telemetry::server::trace_request));
    let base = serve(router).await;
    let port = base.rsplit(':').next().unwrap().to_owned();
    let client = telemetry::traced_client().unwrap();

    for id in 1..=3 {
        let r = client
            .get(format!("{base}/users/{id}"))
            .with_extension(UrlTemplate("/users/{id}".into()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    for _ in 0..2 {
        let r = client.get(format!("{base}/broken")).send().await.unwrap();
        assert_eq!(r.status(), 503);
    }
    // An attempt that times out, and one refused (nothing listens there).
    let timed_out = client
        .get(format!("{base}/slow"))
        .timeout(Duration::from_millis(50))
        .send()
        .await;
    assert!(timed_out.is_err());
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let refused = client.get(format!("http://{closed}/nothing")).send().await;
    assert!(refused.is_err());
    // An attempt dropped before its answer: still one sample, `cancelled`.
    let dropped = tokio::time::timeout(
        Duration::from_millis(50),
        client.get(format!("{base}/slow")).send(),
    )
    .await;
    assert!(dropped.is_err());

    let snapshot = metrics.collect();

    // SERVER side.
    let server = "http.server.request.duration";
    assert_eq!(snapshot.unit(server).as_deref(), Some("s"));
    let users = snapshot.points_with(server, &[("http.route", "/users/{id}")]);
    assert_eq!(users.len(), 1, "one series for three ids: {users:?}");
    let users = &users[0];
    assert_eq!(users.count, 3);
    assert_eq!(users.bounds, DURATION_BOUNDARIES);
    assert_eq!(
        keys(users),
        [
            "http.request.method",
            "http.response.status_code",
            "http.route",
            "url.scheme"
        ]
    );
    assert!(users.has(&[("http.request.method", "GET"), ("url.scheme", "http")]));
    assert_eq!(
        users.attr("http.response.status_code"),
        Some(&opentelemetry::Value::I64(200))
    );
    let broken = snapshot.points_with(server, &[("http.route", "/broken")]);
    assert_eq!(broken.len(), 1);
    assert_eq!(broken[0].count, 2);
    assert!(broken[0].has(&[("error.type", "503")]), "{broken:?}");

    // CLIENT side: one sample per attempt.
    let client_metric = "http.client.request.duration";
    assert_eq!(snapshot.unit(client_metric).as_deref(), Some("s"));
    let users = snapshot.points_with(client_metric, &[("url.template", "/users/{id}")]);
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(users[0].count, 3);
    assert_eq!(users[0].bounds, DURATION_BOUNDARIES);
    assert_eq!(
        keys(&users[0]),
        [
            "http.request.method",
            "http.response.status_code",
            "server.address",
            "server.port",
            "url.template"
        ]
    );
    assert!(users[0].has(&[("server.address", "127.0.0.1"), ("server.port", &port)]));
    assert_eq!(
        snapshot.total(client_metric, &[("error.type", "503")]),
        2.0,
        "a 5xx answer is an error of the call"
    );
    assert_eq!(
        snapshot.total(client_metric, &[("error.type", "timeout")]),
        1.0
    );
    assert_eq!(
        snapshot.total(client_metric, &[("error.type", "connect_error")]),
        1.0
    );
    assert_eq!(
        snapshot.total(client_metric, &[("error.type", "cancelled")]),
        1.0
    );
    let timeout = &snapshot.points_with(client_metric, &[("error.type", "timeout")])[0];
    assert!(
        timeout.attr("http.response.status_code").is_none(),
        "no answer, no status"
    );
    // Nothing of high cardinality anywhere.
    for name in [server, client_metric] {
        for point in snapshot.points(name) {
            for key in keys(&point) {
                assert!(
                    !["url.full", "url.path", "url.query", "client.address"].contains(&key),
                    "{name} carries {key}"
                );
            }
        }
    }
}
