//! Mock order service.
//!
//! `GET /users/{id}/orders` answers with a deterministic list of fake orders
//! after a configurable simulated database wait (200 ms by default: the slow
//! dependency of the story, the one that dominates a sequential fan-out).

pub mod cli;
mod data;
mod routes;

use std::time::Duration;

use mock_db::mock::{Mock, MockName, MockSettings, SettingsError};

pub use data::fake_orders;
pub use profile_contract::Order;

/// Default simulated database latency.
pub const DEFAULT_LATENCY: Duration = Duration::from_millis(200);

/// Who this mock is: its baggage keys are `latency.orders`, `fail.orders`,
/// `hang.orders`.
pub const NAME: MockName = MockName {
    service: "order-service",
    short: "orders",
};

#[derive(Debug, Clone)]
pub struct Config {
    /// How every lookup behaves inside its `db.query` span: latency model,
    /// faults, connection pool, limit.
    pub mock: Mock,
}

impl Config {
    /// Checks the settings (a latency above `max_delay` is refused).
    pub fn new(settings: MockSettings) -> Result<Self, SettingsError> {
        Ok(Self {
            mock: Mock::new(NAME, settings)?,
        })
    }

    /// A constant latency, no faults, no pool.
    pub fn fixed(latency: Duration) -> Self {
        Self {
            mock: Mock::fixed(NAME, latency),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::fixed(DEFAULT_LATENCY)
    }
}

/// The service's routes, traced, with `/healthz`.
pub fn router(config: Config) -> axum::Router {
    service_kit::startup::finish(routes::routes(config))
}
