//! The mocks' simulated database wait.
//!
//! The wait happens inside its own INTERNAL span named like a database call
//! (`db.query SELECT users`), so on the trace timeline it shows as a bar of
//! its own under the service's SERVER span: the request is not "slow code",
//! it is *waiting* — the point the suite exists to make.

use std::time::Duration;

use tracing::Instrument;

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
    /// Waits `delay` inside an INTERNAL span, then returns.
    pub async fn run(self, delay: Duration) {
        let span = tracing::info_span!(
            "db.query",
            otel.name = %format!("db.query {} {}", self.operation, self.collection),
            otel.kind = "internal",
            db.system.name = "other_sql",
            db.operation.name = self.operation,
            db.collection.name = self.collection,
            db.query.text = self.text,
            latency_lab.simulated_delay_ms = delay.as_secs_f64() * 1000.0,
        );
        tokio::time::sleep(delay).instrument(span).await;
    }
}
