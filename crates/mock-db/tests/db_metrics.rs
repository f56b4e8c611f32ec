//! The simulated database's metrics as a mock exports them: names, units,
//! attributes, counts; the pool's gauges while requests queue and after.
//! One test binary, one global in-memory meter provider; each test uses a
//! pool name of its own.

use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use mock_db::latency::{FaultRates, Probability};
use mock_db::mock::{Mock, MockName, MockSettings};
use mock_db::simulated::SimulatedQuery;
use telemetry::metrics::testing::global_in_memory;
use telemetry::metrics::DURATION_BOUNDARIES;

const QUERY: SimulatedQuery = SimulatedQuery {
    operation: "SELECT",
    collection: "orders",
    text: "SELECT * FROM orders WHERE user_id = ?",
};

fn name(service: &'static str) -> MockName {
    MockName {
        service,
        short: "orders",
    }
}

/// Its own collection, so the counts below are exact.
const COUNTED: SimulatedQuery = SimulatedQuery {
    operation: "SELECT",
    collection: "counted",
    text: "SELECT * FROM counted WHERE id = ?",
};

const OPERATION: &str = "db.client.operation.duration";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_of_one_shows_used_idle_pending_and_waits() {
    let metrics = global_in_memory();
    let pool = "pool-of-one";
    let settings = MockSettings {
        db_pool_size: NonZeroUsize::new(1),
        ..MockSettings::fixed(Duration::from_millis(300))
    };
    let mock = Mock::seeded(name(pool), settings, 1).unwrap();
    let on_pool = [("db.client.connection.pool.name", pool)];

    let idle = [on_pool[0], ("db.client.connection.state", "idle")];
    let used = [on_pool[0], ("db.client.connection.state", "used")];

    let queries: Vec<_> = (0..3)
        .map(|_| {
            let mock = mock.clone();
            tokio::spawn(async move { mock.query(QUERY).await })
        })
        .collect();
    // While one query holds the only connection, the other two queue.
    let deadline = Instant::now() + Duration::from_secs(10);
    let during = loop {
        let s = metrics.collect();
        if s.total("db.client.connection.pending_requests", &on_pool) == 2.0 {
            break s;
        }
        assert!(Instant::now() < deadline, "never saw two queued requests");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(during.total("db.client.connection.max", &on_pool), 1.0);
    assert_eq!(
        during.unit("db.client.connection.max").as_deref(),
        Some("{connection}")
    );
    assert_eq!(during.total("db.client.connection.count", &used), 1.0);
    assert_eq!(during.total("db.client.connection.count", &idle), 0.0);
    assert_eq!(
        during
            .unit("db.client.connection.pending_requests")
            .as_deref(),
        Some("{request}")
    );
    for q in queries {
        q.await.unwrap().unwrap();
    }

    let after = metrics.collect();
    assert_eq!(after.total("db.client.connection.count", &used), 0.0);
    assert_eq!(after.total("db.client.connection.count", &idle), 1.0);
    assert_eq!(
        after.total("db.client.connection.pending_requests", &on_pool),
        0.0
    );
    let waits = after.points_with("db.client.connection.wait_time", &on_pool);
    assert_eq!(waits.len(), 1);
    assert_eq!(waits[0].count, 3, "one wait per query");
    assert_eq!(waits[0].bounds, DURATION_BOUNDARIES);
    assert!(
        waits[0].value >= 0.3 + 0.6 - 0.05,
        "the second waited one query, the third two: {}",
        waits[0].value
    );
    assert_eq!(
        after.unit("db.client.connection.wait_time").as_deref(),
        Some("s")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operation_duration_by_operation_and_collection_with_error_type_on_a_fault() {
    let metrics = global_in_memory();
    let ok = Mock::fixed(name("op-ok"), Duration::from_millis(5));
    for _ in 0..4 {
        ok.query(COUNTED).await.unwrap();
    }
    let failing = Mock::seeded(
        name("op-failing"),
        MockSettings {
            faults: FaultRates {
                error: Probability::ALWAYS,
                hang: Probability::NEVER,
            },
            ..MockSettings::fixed(Duration::from_millis(5))
        },
        2,
    )
    .unwrap();
    assert!(failing.query(COUNTED).await.is_err());
    // A client that gives up mid-query: the query is dropped, still counted.
    let slow = Mock::fixed(name("op-slow"), Duration::from_secs(10));
    assert!(
        tokio::time::timeout(Duration::from_millis(50), slow.query(COUNTED))
            .await
            .is_err()
    );

    let s = metrics.collect();
    assert_eq!(s.unit(OPERATION).as_deref(), Some("s"));
    let fine: Vec<_> = s
        .points_with(OPERATION, &[("db.collection.name", "counted")])
        .into_iter()
        .filter(|p| p.attr("error.type").is_none())
        .collect();
    assert_eq!(fine.len(), 1, "{fine:?}");
    assert_eq!(fine[0].count, 4);
    assert_eq!(
        fine[0].keys(),
        ["db.collection.name", "db.operation.name", "db.system.name"]
    );
    assert!(fine[0].has(&[
        ("db.system.name", "other_sql"),
        ("db.operation.name", "SELECT"),
        ("db.collection.name", "counted"),
    ]));
    assert_eq!(fine[0].bounds, DURATION_BOUNDARIES);
    assert_eq!(s.total(OPERATION, &[("error.type", "injected_fault")]), 1.0);
    assert_eq!(s.total(OPERATION, &[("error.type", "abandoned")]), 1.0);
    // No pool configured, no pool series for these mocks.
    assert!(s
        .points_with(
            "db.client.connection.max",
            &[("db.client.connection.pool.name", "op-ok")]
        )
        .is_empty());
}
