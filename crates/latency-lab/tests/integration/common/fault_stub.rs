//! A scripted stand-in for a downstream service, for the remedies' tests:
//! request number N (counted from 0, across all routes) gets step N of the
//! script — a status after a delay — and every request is recorded with its
//! arrival time and `traceparent`.
//!
//! ```text
//! Script::always(Step::status(500))                       always 500
//! Script::first(2, Step::status(503)).then(Step::ok())    fail twice, then succeed
//! Script::first(1, Step::ok().after(ms(1000))).then(Step::ok())   a slow first answer (hedging)
//! ```
//!
//! Connection refused is [`super::closed_port_url`]. Answers to `/users/{id}` and
//! `/users/{id}/orders` are valid user and orders JSON; failures are the
//! suite's JSON error body.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

/// What one request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub status: StatusCode,
    pub delay: Duration,
}

impl Step {
    /// 200 with a valid body, at once.
    pub fn ok() -> Self {
        Self::status(200)
    }

    /// This status, at once (200 gives a valid body, others an error body).
    pub fn status(code: u16) -> Self {
        Self {
            status: StatusCode::from_u16(code).expect("a valid status code"),
            delay: Duration::ZERO,
        }
    }

    /// The same answer, `delay` after the request arrived.
    pub fn after(self, delay: Duration) -> Self {
        Self { delay, ..self }
    }
}

/// Steps for the first requests, then one step for every later one.
#[derive(Debug, Clone)]
pub struct Script {
    steps: Vec<Step>,
    then: Step,
}

impl Script {
    pub fn always(step: Step) -> Self {
        Self {
            steps: Vec::new(),
            then: step,
        }
    }

    /// `step` for the first `k` requests; say what follows with [`Script::then`].
    pub fn first(k: usize, step: Step) -> Self {
        Self {
            steps: vec![step; k],
            then: Step::ok(),
        }
    }

    /// These steps in order, then [`Step::ok`] unless [`Script::then`] says otherwise.
    pub fn sequence(steps: impl IntoIterator<Item = Step>) -> Self {
        Self {
            steps: steps.into_iter().collect(),
            then: Step::ok(),
        }
    }

    pub fn then(mut self, step: Step) -> Self {
        self.then = step;
        self
    }

    fn step(&self, n: usize) -> Step {
        self.steps.get(n).copied().unwrap_or(self.then)
    }
}

/// One request as the stub saw it.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// Its number, from 0.
    pub n: usize,
    pub path: String,
    pub at: Instant,
    pub traceparent: Option<String>,
    pub step: Step,
    /// The stub sent its answer (false: still waiting, or the caller went
    /// away and the server dropped the handler).
    pub answered: bool,
}

#[derive(Clone)]
struct StubState {
    script: Arc<Script>,
    seen: Arc<Mutex<Vec<Arrival>>>,
}

#[derive(Clone)]
pub struct FaultStub {
    pub url: String,
    seen: Arc<Mutex<Vec<Arrival>>>,
}

impl FaultStub {
    pub async fn start(script: Script) -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = StubState {
            script: Arc::new(script),
            seen: seen.clone(),
        };
        let app = Router::new()
            .route("/users/{id}", get(user))
            .route("/users/{id}/orders", get(orders))
            .with_state(state);
        let url = super::serve_on_loopback(app).await;
        Self { url, seen }
    }

    /// Every request so far, in arrival order.
    pub fn arrivals(&self) -> Vec<Arrival> {
        self.seen.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

impl StubState {
    /// Records the request, waits its step's delay, and gives the failure
    /// to answer, if the step is one.
    async fn play(&self, request: Request) -> Option<Response> {
        let at = Instant::now();
        let (n, step) = {
            let mut seen = self.seen.lock().unwrap();
            let n = seen.len();
            let step = self.script.step(n);
            seen.push(Arrival {
                n,
                path: request.uri().path().to_owned(),
                at,
                traceparent: request
                    .headers()
                    .get("traceparent")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
                step,
                answered: false,
            });
            (n, step)
        };
        tokio::time::sleep(step.delay).await;
        self.seen.lock().unwrap()[n].answered = true;
        (step.status != StatusCode::OK).then(|| {
            let body = serde_json::json!({"error": {
                "code": "scripted",
                "message": format!("scripted {} for request {n}", step.status.as_u16()),
            }});
            (step.status, Json(body)).into_response()
        })
    }
}

async fn user(State(s): State<StubState>, request: Request) -> Response {
    if let Some(failure) = s.play(request).await {
        return failure;
    }
    Json(serde_json::json!({"id": 1, "name": "Stub User", "email": "stub@example.com", "member_since": 2020}))
        .into_response()
}

async fn orders(State(s): State<StubState>, request: Request) -> Response {
    if let Some(failure) = s.play(request).await {
        return failure;
    }
    Json(serde_json::json!([])).into_response()
}
