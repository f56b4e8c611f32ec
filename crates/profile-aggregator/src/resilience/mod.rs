//! The remedies for tail latency and failing dependencies, each visible in
//! the trace, each off by default and switchable per request.
//!
//! | remedy | module | flag | what the trace shows |
//! | --- | --- | --- | --- |
//! | timeout | [`timeout`] | `--user-timeout`, `--order-timeout` | CLIENT span `error.type = timeout`, 504 |
//! | retry | [`retry`], [`budget`] | `--retry` | one CLIENT span per attempt with `http.request.resend_count`, `retry.backoff` spans, `retry.budget_exhausted` events |
//! | circuit breaker | [`breaker`] | `--breaker` | `breaker.state_change` / `breaker.rejected` events, 503 without a CLIENT span |
//! | hedge | [`hedge`] | `--hedge-after` | two CLIENT spans with `hedge = true`, the loser `cancelled = true` |
//! | bulkhead | [`bulkhead`] | `--max-in-flight` | a `bulkhead.wait` span before the call |
//! | fallback | [`fallback`] | `--fallback` | 200 with `degraded: ["orders"]`, a `fallback.applied` event |
//!
//! A request switches them with query parameters ([`crate::query`]). What
//! counts as a failure — what is retried, what the breaker counts, what
//! makes a hedge leg give up, what the fallback may replace — is decided in
//! one place, `crate::failure`.
//!
//! They compose per dependency in one place, `Downstream::get_json`, always
//! in this order, outermost first:
//!
//! ```text
//! bulkhead → breaker → hedge → retry → attempt (with the timeout)
//! ```
//!
//! - **Bulkhead outermost**: it bounds how many *calls* to a dependency are
//!   in flight, whatever each call then does; a call rejected by the
//!   breaker gives its permit back at once.
//! - **Breaker outside hedge and retry**: it judges the outcome of the
//!   whole call, after retries — a blip that a retry fixed is not a failure
//!   of the dependency — and, once open, it stops the call before any
//!   attempt, so retries and hedges can never hammer an open circuit.
//! - **Hedge outside retry**: each of the two racing legs is a full call
//!   with its own retries; the hedge is about a *slow* answer, the retry
//!   about a *failed* one. A hedge costs a token of the retry budget, as a
//!   retry does: it is extra load of the same kind.
//! - **Timeout innermost**: it bounds one attempt, so a timed-out attempt
//!   is a failure the retry can act on (and caps the bulkhead wait, which
//!   the first attempt's timeout then pays for).
//! - **Fallback** sits above all of this, in the profile handler: it
//!   decides what the *request* answers once the orders call has failed
//!   with everything else already tried.
//!
//! What each remedy did is also counted, per dependency, in the
//! `latency_lab.*` metrics ([`metrics`]).
//!
//! Every wait is bounded: attempts by the timeout, retries by their number
//! and the budget, the bulkhead wait by the timeout, the hedge by the
//! attempts it races.

pub mod breaker;
pub mod budget;
pub mod bulkhead;
pub mod fallback;
pub mod hedge;
pub(crate) mod metrics;
pub mod retry;
pub mod timeout;

use std::num::NonZeroUsize;
use std::time::Duration;

use breaker::BreakerConfig;
use budget::BudgetConfig;
use retry::{RetryConfig, RetryJitter};

/// The longest timeout or hedge delay a flag or a query may ask for.
pub const MAX_DELAY: Duration = Duration::from_secs(60);

/// The shortest timeout or hedge delay a flag or a query may ask for. No
/// HTTP call is answered in less, so anything below can only be a slip of
/// the unit (`200ns` or `200us` for `200ms`) that would fail or hedge every
/// call, and a timeout below it would be reported as "within 0 ms".
pub const MIN_DELAY: Duration = Duration::from_millis(1);

/// Remedies switched on or off: the flags' defaults, and what one request
/// gets once its query is laid over them ([`crate::query::RequestSettings`]).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Switches {
    pub retry: bool,
    pub breaker: bool,
    pub hedge_after: hedge::HedgeAfter,
    /// Use the bulkhead (only meaningful with `--max-in-flight`).
    pub bulkhead: bool,
    /// Answer without the orders when the order service fails.
    pub fallback: bool,
}

/// The remedies' settings, from the flags. Each dependency gets its own
/// breaker, budget, bulkhead and latency window built from them.
#[derive(Debug, Clone, PartialEq)]
pub struct RemedyConfig {
    /// What a request gets unless its query says otherwise.
    pub defaults: Switches,
    pub retry: RetryConfig,
    pub budget: BudgetConfig,
    pub breaker: BreakerConfig,
    /// The bulkhead's size; `None`: no bulkhead.
    pub max_in_flight: Option<NonZeroUsize>,
}

impl Default for RemedyConfig {
    /// Everything off; the tuning values are the flags' defaults.
    fn default() -> Self {
        Self {
            defaults: Switches::default(),
            retry: RetryConfig {
                max_retries: 3,
                backoff: Duration::from_millis(50),
                max_backoff: Duration::from_secs(1),
                jitter: RetryJitter::Full,
            },
            budget: BudgetConfig {
                ratio: 0.1,
                min_per_window: 3,
                window: Duration::from_secs(10),
            },
            breaker: BreakerConfig {
                failure_ratio: 0.5,
                window: 20,
                min_calls: 5,
                open_for: Duration::from_secs(5),
            },
            max_in_flight: None,
        }
    }
}
