//! What the remedies did, as metrics: how often each one acted, per
//! dependency, so a dashboard shows the retries climbing before the p99
//! does, the breaker open, the bulkhead shedding.
//!
//! The semantic conventions name no instrument for these, so they carry the
//! suite's own prefix, `latency_lab.`, and the attribute `dependency` — the
//! dependency's service name (`user-service`, `order-service`), the same
//! value the remedies' span events carry, so a series leads to the traces
//! that explain it.
//!
//! | instrument | kind, unit | attributes | counts |
//! | --- | --- | --- | --- |
//! | `latency_lab.retry.attempts` | counter, `{attempt}` | `dependency`, `outcome` (`success`, `failure`) | each resend (not first attempts), by how it ended |
//! | `latency_lab.retry.budget_exhausted` | counter, `{call}` | `dependency`, `retry.kind` (`retry`, `hedge`) | a retry or hedge the budget refused |
//! | `latency_lab.hedge.sent` | counter, `{request}` | `dependency` | second legs sent |
//! | `latency_lab.hedge.won` | counter, `{request}` | `dependency` | calls the second leg answered |
//! | `latency_lab.breaker.state` | gauge | `dependency` | 0 closed, 1 open, 2 half-open, as of the last call |
//! | `latency_lab.breaker.rejections` | counter, `{call}` | `dependency` | calls failed fast by the breaker |
//! | `latency_lab.bulkhead.rejections` | counter, `{call}` | `dependency` | calls refused by a full bulkhead |
//! | `latency_lab.fallback.applied` | counter, `{request}` | `dependency`, `error.type` (the failure's code) | degraded answers |
//!
//! Through the collector's Prometheus exporter a counter gains `_total`
//! (`latency_lab_retry_attempts_total`) and the gauge keeps its name
//! (`latency_lab_breaker_state`).

use opentelemetry::metrics::{Counter, Gauge, Meter};
use opentelemetry::KeyValue;

use super::breaker::BreakerState;

/// One dependency's remedy instruments, its `dependency` attribute attached.
#[derive(Debug, Clone)]
pub(crate) struct RemedyMetrics {
    dependency: KeyValue,
    retry_attempts: Counter<u64>,
    budget_exhausted: Counter<u64>,
    hedge_sent: Counter<u64>,
    hedge_won: Counter<u64>,
    breaker_state: Gauge<i64>,
    breaker_rejections: Counter<u64>,
    bulkhead_rejections: Counter<u64>,
    fallback_applied: Counter<u64>,
}

impl RemedyMetrics {
    /// The instruments, from `meter`, for `dependency`; the breaker starts
    /// closed.
    pub(crate) fn new(meter: &Meter, dependency: &'static str) -> Self {
        let counter = |name: &'static str, unit: &'static str, description: &'static str| {
            meter
                .u64_counter(name)
                .with_unit(unit)
                .with_description(description)
                .build()
        };
        let metrics = Self {
            dependency: KeyValue::new("dependency", dependency),
            retry_attempts: counter(
                "latency_lab.retry.attempts",
                "{attempt}",
                "Resends of a failed call, by outcome.",
            ),
            budget_exhausted: counter(
                "latency_lab.retry.budget_exhausted",
                "{call}",
                "Retries or hedges the retry budget refused.",
            ),
            hedge_sent: counter(
                "latency_lab.hedge.sent",
                "{request}",
                "Second legs sent by the hedge.",
            ),
            hedge_won: counter(
                "latency_lab.hedge.won",
                "{request}",
                "Calls answered by the hedge's second leg.",
            ),
            breaker_state: meter
                .i64_gauge("latency_lab.breaker.state")
                .with_description("Circuit breaker state: 0 closed, 1 open, 2 half-open.")
                .build(),
            breaker_rejections: counter(
                "latency_lab.breaker.rejections",
                "{call}",
                "Calls failed fast by an open circuit breaker.",
            ),
            bulkhead_rejections: counter(
                "latency_lab.bulkhead.rejections",
                "{call}",
                "Calls refused because the bulkhead stayed full.",
            ),
            fallback_applied: counter(
                "latency_lab.fallback.applied",
                "{request}",
                "Degraded answers given instead of failing the request.",
            ),
        };
        metrics.breaker_state(BreakerState::Closed);
        metrics
    }

    fn just_dependency(&self) -> &[KeyValue] {
        std::slice::from_ref(&self.dependency)
    }

    fn with(&self, key: &'static str, value: &'static str) -> [KeyValue; 2] {
        [self.dependency.clone(), KeyValue::new(key, value)]
    }

    pub(crate) fn retry_attempt(&self, succeeded: bool) {
        let outcome = if succeeded { "success" } else { "failure" };
        self.retry_attempts.add(1, &self.with("outcome", outcome));
    }

    pub(crate) fn budget_exhausted(&self, kind: &'static str) {
        self.budget_exhausted.add(1, &self.with("retry.kind", kind));
    }

    pub(crate) fn hedge_sent(&self) {
        self.hedge_sent.add(1, self.just_dependency());
    }

    pub(crate) fn hedge_won(&self) {
        self.hedge_won.add(1, self.just_dependency());
    }

    pub(crate) fn breaker_state(&self, state: BreakerState) {
        let value = match state {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        };
        self.breaker_state.record(value, self.just_dependency());
    }

    pub(crate) fn breaker_rejected(&self) {
        self.breaker_rejections.add(1, self.just_dependency());
    }

    pub(crate) fn bulkhead_rejected(&self) {
        self.bulkhead_rejections.add(1, self.just_dependency());
    }

    pub(crate) fn fallback_applied(&self, cause: &'static str) {
        self.fallback_applied
            .add(1, &self.with("error.type", cause));
    }
}
