//! The aggregator's metrics for a known sequence of requests, against two
//! scripted in-test dependencies: the SERVER histogram per route, one CLIENT
//! sample per attempt (retries included), and the `latency_lab.*` remedy
//! counters — retries by outcome, a breaker that opens and rejects, a
//! fallback, a bulkhead rejection, a hedge that wins. One test binary, one global in-memory
//! meter provider installed before the aggregator is built.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use profile_aggregator::config::Dependency;
use profile_aggregator::resilience::breaker::BreakerConfig;
use profile_aggregator::resilience::budget::BudgetConfig;
use profile_aggregator::resilience::retry::{RetryConfig, RetryJitter};
use profile_aggregator::resilience::RemedyConfig;
use profile_aggregator::{Config, Mode, TraceContextValidation};
use profile_contract::{Order, User};
use telemetry::metrics::testing::global_in_memory;
use tokio::sync::Notify;

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

/// Users: id 42 is slow (and says when it arrived), the rest answer at once.
fn users(arrived: Arc<Notify>) -> Router {
    Router::new()
        .route(
            "/users/{id}",
            get(
                |State(arrived): State<Arc<Notify>>, Path(id): Path<u64>| async move {
                    if id == 42 {
                        arrived.notify_one();
                        tokio::time::sleep(Duration::from_millis(1500)).await;
                    }
                    Json(User {
                        id,
                        name: "Ada".into(),
                        email: "ada@example.test".into(),
                        member_since: 2020,
                    })
                },
            ),
        )
        .with_state(arrived)
}

/// How the order service answers its n-th call.
#[derive(Clone, Copy)]
enum Answer {
    Fail,
    Fast,
    Slow,
}

/// Orders: answers each call (1-based) as `script` says.
fn orders(calls: Arc<AtomicUsize>, script: fn(usize) -> Answer) -> Router {
    Router::new().route(
        "/users/{id}/orders",
        get(move |Path(id): Path<u64>| {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                match script(n) {
                    Answer::Fail => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
                    Answer::Slow => tokio::time::sleep(Duration::from_millis(1500)).await,
                    Answer::Fast => {}
                }
                Json(vec![Order {
                    order_id: "o-1".into(),
                    user_id: id,
                    item: "book".into(),
                    quantity: 1,
                    total_cents: 1200,
                }])
                .into_response()
            }
        }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remedies_and_attempts_are_counted_per_dependency() {
    let metrics = global_in_memory();
    let arrived = Arc::new(Notify::new());
    let order_calls = Arc::new(AtomicUsize::new(0));
    let users_url = serve(users(arrived.clone())).await;
    // Calls 1–2 fail (the first request retries through them), call 3
    // succeeds, calls 4–6 fail (the breaker's part), call 7 is slow and
    // call 8, its hedge, fast.
    let orders_url = serve(orders(order_calls.clone(), |n| match n {
        3 | 8 => Answer::Fast,
        7 => Answer::Slow,
        _ => Answer::Fail,
    }))
    .await;

    let remedies = RemedyConfig {
        retry: RetryConfig {
            max_retries: 3,
            backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(1),
            jitter: RetryJitter::None,
        },
        budget: BudgetConfig {
            ratio: 1.0,
            min_per_window: 100,
            window: Duration::from_secs(60),
        },
        breaker: BreakerConfig {
            failure_ratio: 0.5,
            window: 4,
            min_calls: 2,
            open_for: Duration::from_secs(60),
        },
        max_in_flight: NonZeroUsize::new(1),
        ..RemedyConfig::default()
    };
    let dependency = |url: &str| Dependency {
        base_url: url.parse().unwrap(),
        timeout: Duration::from_secs(5),
    };
    let router = profile_aggregator::router(Config {
        users: dependency(&users_url),
        orders: dependency(&orders_url),
        default_mode: Mode::Sequential,
        tracecontext_validation: TraceContextValidation::Off,
        remedies,
        pool: Default::default(),
    })
    .unwrap();
    let aggregator = serve(router).await;
    let http = reqwest::Client::new();
    let get = |query: &'static str, id: u32| {
        let http = http.clone();
        let url = format!("{aggregator}/user-profile/{id}?{query}");
        async move { http.get(url).send().await.unwrap().status().as_u16() }
    };

    // 1. Retries: 503, 503, then 200 — three attempts, two of them resends.
    assert_eq!(get("retry=on", 1).await, 200);
    // 2–3. The breaker judges two failed calls and opens ...
    assert_eq!(get("breaker=on", 2).await, 502);
    assert_eq!(get("breaker=on", 3).await, 502);
    // 4. ... and rejects the next without calling.
    assert_eq!(get("breaker=on", 4).await, 503);
    // 5. Rejected again, answered degraded by the fallback.
    assert_eq!(get("breaker=on&fallback=on", 5).await, 200);
    assert_eq!(
        order_calls.load(Ordering::SeqCst),
        5,
        "rejections call nobody"
    );
    // 6. The bulkhead (one call at a time): a slow user call holds it, a
    //    second request gives up waiting after its 100 ms timeout.
    let slow = tokio::spawn(get("bulkhead=on", 42));
    arrived.notified().await;
    assert_eq!(get("bulkhead=on&user_timeout=100ms", 6).await, 503);
    assert_eq!(slow.await.unwrap(), 502, "then its orders call fails");
    // 8. A hedge: the first orders call is slow, the second leg answers.
    assert_eq!(get("hedge_after=50ms", 8).await, 200);
    assert_eq!(order_calls.load(Ordering::SeqCst), 8);

    let s = metrics.collect();
    let users = [("dependency", "user-service")];
    let orders = [("dependency", "order-service")];

    // SERVER: one series per status for the one route, eight requests.
    let route = [("http.route", "/user-profile/{id}")];
    assert_eq!(s.total("http.server.request.duration", &route), 8.0);
    let by_status = |code: &str| {
        s.points_with("http.server.request.duration", &route)
            .iter()
            .filter(|p| {
                p.attr("http.response.status_code")
                    .is_some_and(|v| v.as_str() == code)
            })
            .map(|p| p.count)
            .sum::<u64>()
    };
    assert_eq!(
        (by_status("200"), by_status("502"), by_status("503")),
        (3, 3, 2)
    );
    assert_eq!(
        s.total(
            "http.server.request.duration",
            &[("http.route", "/user-profile/{id}"), ("error.type", "502")]
        ),
        3.0
    );

    // CLIENT: one sample per attempt — 3 for request 1, 1 each for 2, 3
    // and 42, two legs for the hedged one (the loser cancelled).
    let client = "http.client.request.duration";
    let order_attempts = [("url.template", "/users/{id}/orders")];
    assert_eq!(s.total(client, &order_attempts), 8.0);
    assert_eq!(
        s.total(
            client,
            &[
                ("url.template", "/users/{id}/orders"),
                ("error.type", "cancelled")
            ]
        ),
        1.0,
        "the losing leg"
    );
    assert_eq!(
        s.total(
            client,
            &[
                ("url.template", "/users/{id}/orders"),
                ("error.type", "503")
            ]
        ),
        5.0
    );
    // Users: requests 1–5, 8 and the slow 42; request 6 never called.
    assert_eq!(s.total(client, &[("url.template", "/users/{id}")]), 7.0);

    // Remedies.
    assert_eq!(
        s.total(
            "latency_lab.retry.attempts",
            &[orders[0], ("outcome", "failure")]
        ),
        1.0
    );
    assert_eq!(
        s.total(
            "latency_lab.retry.attempts",
            &[orders[0], ("outcome", "success")]
        ),
        1.0
    );
    assert_eq!(s.total("latency_lab.retry.attempts", &users), 0.0);
    assert_eq!(
        s.unit("latency_lab.retry.attempts").as_deref(),
        Some("{attempt}")
    );
    assert_eq!(s.total("latency_lab.breaker.rejections", &orders), 2.0);
    assert_eq!(s.total("latency_lab.breaker.state", &orders), 1.0, "open");
    assert_eq!(s.total("latency_lab.breaker.state", &users), 0.0, "closed");
    assert_eq!(
        s.total(
            "latency_lab.fallback.applied",
            &[orders[0], ("error.type", "circuit_open")]
        ),
        1.0
    );
    assert_eq!(s.total("latency_lab.bulkhead.rejections", &users), 1.0);
    assert_eq!(s.total("latency_lab.bulkhead.rejections", &orders), 0.0);
    assert_eq!(s.total("latency_lab.hedge.sent", &orders), 1.0);
    assert_eq!(s.total("latency_lab.hedge.won", &orders), 1.0);
    assert_eq!(s.total("latency_lab.hedge.sent", &users), 0.0);
    for name in [
        "latency_lab.retry.attempts",
        "latency_lab.breaker.rejections",
        "latency_lab.bulkhead.rejections",
        "latency_lab.fallback.applied",
    ] {
        for point in s.points(name) {
            assert!(point.attr("dependency").is_some(), "{name}: {point:?}");
        }
    }
}
