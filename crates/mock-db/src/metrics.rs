//! The simulated database's metrics, named and shaped by the database
//! semantic conventions, so a dashboard built for a real database client
//! reads them unchanged:
//!
//! | instrument | unit | attributes |
//! | --- | --- | --- |
//! | `db.client.operation.duration` | `s` | `db.system.name` (`other_sql`), `db.operation.name`, `db.collection.name`, `error.type` on a failure |
//! | `db.client.connection.count` | `{connection}` | `db.client.connection.pool.name`, `db.client.connection.state` (`idle`, `used`) |
//! | `db.client.connection.max` | `{connection}` | `db.client.connection.pool.name` |
//! | `db.client.connection.pending_requests` | `{request}` | `db.client.connection.pool.name` |
//! | `db.client.connection.wait_time` | `s` | `db.client.connection.pool.name` |
//!
//! The pool name is the mock's built-in service name (`order-service`), the
//! low-cardinality handle the conventions require. The pool instruments exist
//! only with `--db-pool-size` (without it there is no pool to describe).
//! Every instrument is created on first use (a mock is built before
//! telemetry is initialised), so a pool's series appear with its first
//! request.
//! `error.type` is the mock's error code (`injected_fault`,
//! `shutting_down`), or `abandoned` when the client gave up mid-query.
//! Durations use the suite's histogram boundaries
//! (`telemetry::metrics::DURATION_BOUNDARIES`).

use std::time::Duration;

use opentelemetry::metrics::{Histogram, UpDownCounter};
use opentelemetry::KeyValue;

use crate::simulated::SimulatedQuery;

pub const DB_SYSTEM_NAME: &str = "db.system.name";
pub const POOL_NAME: &str = "db.client.connection.pool.name";
pub const CONNECTION_STATE: &str = "db.client.connection.state";

/// `db.client.operation.duration`, shared by every query of a mock.
#[derive(Debug, Clone)]
pub(crate) struct QueryMetrics {
    duration: Histogram<f64>,
}

impl QueryMetrics {
    /// From the global meter: create after telemetry is initialised.
    pub(crate) fn new() -> Self {
        Self {
            duration: telemetry::metrics::duration_histogram(
                &telemetry::metrics::meter(),
                "db.client.operation.duration",
                "Duration of database client operations.",
            ),
        }
    }

    pub(crate) fn record(
        &self,
        query: &SimulatedQuery,
        elapsed: Duration,
        error_type: Option<&str>,
    ) {
        let mut attributes = vec![
            KeyValue::new(DB_SYSTEM_NAME, SimulatedQuery::SYSTEM),
            KeyValue::new("db.operation.name", query.operation),
            KeyValue::new("db.collection.name", query.collection),
        ];
        if let Some(error_type) = error_type {
            attributes.push(KeyValue::new("error.type", error_type.to_owned()));
        }
        self.duration.record(elapsed.as_secs_f64(), &attributes);
    }
}

/// The connection pool's instruments, with its name attached.
#[derive(Debug, Clone)]
pub(crate) struct PoolMetrics {
    count: UpDownCounter<i64>,
    pending: UpDownCounter<i64>,
    wait_time: Histogram<f64>,
    pool: KeyValue,
    idle: [KeyValue; 2],
    used: [KeyValue; 2],
}

impl PoolMetrics {
    /// From the global meter; records the pool's size and its `size` idle
    /// connections at once, so `used / max` is defined from the start.
    pub(crate) fn new(pool_name: &'static str, size: usize) -> Self {
        let meter = telemetry::metrics::meter();
        let pool = KeyValue::new(POOL_NAME, pool_name);
        let state = |s: &'static str| [pool.clone(), KeyValue::new(CONNECTION_STATE, s)];
        let metrics = Self {
            count: meter
                .i64_up_down_counter("db.client.connection.count")
                .with_unit("{connection}")
                .with_description(
                    "The number of connections that are currently in state described by the state attribute.",
                )
                .build(),
            pending: meter
                .i64_up_down_counter("db.client.connection.pending_requests")
                .with_unit("{request}")
                .with_description("The number of current pending requests for an open connection.")
                .build(),
            wait_time: telemetry::metrics::duration_histogram(
                &meter,
                "db.client.connection.wait_time",
                "The time it took to obtain an open connection from the pool.",
            ),
            idle: state("idle"),
            used: state("used"),
            pool,
        };
        meter
            .i64_up_down_counter("db.client.connection.max")
            .with_unit("{connection}")
            .with_description("The maximum number of open connections allowed.")
            .build()
            .add(size as i64, std::slice::from_ref(&metrics.pool));
        metrics.count.add(size as i64, &metrics.idle);
        metrics
    }

    /// A request starts waiting for a connection (`+1`), or stops (`-1`).
    pub(crate) fn pending(&self, delta: i64) {
        self.pending.add(delta, std::slice::from_ref(&self.pool));
    }

    /// A connection was handed out after `waited`.
    pub(crate) fn acquired(&self, waited: Duration) {
        self.wait_time
            .record(waited.as_secs_f64(), std::slice::from_ref(&self.pool));
        self.count.add(-1, &self.idle);
        self.count.add(1, &self.used);
    }

    /// A connection went back to the pool.
    pub(crate) fn released(&self) {
        self.count.add(-1, &self.used);
        self.count.add(1, &self.idle);
    }
}
