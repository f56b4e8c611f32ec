//! Plumbing shared by the three latency-lab services, so each service crate
//! holds only what makes it different: its routes and its data.
//!
//! - [`startup`]: telemetry, bind, serve, graceful shutdown, flush.
//! - [`error`]: the JSON error body and its status codes.
//! - [`simulated`]: the mocks' "database" wait, as an INTERNAL span.
//! - [`cli`]: flags every service accepts.

pub mod cli;
pub mod error;
pub mod simulated;
pub mod startup;
pub mod user_id;

pub use error::ApiError;
pub use startup::{serve, ServeError, Service};
