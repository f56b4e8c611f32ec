//! Mock user service.
//!
//! `GET /users/{id}` answers with a deterministic fake user after a
//! configurable simulated database wait (100 ms by default, as in the story
//! this suite grew from). It is a mock by design: what matters is the time it
//! makes its callers wait, and that the wait is visible on the trace.

pub mod cli;
mod data;
mod routes;

use std::time::Duration;

pub use data::User;

/// Default simulated database latency.
pub const DEFAULT_LATENCY: Duration = Duration::from_millis(100);

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
