//! A recording stand-in for a downstream service: answers like the user or
//! order service (or with a chosen error status) and keeps every request it
//! gets — method, path, every header line, body and arrival time — so tests
//! can check the exact bytes that crossed the hop.
//!
//! Besides the user/order routes it accepts `POST /callback/{id}`, the shape
//! of the W3C Trace Context harness's callbacks, answering JSON `null`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

/// One request as the stub received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    /// Every header line (`HeaderMap::get_all` gives repeated ones in order).
    pub headers: HeaderMap,
    pub body: Bytes,
    /// When the request arrived (before the stub's delay).
    pub at: Instant,
}

#[derive(Clone)]
pub struct Stub {
    pub url: String,
    seen: Arc<Mutex<Vec<Recorded>>>,
}

#[derive(Clone)]
struct StubState {
    status: StatusCode,
    delay: Duration,
    seen: Arc<Mutex<Vec<Recorded>>>,
}

impl Stub {
    /// Starts a stub answering `status` (200 gives valid user/orders JSON).
    pub async fn start(status: StatusCode) -> Self {
        Self::start_with_delay(status, Duration::ZERO).await
    }

    /// Like [`Stub::start`], answering each request `delay` after it arrived.
    pub async fn start_with_delay(status: StatusCode, delay: Duration) -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = StubState {
            status,
            delay,
            seen: seen.clone(),
        };
        let app = Router::new()
            .route("/users/{id}", get(user))
            .route("/users/{id}/orders", get(orders))
            .route("/callback/{id}", post(callback))
            .with_state(state);
        let url = super::serve_on_loopback(app).await;
        Self { url, seen }
    }

    /// The headers of every request so far, in arrival order.
    pub fn requests(&self) -> Vec<HeaderMap> {
        self.calls().into_iter().map(|r| r.headers).collect()
    }

    /// Every request so far, in arrival order.
    pub fn calls(&self) -> Vec<Recorded> {
        self.seen.lock().unwrap().clone()
    }
}

impl StubState {
    /// Records the request, waits the configured delay, and says whether to
    /// answer normally (`None`) or with the configured failure.
    async fn record(&self, request: Request) -> Option<Response> {
        let at = Instant::now();
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX)
            .await
            .unwrap_or_default();
        self.seen.lock().unwrap().push(Recorded {
            method: parts.method,
            path: parts.uri.path().to_owned(),
            headers: parts.headers,
            body,
            at,
        });
        tokio::time::sleep(self.delay).await;
        (self.status != StatusCode::OK).then(|| (self.status, "stub failure").into_response())
    }
}

async fn user(State(s): State<StubState>, request: Request) -> Response {
    if let Some(failure) = s.record(request).await {
        return failure;
    }
    Json(serde_json::json!({"id": 1, "name": "Stub User", "email": "stub@example.com", "member_since": 2020}))
        .into_response()
}

async fn orders(State(s): State<StubState>, request: Request) -> Response {
    if let Some(failure) = s.record(request).await {
        return failure;
    }
    Json(serde_json::json!([])).into_response()
}

async fn callback(State(s): State<StubState>, request: Request) -> Response {
    if let Some(failure) = s.record(request).await {
        return failure;
    }
    Json(serde_json::Value::Null).into_response()
}
