//! Plumbing shared by the three latency-lab services, so each service crate
//! holds only what makes it different: its routes and its data. The mocks'
//! simulated database is a crate of its own, `mock-db`.
//!
//! - [`startup`]: build the router, bind, serve, graceful shutdown; a
//!   process composes them with telemetry and the final flush.
//! - [`server`]: the accept loop behind `serve`, and the bounds it keeps
//!   ([`ServerLimits`]): timeouts, a connection cap, a bounded drain.
//! - [`readiness`]: the `<name> listening on http://<addr>` line, written
//!   and parsed in one place.
//! - [`error`]: the JSON error body and its status codes.
//! - [`user_id`]: the user ids the services understand, and the seed the
//!   mocks' fake data grows from.
//! - [`child`]: services as child processes — start, wait for readiness,
//!   stop with SIGTERM and a deadline — for `latency-lab up` and the tests.
//! - [`cli`]: flags every service accepts.
//! - `allocator` (feature `jemalloc`, on in the crates with a service
//!   binary): jemalloc, which gives memory freed after a burst back.
//! - [`signals`]: the signals that stop a service (Ctrl-C left to a parent
//!   that stops its children in order).

#[cfg(feature = "jemalloc")]
pub mod allocator;
pub mod child;
pub mod cli;
pub mod error;
pub mod readiness;
pub mod server;
pub mod signals;
pub mod startup;
pub mod user_id;

pub use error::ApiError;
pub use server::{serve_with, ServerLimits};
pub use startup::{bind, run, run_until, serve, ServeError, Service};
