//! Mock order service.
//!
//! `GET /users/{id}/orders` answers with a deterministic list of fake orders
//! after a configurable simulated database wait (200 ms by default: the slow
//! dependency of the story, the one that dominates a sequential fan-out).

pub mod cli;
mod data;
mod routes;

use std::time::Duration;

pub use data::Order;

/// Default simulated database latency.
pub const DEFAULT_LATENCY: Duration = Duration::from_millis(200);

#[derive(Debug, Clone)]
pub struct Config {
    /// How long every lookup waits inside its `db.query` span.
    pub latency: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            latency: DEFAULT_LATENCY,
        }
    }
}

/// The service's routes, traced, with `/healthz`.
pub fn router(config: Config) -> axum::Router {
    service_kit::startup::finish(routes::routes(config))
}
