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

use mock_db::mock::{Mock, MockName, MockSettings, SettingsError};

pub use data::fake_user;
pub use profile_contract::User;

/// Default simulated database latency.
pub const DEFAULT_LATENCY: Duration = Duration::from_millis(100);

/// Who this mock is: its baggage keys are `latency.user`, `fail.user`,
/// `hang.user`.
pub const NAME: MockName = MockName {
    service: "user-service",
    short: "user",
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
