//! The per-endpoint latency table of `up`: rate, errors, p50/p90/p99 and max
//! of every service's endpoints, computed from the
//! `http.server.request.duration` histograms the services export (not from
//! `up`'s own stopwatch: what a dashboard would show), and, for the worst
//! p99, one trace from that bucket.
//!
//! * [`buckets`]: percentiles from histogram buckets.
//! * [`table`]: the rows and their rendering.
//! * [`exemplar`]: a trace from a bucket.
//! * this module: when the table is printed, and printing it.

mod buckets;
mod exemplar;
mod table;

use std::time::Duration;

use otlp_receiver::{MetricStore, RunningReceiver};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::time::{Interval, MissedTickBehavior};
use trace_view::TraceId;

use super::view::TraceView;

/// The instrument the table reads.
pub(super) const DURATION_METRIC: &str = "http.server.request.duration";

/// The service whose requests `up` itself sends.
const AGGREGATOR: &str = "profile-aggregator";

/// What asks for the table while `up` follows traces: every
/// `--stats-every`, and SIGUSR1 (`kill -USR1 <pid of up>`).
pub(super) struct Triggers {
    every: Option<Interval>,
    usr1: Signal,
}

impl Triggers {
    /// Registers SIGUSR1 at once, so a signal sent any time after start-up
    /// is kept for the follow loop instead of killing `up` (the default).
    pub(super) fn install(every: Option<Duration>) -> std::io::Result<Triggers> {
        let every = every.map(|period| {
            let mut interval =
                tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
            interval
        });
        Ok(Triggers {
            every,
            usr1: signal(SignalKind::user_defined1())?,
        })
    }

    /// Resolves at the next request for the table; says which it was.
    pub(super) async fn next(&mut self) -> &'static str {
        let tick = async {
            match self.every.as_mut() {
                Some(interval) => {
                    interval.tick().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tick => "every --stats-every",
            _ = self.usr1.recv() => "on SIGUSR1",
        }
    }
}

/// Total requests the aggregator's exported histograms count so far.
fn aggregator_requests(metrics: &MetricStore) -> u64 {
    metrics
        .histograms(DURATION_METRIC)
        .iter()
        .filter(|p| p.origin.service_name == AGGREGATOR)
        .map(|p| p.count)
        .sum()
}

/// Waits (at most `timeout`) until the aggregator's exported histograms count
/// `sent` requests: the services export every few seconds, so right after a
/// load the last requests are not in yet. `false` when they did not arrive.
pub(crate) async fn wait_for_requests(
    receiver: &RunningReceiver,
    sent: u64,
    timeout: Duration,
) -> bool {
    receiver
        .metrics()
        .wait_for(timeout, |metrics| {
            (aggregator_requests(metrics) >= sent).then_some(())
        })
        .await
        .is_ok()
}

/// The per-endpoint table as `print` shows it, without the exemplar line.
pub(crate) fn table_text(receiver: &RunningReceiver, when: &str) -> Option<String> {
    table_of(receiver.metrics(), when)
}

/// [`table_text`] from a metric store (the interactive view holds one).
pub(crate) fn table_of(metrics: &otlp_receiver::MetricStore, when: &str) -> Option<String> {
    let rows = table::rows(&metrics.histograms(DURATION_METRIC));
    (!rows.is_empty()).then(|| table::render(&rows, when))
}

/// A quantile (seconds) of `service`'s busiest endpoint, from the
/// `http.server.request.duration` histograms it exported: what the table
/// prints, for a scenario's claim.
pub(crate) fn endpoint_quantile(receiver: &RunningReceiver, service: &str, q: f64) -> Option<f64> {
    let points = receiver.metrics().histograms(DURATION_METRIC);
    table::rows(&points)
        .into_iter()
        .filter(|row| row.service == service)
        .max_by_key(|row| row.requests)?
        .quantile(q)
        .map(|quantile| quantile.seconds)
}

/// Prints the table, the footer, and the worst p99's trace (saved, so the
/// printed path exists); one line instead when no metric has arrived.
pub(super) fn print(receiver: &RunningReceiver, view: &mut TraceView, when: &str) {
    if view.on_screen() {
        return; // the interactive view's `t` shows the table; printing would tear its screen
    }
    let points = receiver.metrics().histograms(DURATION_METRIC);
    let rows = table::rows(&points);
    if rows.is_empty() {
        println!(
            "endpoints ({when}): no {DURATION_METRIC} metric arrived; the services exported none (is OTEL_METRICS_EXPORTER=none or OTEL_SDK_DISABLED=true set?)"
        );
        println!();
        return;
    }
    print!("{}", table::render(&rows, when));
    if let Some((row, p99)) = table::worst_p99(&rows) {
        let what = format!(
            "  worst p99: {} {} {} ({}, in the bucket {})",
            row.service,
            row.method,
            row.route_label(),
            table::seconds(p99.seconds),
            table::bucket_label(&p99.bucket)
        );
        let spans = receiver.store().spans();
        match exemplar::pick(&spans, row, &p99.bucket) {
            Some(span) => {
                let trace = receiver.store().trace(&span.trace_id);
                let saved = view.save(&trace);
                let id = TraceId::parse(&span.trace_id)
                    .map(|id| id.to_string())
                    .unwrap_or_else(|_| span.trace_id.clone());
                match saved {
                    Some(path) => println!(
                        "{what}: trace {id} ({}, {}), saved as {}",
                        span.name,
                        crate::load::format_duration(span.duration()),
                        path.display()
                    ),
                    None => println!("{what}: trace {id}"),
                }
            }
            None => println!("{what}: no span of it in that bucket is in memory"),
        }
    }
    println!();
}
