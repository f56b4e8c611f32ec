//! `GET /user-profile/{id}`: the fan-out, in three modes, with the
//! remedies the request asks for (its query: [`crate::query`]; the remedies:
//! [`crate::resilience`]). The id and the query are checked before any call
//! ([`crate::user_id`]): a request refused as malformed calls nobody.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::header::HeaderName;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use profile_contract::{Order, User};
use serde::{Deserialize, Serialize};

use crate::downstream::{Downstream, Timed};
use crate::query::{ProfileQuery, RequestSettings};
use crate::resilience::fallback;
use crate::server_timing::{self, Metric};
use crate::user_id::UserId;
use crate::{AggregatorError, Config, Mode};

/// The answer: both halves of the profile and where the time went.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProfileResponse {
    pub user: User,
    /// `null` only in a degraded answer (see `degraded`).
    pub orders: Option<Vec<Order>>,
    /// The parts left out because their dependency failed and the request
    /// allowed a fallback (`["orders"]`); absent when complete.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub degraded: Vec<String>,
    pub mode: Mode,
    /// The trace this request belongs to, to paste into Jaeger's search.
    pub trace_id: Option<String>,
    pub timing: Timing,
}

/// Milliseconds, as measured by the aggregator around each call.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Timing {
    pub user_ms: f64,
    pub orders_ms: f64,
    pub total_ms: f64,
}

#[derive(Clone)]
pub(crate) struct AppState(Arc<Inner>);

struct Inner {
    users: Downstream,
    orders: Downstream,
    /// What a request gets unless its query says otherwise.
    defaults: RequestSettings,
    /// Whether `--max-in-flight` was given, so `?bulkhead=on` can work.
    bulkhead_available: bool,
}

impl AppState {
    pub(crate) fn new(config: Config) -> Result<Self, AggregatorError> {
        // One client for both dependencies: one connection pool, reused.
        let client = telemetry::traced_client_with_pool(config.pool)?;
        let defaults = RequestSettings::defaults(&config);
        let remedies = &config.remedies;
        Ok(Self(Arc::new(Inner {
            users: Downstream::new(
                "user-service",
                config.users.base_url,
                client.clone(),
                remedies,
            ),
            orders: Downstream::new("order-service", config.orders.base_url, client, remedies),
            defaults,
            bulkhead_available: remedies.max_in_flight.is_some(),
        })))
    }

    /// The query laid over this aggregator's defaults.
    fn settings(&self, query: ProfileQuery) -> Result<RequestSettings, AggregatorError> {
        Ok(query.over(&self.0.defaults, self.0.bulkhead_available)?)
    }

    async fn fetch_user(
        &self,
        id: UserId,
        settings: &RequestSettings,
    ) -> Result<Timed<User>, AggregatorError> {
        let id = id.to_string();
        self.0
            .users
            .get_json(
                &["users", &id],
                "/users/{id}",
                &settings.remedies,
                settings.user_timeout,
            )
            .await
    }

    /// The orders, or — when the request allows a fallback and the order
    /// service failed — `None`, with the failure noted on the SERVER span.
    async fn fetch_orders(
        &self,
        id: UserId,
        settings: &RequestSettings,
    ) -> Result<Timed<Option<Vec<Order>>>, AggregatorError> {
        let started = Instant::now();
        let id = id.to_string();
        match self
            .0
            .orders
            .get_json::<Vec<Order>>(
                &["users", &id, "orders"],
                "/users/{id}/orders",
                &settings.remedies,
                settings.order_timeout,
            )
            .await
        {
            Ok(timed) => Ok(Timed {
                value: Some(timed.value),
                elapsed: timed.elapsed,
            }),
            Err(error) if settings.remedies.fallback && error.failure().allows_fallback() => {
                fallback::record("orders", &error, &self.0.orders.metrics);
                Ok(Timed {
                    value: None,
                    elapsed: started.elapsed(),
                })
            }
            Err(error) => Err(error),
        }
    }
}

pub(crate) fn routes(state: AppState) -> Router {
    Router::new()
        .route("/user-profile/{id}", get(get_profile))
        .with_state(state)
}

type Fetched = (Timed<User>, Timed<Option<Vec<Order>>>);

async fn get_profile(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: ProfileQuery,
) -> Result<Response, AggregatorError> {
    // At the edge, before any fan-out: a malformed id calls nobody.
    let id = UserId::parse(&id)?;
    let settings = state.settings(query)?;
    let mode = settings.mode;

    let started = Instant::now();
    let (user, orders) = match mode {
        Mode::Sequential => sequential(&state, id, &settings).await?,
        Mode::Concurrent => concurrent(&state, id, &settings).await?,
        Mode::Unlinked => unlinked(&state, id, settings).await?,
    };
    let total = started.elapsed();

    let degraded = match orders.value {
        Some(_) => Vec::new(),
        None => vec!["orders".to_owned()],
    };
    let body = ProfileResponse {
        user: user.value,
        orders: orders.value,
        degraded,
        mode,
        trace_id: telemetry::current_trace_id(),
        timing: Timing {
            user_ms: millis(user.elapsed),
            orders_ms: millis(orders.elapsed),
            total_ms: millis(total),
        },
    };
    let timing = server_timing::header_value(&[
        Metric {
            name: "user",
            description: "user-service",
            duration: user.elapsed,
        },
        Metric {
            name: "orders",
            description: "order-service",
            duration: orders.elapsed,
        },
        Metric {
            name: "total",
            description: "profile-aggregator",
            duration: total,
        },
    ]);
    let mut response = Json(body).into_response();
    if let Ok(value) = HeaderValue::from_str(&timing) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("server-timing"), value);
    }
    Ok(response)
}

/// One call, then the other: the request waits for the sum.
async fn sequential(
    state: &AppState,
    id: UserId,
    settings: &RequestSettings,
) -> Result<Fetched, AggregatorError> {
    let user = state.fetch_user(id, settings).await?;
    let orders = state.fetch_orders(id, settings).await?;
    Ok((user, orders))
}

/// Both calls polled together on this task: the request waits for the
/// slower one. No thread, no spawn — the futures run inside the request's
/// span, so both CLIENT spans are children of the SERVER span. The first
/// error cancels the other call (an orders failure with a fallback is not
/// an error here).
async fn concurrent(
    state: &AppState,
    id: UserId,
    settings: &RequestSettings,
) -> Result<Fetched, AggregatorError> {
    tokio::try_join!(
        state.fetch_user(id, settings),
        state.fetch_orders(id, settings)
    )
}

/// The classic mistake, kept on purpose for teaching: work moved to spawned
/// tasks without the current span (no `.instrument(Span::current())`), so
/// each downstream call starts a trace of its own and the request's trace
/// shows a server span with nothing under it.
async fn unlinked(
    state: &AppState,
    id: UserId,
    settings: RequestSettings,
) -> Result<Fetched, AggregatorError> {
    let s = state.clone();
    let user = tokio::spawn(async move { s.fetch_user(id, &settings).await });
    let s = state.clone();
    let orders = tokio::spawn(async move { s.fetch_orders(id, &settings).await });
    let (user, orders) = tokio::join!(user, orders);
    let joined = |e: tokio::task::JoinError| AggregatorError::Internal(e.to_string());
    Ok((user.map_err(joined)??, orders.map_err(joined)??))
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use url::Url;

    use crate::config::Dependency;
    use crate::{router, Config, Mode, TraceContextValidation};

    /// A base URL nothing listens on: any call made there fails (502).
    fn dead_dependency() -> Dependency {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        Dependency {
            base_url: Url::parse(&format!("http://127.0.0.1:{port}")).unwrap(),
            timeout: std::time::Duration::from_secs(2),
        }
    }

    #[tokio::test]
    async fn a_malformed_id_is_refused_before_any_call() {
        let config = Config {
            users: dead_dependency(),
            orders: dead_dependency(),
            default_mode: Mode::Sequential,
            tracecontext_validation: TraceContextValidation::Off,
            remedies: Default::default(),
            pool: Default::default(),
        };
        let listener = service_kit::startup::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = router(config).unwrap();
        tokio::spawn(service_kit::startup::serve(
            listener,
            app,
            std::future::pending(),
        ));
        let client = reqwest::Client::new();
        for mode in Mode::ALL {
            for id in ["abc", "0", "-1"] {
                let response = client
                    .get(format!("{base}/user-profile/{id}?mode={mode}"))
                    .send()
                    .await
                    .unwrap();
                // A call to the dead user service would have been a 502.
                assert_eq!(response.status(), 400, "{id} {mode}");
                let body: serde_json::Value = response.json().await.unwrap();
                assert_eq!(body["error"]["code"], "invalid_request", "{body}");
                assert_eq!(
                    body["error"]["message"],
                    format!("user id must be a positive integer, got {id:?}")
                );
            }
            // A well-formed id is asked for: the dead dependency shows.
            let response = client
                .get(format!("{base}/user-profile/99999?mode={mode}"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 502, "{mode}");
        }
    }
}
