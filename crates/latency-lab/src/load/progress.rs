//! A live view of a run on a terminal: requests done, the rate, the running
//! p99 and errors, so a stall shows while it happens. Hidden when stderr is
//! not a terminal (CI, a pipe): the report is the output, not the progress.

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::format_duration;
use super::record::Record;
use super::summary::{is_success, micros, new_histogram, quantile_us};

/// How often the message (p99, errors) is recomputed at most: a quantile
/// walks the histogram, and the eye reads no faster.
const MESSAGE_EVERY: Duration = Duration::from_millis(200);

/// The spinner keeps turning during a stall, when no record arrives.
const TICK: Duration = Duration::from_millis(100);

/// A live view of a run on a terminal: rate, running p99, errors.
pub struct Progress {
    bar: ProgressBar,
    latencies: Histogram<u64>,
    errors: u64,
    last_message: Option<Instant>,
}

impl Progress {
    /// `expected`: how many requests the run will send, when known (a bar);
    /// else a counter.
    pub fn new(expected: Option<u64>) -> Self {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Self::with_target(expected, target)
    }

    fn with_target(expected: Option<u64>, target: ProgressDrawTarget) -> Self {
        let template = match expected {
            Some(_) => {
                "{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} requests  {per_sec:.1}  {msg}"
            }
            None => "{spinner} {elapsed_precise} {pos} requests  {per_sec:.1}  {msg}",
        };
        let style = ProgressStyle::with_template(template)
            .expect("a valid progress template")
            .progress_chars("█▌ ");
        let bar = ProgressBar::with_draw_target(expected, target).with_style(style);
        if !bar.is_hidden() {
            bar.enable_steady_tick(TICK);
        }
        Progress {
            bar,
            latencies: new_histogram(),
            errors: 0,
            last_message: None,
        }
    }

    /// Counts one finished request.
    pub fn record(&mut self, record: &Record) {
        self.latencies.saturating_record(micros(record.latency));
        if !is_success(&record.outcome) {
            self.errors += 1;
        }
        self.bar.inc(1);
        let now = Instant::now();
        if self
            .last_message
            .is_none_or(|last| now.duration_since(last) >= MESSAGE_EVERY)
        {
            self.last_message = Some(now);
            self.bar.set_message(status(&self.latencies, self.errors));
        }
    }

    /// Clears the bar (the report follows).
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// `p99 212.0 ms  errors 3`.
fn status(latencies: &Histogram<u64>, errors: u64) -> String {
    if latencies.is_empty() {
        return String::new();
    }
    let p99 = Duration::from_micros(quantile_us(latencies, 0.99));
    format!("p99 {}  errors {errors}", format_duration(p99))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::summary::fixtures;

    #[test]
    fn counts_and_shows_the_running_p99() {
        let run = fixtures::open_single();
        let mut progress = Progress::with_target(Some(1000), ProgressDrawTarget::hidden());
        for record in &run.records[..100] {
            progress.record(record);
        }
        assert_eq!(progress.bar.position(), 100);
        assert_eq!(progress.bar.length(), Some(1000));
        // The first record sets the message at once; later ones wait their turn.
        assert!(
            progress.bar.message().starts_with("p99 "),
            "{}",
            progress.bar.message()
        );
        assert_eq!(progress.errors, 1); // request 5 was a 503
        progress.finish();
        assert!(progress.bar.is_finished());
    }

    #[test]
    fn the_status_names_p99_and_errors() {
        let mut latencies = new_histogram();
        assert_eq!(status(&latencies, 0), "");
        for ms in 1..=100u64 {
            latencies.record(ms * 1000).unwrap();
        }
        assert_eq!(status(&latencies, 3), "p99 99.0 ms  errors 3");
    }

    #[test]
    fn quiet_when_stderr_is_not_a_terminal() {
        // Under `cargo test` stderr is captured or piped, not a terminal.
        if std::io::stderr().is_terminal() {
            return;
        }
        let progress = Progress::new(None);
        assert!(progress.bar.is_hidden());
        progress.finish();
    }
}
