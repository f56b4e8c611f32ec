//! The mocks' simulated database: what makes a mock slow, skewed, failing,
//! hanging or congested, and the span that shows it.
//!
//! Apart from `service-kit` (the plumbing every service shares) so that a
//! change to a latency model touches only the mocks, and the aggregator
//! never links a random-number generator it does not use.
//!
//! - [`simulated`]: the "database" query, as an INTERNAL `db.query` span.
//! - [`latency`]: latency specs (`lognormal(median=80ms,p99=900ms)`, …),
//!   sampling, fault rates.
//! - [`mock`]: what a mock does per request — baggage overrides, limits, the
//!   connection pool, injected faults.
//! - [`timer`]: the query's wait, precise to the kernel's timer slack
//!   rather than Tokio's millisecond.
//! - [`metrics`]: `db.client.operation.duration` and the pool's
//!   `db.client.connection.*`, per the database semantic conventions.

pub mod latency;
pub mod metrics;
pub mod mock;
pub mod simulated;
pub mod timer;
