//! The order service's routes, in process (no telemetry needed: with no
//! subscriber installed the spans are simply not recorded).

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use order_service::{fake_orders, router, Config, Order};
use tower::ServiceExt;

fn app() -> axum::Router {
    router(Config::fixed(Duration::from_millis(1)))
}

async fn get(path: &str) -> (StatusCode, serde_json::Value) {
    let response = app()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, body)
}

#[tokio::test]
async fn orders_are_deterministic_lists() {
    let mut lengths = std::collections::BTreeSet::new();
    for id in 1..=40u64 {
        let (status, body) = get(&format!("/users/{id}/orders")).await;
        assert_eq!(status, StatusCode::OK);
        let orders: Vec<Order> = serde_json::from_value(body).unwrap();
        assert_eq!(orders, fake_orders(id));
        assert!(orders
            .iter()
            .all(|o| o.user_id == id && o.quantity >= 1 && o.total_cents > 0));
        lengths.insert(orders.len());
    }
    assert!(
        lengths.len() > 2,
        "users have different numbers of orders: {lengths:?}"
    );
}

#[tokio::test]
async fn bad_and_unknown_ids_are_json_errors() {
    for (path, status, code) in [
        ("/users/abc/orders", StatusCode::BAD_REQUEST, "invalid_id"),
        ("/users/0/orders", StatusCode::BAD_REQUEST, "invalid_id"),
        (
            "/users/%F0%9F%92%A5/orders",
            StatusCode::BAD_REQUEST,
            "invalid_id",
        ),
        (
            "/users/10001/orders",
            StatusCode::NOT_FOUND,
            "user_not_found",
        ),
        ("/nowhere", StatusCode::NOT_FOUND, "route_not_found"),
    ] {
        let (got, body) = get(path).await;
        assert_eq!(got, status, "{path}");
        assert_eq!(body["error"]["code"], code, "{path}: {body}");
    }
}

#[tokio::test]
async fn the_wait_is_the_configured_latency() {
    let app = router(Config::fixed(Duration::from_millis(150)));
    let started = std::time::Instant::now();
    let response = app
        .oneshot(Request::get("/users/1/orders").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn healthz_answers() {
    let response = app()
        .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
