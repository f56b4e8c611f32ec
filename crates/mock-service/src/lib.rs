//! The two mock services, `user-service` and `order-service`.
//!
//! Each answers one route with deterministic fake data (the wire types are
//! `profile-contract`'s) after a simulated database wait (`mock-db`). They
//! are mocks by design: what matters is the time they make their callers
//! wait, and that the wait is visible on the trace.
//!
//! Everything that differs between them is data, one [`MockSpec`] each
//! ([`USER_SERVICE`], [`ORDER_SERVICE`]); the shell — [`cli`], start-up,
//! [`router`] — is written once and tested for both.

pub mod cli;
mod fake_orders;
mod fake_users;
mod routes;
mod spec;

pub use fake_orders::fake_orders;
pub use fake_users::fake_user;
pub use profile_contract::{Order, User};
pub use spec::{MockKind, MockSpec, OrderService, UserService, ALL, ORDER_SERVICE, USER_SERVICE};

/// The mock's routes, traced, with `/healthz`. `mock` decides how every
/// lookup behaves inside its `db.query` span: latency model, faults,
/// connection pool, limit.
pub fn router(spec: &'static MockSpec, mock: mock_db::mock::Mock) -> axum::Router {
    service_kit::startup::finish(routes::routes(spec, mock))
}
