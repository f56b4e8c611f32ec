//! A recording stand-in for a downstream service: answers like the user or
//! order service (or with a chosen error status) and keeps the headers of
//! every request, so tests can check the exact bytes that crossed the hop.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

#[derive(Clone)]
pub struct Stub {
    pub url: String,
    seen: Arc<Mutex<Vec<HeaderMap>>>,
}

#[derive(Clone)]
struct StubState {
    status: StatusCode,
    seen: Arc<Mutex<Vec<HeaderMap>>>,
}

impl Stub {
    /// Starts a stub answering `status` (200 gives valid user/orders JSON).
    pub async fn start(status: StatusCode) -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = StubState {
            status,
            seen: seen.clone(),
        };
        let app = Router::new()
            .route("/users/{id}", get(user))
            .route("/users/{id}/orders", get(orders))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, seen }
    }

    pub fn requests(&self) -> Vec<HeaderMap> {
        self.seen.lock().unwrap().clone()
    }
}

async fn user(State(s): State<StubState>, headers: HeaderMap) -> impl IntoResponse {
    s.seen.lock().unwrap().push(headers);
    if s.status != StatusCode::OK {
        return (s.status, "stub failure").into_response();
    }
    Json(serde_json::json!({"id": 1, "name": "Stub User", "email": "stub@example.com", "member_since": 2020}))
        .into_response()
}

async fn orders(State(s): State<StubState>, headers: HeaderMap) -> impl IntoResponse {
    s.seen.lock().unwrap().push(headers);
    if s.status != StatusCode::OK {
        return (s.status, "stub failure").into_response();
    }
    Json(serde_json::json!([])).into_response()
}
