//! Both mocks' routes, in process (no telemetry needed: with no subscriber
//! installed the spans are simply not recorded). What they share is tested
//! for each of [`ALL`]; what they answer, per mock.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use mock_service::{
    fake_orders, fake_user, router, MockSpec, Order, User, ALL, ORDER_SERVICE, USER_SERVICE,
};
use tower::ServiceExt;

fn app(spec: &'static MockSpec) -> axum::Router {
    router(spec, spec.fixed(Duration::from_millis(1)))
}

async fn get(spec: &'static MockSpec, path: &str) -> (StatusCode, serde_json::Value) {
    let response = app(spec)
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, body)
}

#[tokio::test]
async fn known_users_are_deterministic() {
    let (status, body) = get(&USER_SERVICE, "/users/42").await;
    assert_eq!(status, StatusCode::OK);
    let user: User = serde_json::from_value(body).unwrap();
    assert_eq!(user, fake_user(42));
    assert_eq!(user.id, 42);
    assert_ne!(fake_user(42), fake_user(43));
}

#[tokio::test]
async fn orders_are_deterministic_lists() {
    let mut lengths = std::collections::BTreeSet::new();
    for id in 1..=40u64 {
        let (status, body) = get(&ORDER_SERVICE, &format!("/users/{id}/orders")).await;
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
    for spec in ALL {
        for (path, status, code) in [
            (spec.path("abc"), StatusCode::BAD_REQUEST, "invalid_id"),
            (spec.path("0"), StatusCode::BAD_REQUEST, "invalid_id"),
            (
                spec.path("%F0%9F%92%A5"),
                StatusCode::BAD_REQUEST,
                "invalid_id",
            ),
            (spec.path("10001"), StatusCode::NOT_FOUND, "user_not_found"),
            (
                "/nowhere".to_owned(),
                StatusCode::NOT_FOUND,
                "route_not_found",
            ),
        ] {
            let (got, body) = get(spec, &path).await;
            let service = spec.name.service;
            assert_eq!(got, status, "{service} {path}");
            assert_eq!(body["error"]["code"], code, "{service} {path}: {body}");
        }
    }
}

#[tokio::test]
async fn the_wait_is_the_configured_latency() {
    for spec in ALL {
        let app = router(spec, spec.fixed(Duration::from_millis(150)));
        let started = std::time::Instant::now();
        let response = app
            .oneshot(Request::get(spec.path("1")).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{}", spec.name.service);
        assert!(started.elapsed() >= Duration::from_millis(150));
    }
}

#[tokio::test]
async fn a_wrong_method_is_a_json_405() {
    for spec in ALL {
        let response = app(spec)
            .oneshot(Request::delete(spec.path("1")).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["error"]["code"], "method_not_allowed", "{body}");
    }
}

#[tokio::test]
async fn healthz_answers() {
    for spec in ALL {
        let response = app(spec)
            .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{}", spec.name.service);
    }
}

#[test]
fn the_specs_keep_their_names_routes_and_defaults() {
    assert_eq!(USER_SERVICE.name.service, "user-service");
    assert_eq!(USER_SERVICE.path("7"), "/users/7");
    assert_eq!(USER_SERVICE.default_latency, Duration::from_millis(100));
    assert_eq!(USER_SERVICE.default_listen.to_string(), "127.0.0.1:5001");
    assert_eq!(ORDER_SERVICE.name.service, "order-service");
    assert_eq!(ORDER_SERVICE.path("7"), "/users/7/orders");
    assert_eq!(ORDER_SERVICE.default_latency, Duration::from_millis(200));
    assert_eq!(ORDER_SERVICE.default_listen.to_string(), "127.0.0.1:5002");
}
