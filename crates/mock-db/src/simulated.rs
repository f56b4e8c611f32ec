//! The mocks' simulated database query.
//!
//! The wait happens inside its own INTERNAL span named like a database call
//! (`db.query SELECT users`), so on the trace timeline it shows as a bar of
//! its own under the service's SERVER span: the request is not "slow code",
//! it is *waiting* — the point the suite exists to make. How long it waits,
//! and whether it fails or hangs, is decided by [`crate::mock::Mock`].

use tracing::field::Empty;

/// What the mock pretends to ask its database.
#[derive(Debug, Clone, Copy)]
pub struct SimulatedQuery {
    /// `SELECT`, …: `db.operation.name`.
    pub operation: &'static str,
    /// The table: `db.collection.name`.
    pub collection: &'static str,
    /// The statement, with placeholders only: `db.query.text`.
    pub text: &'static str,
}

impl SimulatedQuery {
    /// `db.system.name` of the span and the metrics: a SQL database the
    /// conventions have no name for.
    pub const SYSTEM: &'static str = "other_sql";

    /// The `db.query …` INTERNAL span, with the database semantic-convention
    /// attributes set and the `latency_lab.*` ones left for the mock to
    /// record once it has decided what this request gets:
    ///
    /// | attribute | meaning |
    /// | --- | --- |
    /// | `latency_lab.latency_spec` | the spec the delay was drawn from |
    /// | `latency_lab.delay_ms` | the delay drawn (absent for a hang) |
    /// | `latency_lab.spiked` | a `+spike(…)` fired |
    /// | `latency_lab.delay_clamped` | the draw exceeded `--max-delay` and was cut to it |
    /// | `latency_lab.fault` | `none`, `error` or `hang` |
    /// | `latency_lab.override_source` | `config` (flags, environment) or `baggage` |
    /// | `latency_lab.baggage_overrides` | the baggage keys obeyed, e.g. `latency.orders` |
    pub(crate) fn span(&self) -> tracing::Span {
        tracing::info_span!(
            "db.query",
            otel.name = %format!("db.query {} {}", self.operation, self.collection),
            otel.kind = "internal",
            otel.status_code = Empty,
            error.type = Empty,
            db.system.name = Self::SYSTEM,
            db.operation.name = self.operation,
            db.collection.name = self.collection,
            db.query.text = self.text,
            latency_lab.latency_spec = Empty,
            latency_lab.delay_ms = Empty,
            latency_lab.spiked = Empty,
            latency_lab.delay_clamped = Empty,
            latency_lab.fault = Empty,
            latency_lab.override_source = Empty,
            latency_lab.baggage_overrides = Empty,
        )
    }
}
