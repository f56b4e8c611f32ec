//! Latency models, faults, the connection pool and the limit, configured by
//! flags and exercised in process (baggage overrides need the propagated
//! OpenTelemetry context, so they are tested through the real processes in
//! `crates/latency-lab/tests/integration/mock_faults.rs`).

use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use clap::Parser;
use http_body_util::BodyExt;
use mock_db::latency::{FaultRates, Probability};
use mock_db::mock::{Mock, MockSettings, SettingsError};
use mock_service::cli::Args;
use mock_service::{router, UserService, USER_SERVICE};
use tower::ServiceExt;

fn settings(latency: &str) -> MockSettings {
    MockSettings {
        latency: latency.parse().unwrap(),
        faults: FaultRates::default(),
        db_pool_size: None,
        max_delay: Duration::from_secs(30),
    }
}

async fn get(app: axum::Router) -> (StatusCode, serde_json::Value) {
    let response = app
        .oneshot(Request::get("/users/7").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn an_error_rate_of_one_fails_every_lookup_after_its_delay() {
    let mock = USER_SERVICE
        .mock(MockSettings {
            faults: FaultRates {
                error: Probability::ALWAYS,
                hang: Probability::NEVER,
            },
            ..settings("80ms")
        })
        .unwrap();
    for _ in 0..3 {
        let started = Instant::now();
        let (status, body) = get(router(&USER_SERVICE, mock.clone())).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["error"]["code"], "injected_fault", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("user-service") && message.contains("--error-rate 1"),
            "{message}"
        );
        assert!(started.elapsed() >= Duration::from_millis(80));
    }
}

#[tokio::test]
async fn a_hang_waits_until_the_service_shuts_down() {
    let mock = USER_SERVICE
        .mock(MockSettings {
            faults: FaultRates {
                error: Probability::NEVER,
                hang: Probability::ALWAYS,
            },
            ..settings("1ms")
        })
        .unwrap();
    let shutdown = mock.shutdown_token();
    let request = tokio::spawn(get(router(&USER_SERVICE, mock)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!request.is_finished(), "a hung request does not answer");
    shutdown.cancel();
    let (status, body) = tokio::time::timeout(Duration::from_secs(5), request)
        .await
        .expect("shutdown releases the hang")
        .unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], "shutting_down", "{body}");
}

#[tokio::test]
async fn a_hang_is_bounded_by_the_max_delay() {
    let mock = USER_SERVICE
        .mock(MockSettings {
            faults: FaultRates {
                error: Probability::NEVER,
                hang: Probability::ALWAYS,
            },
            max_delay: Duration::from_millis(200),
            ..settings("1ms")
        })
        .unwrap();
    let started = Instant::now();
    let (status, body) =
        tokio::time::timeout(Duration::from_secs(10), get(router(&USER_SERVICE, mock)))
            .await
            .expect("the hang ends at --max-delay");
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], "injected_fault", "{body}");
}

#[tokio::test]
async fn a_pool_of_one_serialises_lookups() {
    let mock = USER_SERVICE
        .mock(MockSettings {
            db_pool_size: NonZeroUsize::new(1),
            ..settings("100ms")
        })
        .unwrap();
    let started = Instant::now();
    let answers = futures_join(mock, 3).await;
    assert!(answers.iter().all(|s| *s == StatusCode::OK), "{answers:?}");
    // One connection: the three 100 ms lookups run one after the other.
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn without_a_pool_lookups_overlap() {
    let mock = USER_SERVICE.mock(settings("300ms")).unwrap();
    let started = Instant::now();
    let answers = futures_join(mock, 3).await;
    assert!(answers.iter().all(|s| *s == StatusCode::OK), "{answers:?}");
    // Ordering, not a tight bound: well under the 900 ms of a queue.
    assert!(
        started.elapsed() < Duration::from_millis(850),
        "{:?}",
        started.elapsed()
    );
}

async fn futures_join(mock: Mock, n: usize) -> Vec<StatusCode> {
    let tasks: Vec<_> = (0..n)
        .map(|_| tokio::spawn(get(router(&USER_SERVICE, mock.clone()))))
        .collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap().0);
    }
    out
}

#[test]
fn a_latency_above_the_limit_is_refused_at_start() {
    let err = USER_SERVICE
        .mock(MockSettings {
            max_delay: Duration::from_secs(1),
            ..settings("uniform(100ms,2s)")
        })
        .unwrap_err();
    assert!(matches!(err, SettingsError::AboveMaxDelay { .. }), "{err}");
    assert!(err.to_string().contains("--max-delay 1s"), "{err}");
    // The default limit is 30 s.
    assert!(USER_SERVICE
        .mock(settings("100ms+spike(p=0.001,31s)"))
        .is_err());
    assert!(USER_SERVICE
        .mock(settings("100ms+spike(p=0.001,29s)"))
        .is_ok());
}

#[test]
fn flags_take_specs_and_rates_and_explain_bad_ones() {
    let args = Args::<UserService>::try_parse_from([
        "user-service",
        "--latency",
        "lognormal(median=80ms,p99=900ms)+spike(p=0.01,1s)",
        "--error-rate",
        "0.02",
        "--hang-rate",
        "0.001",
        "--db-pool-size",
        "4",
        "--max-delay",
        "10s",
    ])
    .unwrap();
    assert_eq!(
        args.flags.latency.to_string(),
        "lognormal(median=80ms,p99=900ms)+spike(p=0.01,1s)"
    );
    assert_eq!(args.flags.error_rate.get(), 0.02);
    assert_eq!(args.flags.db_pool_size, NonZeroUsize::new(4));
    // Plain durations, as before, still work.
    let args = Args::<UserService>::try_parse_from(["user-service", "--latency", "1.5s"]).unwrap();
    assert_eq!(args.flags.latency.to_string(), "1500ms");
    assert!(args.flags.db_pool_size.is_none(), "unlimited by default");

    for (flag, value, says) in [
        ("--latency", "gamma(1,2)", "accepted forms"),
        ("--error-rate", "2", "between 0 and 1"),
        ("--db-pool-size", "0", "zero"),
    ] {
        let err = Args::<UserService>::try_parse_from(["user-service", flag, value])
            .unwrap_err()
            .to_string();
        assert!(err.contains(says), "{flag} {value}: {err}");
    }
}
