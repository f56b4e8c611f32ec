//! The profile aggregator.
//!
//! `GET /user-profile/{id}` fetches a user from the user service and their
//! orders from the order service, then answers with both and the time each
//! call took. The `mode` decides how the two calls are orchestrated — the
//! lever the whole suite is about:
//!
//! - `sequential`: one after the other; the request waits for the sum.
//! - `concurrent`: both at once on the same task (`tokio::try_join!`); the
//!   request waits for the slower one.
//! - `unlinked`: both at once on spawned tasks that do *not* carry the
//!   current span — the classic instrumentation mistake: the downstream
//!   work falls out of the request's trace.
//!
//! Each call can be wrapped in remedies for tail latency and failing
//! dependencies — timeouts, retries with a budget, a circuit breaker,
//! hedged requests, a bulkhead, a degraded answer — all off by default,
//! switched on by flags or per request (the typed query: [`query`]), and
//! each visible in the trace: see [`resilience`].

pub mod cli;
pub mod config;
mod downstream;
mod error;
mod failure;
mod profile;
pub mod query;
pub mod resilience;
mod server_timing;
mod user_id;
mod validation;

pub use config::{Config, Mode, TraceContextValidation};
pub use error::AggregatorError;
pub use profile::{ProfileResponse, Timing};

/// The aggregator's routes, traced, with `/healthz` (and
/// `POST /verify-tracecontext` when [`Config::tracecontext_validation`]
/// asks for it).
pub fn router(config: Config) -> Result<axum::Router, AggregatorError> {
    let validation = config.tracecontext_validation;
    let state = profile::AppState::new(config)?;
    let mut routes = profile::routes(state);
    if validation != TraceContextValidation::Off {
        routes = routes.merge(validation::routes(validation)?);
    }
    Ok(service_kit::startup::finish(routes))
}
