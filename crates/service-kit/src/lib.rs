//! Plumbing shared by the three latency-lab services, so each service crate
//! holds only what makes it different: its routes and its data.
//!
//! - [`startup`]: telemetry, bind, serve, graceful shutdown, flush.
//! - [`error`]: the JSON error body and its status codes.
//! - [`simulated`]: the mocks' "database" query, as an INTERNAL span.
//! - [`latency`]: latency specs (`lognormal(median=80ms,p99=900ms)`, …),
//!   sampling, fault rates.
//! - [`mock`]: what a mock does per request — baggage overrides, limits, the
//!   connection pool, injected faults.
//! - [`cli`]: flags every service accepts.

pub mod cli;
pub mod error;
pub mod latency;
pub mod mock;
pub mod simulated;
pub mod startup;
pub mod user_id;

pub use error::ApiError;
pub use startup::{serve, serve_mock, serve_until, ServeError, Service};
