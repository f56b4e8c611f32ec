//! The degraded answer: with `--fallback` (or `?fallback=true`), a failed
//! orders call gives the user with `orders: null` and `degraded:
//! ["orders"]`, status 200, instead of failing the whole request.
//!
//! Only the orders call has a fallback: a profile without its orders is
//! still worth showing, a profile without its user is not — so a failed
//! user call still fails the request. Any *failure* of the order service
//! qualifies (5xx, unreachable, timeout, unreadable answer, circuit open,
//! bulkhead full); a 4xx is an answer about the request, not a failure, and
//! passes through as before. The judgement is `crate::failure`'s, the same
//! the retries, the hedge and the breaker use.
//!
//! The SERVER span gets a `fallback.applied` event naming the dependency and
//! the cause, so a 200 that hides a failure is still visible in the trace,
//! and `latency_lab.fallback.applied` counts it (by `error.type`, the cause).

use super::metrics::RemedyMetrics;
use crate::AggregatorError;

/// The span event (and log line) that says the answer is degraded, and why,
/// and the count of degraded answers.
pub(crate) fn record(field: &str, error: &AggregatorError, metrics: &RemedyMetrics) {
    metrics.fallback_applied(error.code());
    tracing::warn!(
        dependency = error.dependency().unwrap_or_default(),
        fallback.field = field,
        fallback.cause = error.code(),
        error.message = %error,
        "fallback.applied"
    );
}
