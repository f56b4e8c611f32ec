//! The user service's routes, in process (no telemetry needed: with no
//! subscriber installed the spans are simply not recorded).

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;
use user_service::{fake_user, router, Config, User};

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
async fn known_users_are_deterministic() {
    let (status, body) = get("/users/42").await;
    assert_eq!(status, StatusCode::OK);
    let user: User = serde_json::from_value(body).unwrap();
    assert_eq!(user, fake_user(42));
    assert_eq!(user.id, 42);
    assert_ne!(fake_user(42), fake_user(43));
}

#[tokio::test]
async fn bad_and_unknown_ids_are_json_errors() {
    for (path, status, code) in [
        ("/users/abc", StatusCode::BAD_REQUEST, "invalid_id"),
        ("/users/0", StatusCode::BAD_REQUEST, "invalid_id"),
        ("/users/%F0%9F%92%A5", StatusCode::BAD_REQUEST, "invalid_id"),
        ("/users/10001", StatusCode::NOT_FOUND, "user_not_found"),
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
        .oneshot(Request::get("/users/1").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn a_wrong_method_is_a_json_405() {
    let response = app()
        .oneshot(Request::delete("/users/1").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed", "{body}");
}

#[tokio::test]
async fn healthz_answers() {
    let response = app()
        .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
