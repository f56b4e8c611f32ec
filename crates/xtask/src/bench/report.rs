//! The benchmark's text: a table of medians per configuration and load,
//! the medians of the per-round ratios, and PASS or MISS for each target
//! of issue 15.

use std::fmt;
use std::path::Path;

use super::args::BenchArgs;
use super::configs::{self, Config};
use super::load::Pacing;

/// One measured run.
#[derive(Debug, Clone)]
pub struct Measurement {
    pub pacing: Pacing,
    /// Requests answered without error.
    pub completed: u64,
    pub errors: u64,
    pub achieved_per_s: f64,
    /// Aggregator utime + stime over the run, per completed request.
    pub cpu_per_request_us: f64,
    /// The load generator's own CPU over the run, in cores (1.0 = one core busy).
    pub load_cpu_share: f64,
    /// This process's CPU over the run (its OTLP receiver), in cores.
    pub receiver_cpu_share: f64,
    /// Latency above the dependencies' configured latency.
    pub p50_over_ms: f64,
    pub p99_over_ms: f64,
    pub p99_9_over_ms: f64,
    pub p99_9_ms: f64,
}

/// Spans of one session (warm-up and both runs).
#[derive(Debug, Clone)]
pub struct SpanCount {
    /// Arrived at the benchmark's OTLP receiver.
    pub received: u64,
    /// Exported, by the services' own count (`otel.sdk.processor.span.processed`
    /// without `error.type`); `None` when their metrics are off.
    pub sent: Option<u64>,
    /// Dropped, by the same count (with `error.type`).
    pub dropped: Option<u64>,
    /// Spans per request (calibrated with tracing on) × requests that got
    /// an HTTP answer (an error answer may make fewer spans);
    /// 0 when the configuration exports none.
    pub expected: u64,
    /// The mocks' `db.query` spans at p50 in the fixed-rate run, minus the configured latency.
    pub db_query_p50_over_ms: Option<f64>,
    /// The aggregator's client spans to the mocks at p50 minus the
    /// configured latency: the mocks' answer as their client sees it.
    pub client_p50_over_ms: Option<f64>,
}

/// Everything measured, printed by its `Display`.
#[derive(Debug, Clone)]
pub struct Report {
    pub rounds: u32,
    pub rate: u32,
    pub concurrency: u32,
    pub duration_ms: u128,
    pub mock_latency_ms: f64,
    pub binary: String,
    pub spans_per_request: u64,
    /// The header's note on `--env` and `--aggregator-only` (empty: none).
    pub setup: String,
    /// (round, index into [`configs::ALL`], run).
    pub measurements: Vec<(u32, usize, Measurement)>,
    pub spans: Vec<(u32, usize, SpanCount)>,
}

/// Export may cost at most this share of the aggregator's CPU per request.
const CPU_BUDGET: f64 = 0.05;
/// Export may change p99.9 by less than this share.
const TAIL_BUDGET: f64 = 0.10;
/// At p50 a mock's `db.query` span may exceed its configured delay by this
/// much (ms) …
const MOCK_QUERY_SLACK_MS: f64 = 0.5;
/// … and its answer, timed by its client, by this much.
const MOCK_ANSWER_SLACK_MS: f64 = 1.0;

impl Report {
    pub fn new(args: &BenchArgs, lab: &Path, spans_per_request: u64) -> Report {
        let build = build_of(lab);
        Report {
            rounds: args.rounds,
            rate: args.rate,
            concurrency: args.concurrency,
            duration_ms: args.duration.as_millis(),
            mock_latency_ms: args.mock_latency.as_secs_f64() * 1000.0,
            binary: build.to_owned(),
            spans_per_request,
            setup: setup_note(args),
            measurements: Vec::new(),
            spans: Vec::new(),
        }
    }

    fn runs(&self, config: usize, fixed: bool) -> impl Iterator<Item = (u32, &Measurement)> {
        self.measurements
            .iter()
            .filter(move |(_, c, m)| *c == config && matches!(m.pacing, Pacing::Fixed(_)) == fixed)
            .map(|(round, _, m)| (*round, m))
    }

    /// Median over rounds of `value` for one configuration and load.
    fn median_of(
        &self,
        config: usize,
        fixed: bool,
        value: impl Fn(&Measurement) -> f64,
    ) -> Option<f64> {
        let mut values: Vec<f64> = self.runs(config, fixed).map(|(_, m)| value(m)).collect();
        median(&mut values)
    }

    /// value(a) / value(b) over the rounds, paired by round: its median,
    /// and the smallest and largest round's (how far one round can be
    /// from another on this machine).
    pub fn ratio(
        &self,
        a: Config,
        b: Config,
        fixed: bool,
        value: impl Fn(&Measurement) -> f64,
    ) -> Ratio {
        let mut ratios = self.ratios(a, b, fixed, value);
        let range = ratios
            .iter()
            .copied()
            .reduce(f64::min)
            .zip(ratios.iter().copied().reduce(f64::max));
        Ratio {
            median: median(&mut ratios),
            range,
        }
    }

    /// value(a) / value(b) for each round both ran.
    fn ratios(
        &self,
        a: Config,
        b: Config,
        fixed: bool,
        value: impl Fn(&Measurement) -> f64,
    ) -> Vec<f64> {
        let (a, b) = (index(a), index(b));
        self.runs(a, fixed)
            .filter_map(|(round, ma)| {
                let (_, mb) = self.runs(b, fixed).find(|(r, _)| *r == round)?;
                let denominator = value(mb);
                (denominator > 0.0).then(|| value(ma) / denominator)
            })
            .collect()
    }

    /// Every session that should have exported its spans got all of them:
    /// as many as the services say they sent, none dropped; where their
    /// metrics are off, as many as the answered requests make.
    pub fn spans_complete(&self) -> bool {
        self.spans.iter().all(|(_, config, s)| {
            !configs::ALL[*config].exports_spans
                || match (s.sent, s.dropped) {
                    (Some(sent), Some(dropped)) => sent == s.received && dropped == 0,
                    _ => s.received == s.expected,
                }
        })
    }
}

/// What the run's header says beyond the defaults: `--env`'s variables and
/// `--aggregator-only`.
pub fn setup_note(args: &BenchArgs) -> String {
    let mut note = String::new();
    if !args.env.is_empty() {
        let env: Vec<String> = args
            .env
            .iter()
            .map(|e| format!("{}={}", e.key, e.value))
            .collect();
        note.push_str(&format!("; every service with {}", env.join(" ")));
    }
    if args.aggregator_only {
        note.push_str(
            "; configurations applied to the aggregator only (the mocks trace in every one)",
        );
    }
    note
}

/// "release" or "debug" from the binary's path under `target/`, else "given".
pub fn build_of(lab: &Path) -> &'static str {
    if lab.components().any(|c| c.as_os_str() == "release") {
        "release"
    } else if lab.components().any(|c| c.as_os_str() == "debug") {
        "debug"
    } else {
        "given"
    }
}

fn index(config: Config) -> usize {
    configs::ALL
        .iter()
        .position(|c| *c == config)
        .expect("a known configuration")
}

/// The median (mean of the middle two for an even count); sorts `values`.
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

/// One ratio over the rounds: see [`Report::ratio`].
#[derive(Debug, Clone, Copy)]
pub struct Ratio {
    pub median: Option<f64>,
    pub range: Option<(f64, f64)>,
}

fn ratio_text(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "n/a".to_owned(), |r| format!("{r:.3}×"))
}

fn range_text(range: Option<(f64, f64)>) -> String {
    range.map_or_else(String::new, |(lo, hi)| format!("{lo:.3}–{hi:.3}×"))
}

/// What a CPU-time verdict is worth: when some rounds fall on each side of
/// the budget, the median decides by a few rounds of a noisy machine, and
/// the instruction count is the measure to read.
fn noise_note(range: Option<(f64, f64)>, budget: f64) -> &'static str {
    match range {
        Some((lo, hi)) if lo - 1.0 <= budget && hi - 1.0 > budget => {
            "; rounds on both sides of the budget: noise-bound, read --instructions"
        }
        _ => "",
    }
}

fn verdict(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "PASS",
        Some(false) => "MISS",
        None => "MISS (not measured)",
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use configs::{METRICS_OFF, SAMPLING_OFF, SDK_DISABLED, TRACING_ON};
        writeln!(
            f,
            "bench: {} round(s) × {} configurations, interleaved; {} build; runs of {} ms; \
             mocks {} ms each (concurrent mode); fixed rate {}/s (open loop), saturating {} in flight (closed loop){}",
            self.rounds,
            configs::ALL.len(),
            self.binary,
            self.duration_ms,
            self.mock_latency_ms,
            self.rate,
            self.concurrency,
            self.setup
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "medians over rounds (latency above the {} ms dependencies):",
            self.mock_latency_ms
        )?;
        writeln!(
            f,
            "  {:<14} {:<11} {:>9} {:>12} {:>9} {:>9} {:>10} {:>7} {:>10} {:>22}",
            "config",
            "load",
            "req/s",
            "agg CPU/req",
            "p50+",
            "p99+",
            "p99.9+",
            "errors",
            "load CPU",
            "spans sent/recv/exp"
        )?;
        for (c, config) in configs::ALL.iter().enumerate() {
            let sessions: Vec<&SpanCount> = self
                .spans
                .iter()
                .filter(|(_, i, _)| *i == c)
                .map(|(_, _, s)| s)
                .collect();
            let received: u64 = sessions.iter().map(|s| s.received).sum();
            let expected: u64 = sessions.iter().map(|s| s.expected).sum();
            let sent = sessions
                .iter()
                .map(|s| s.sent)
                .sum::<Option<u64>>()
                .map_or_else(|| "-".to_owned(), |n| n.to_string());
            for fixed in [true, false] {
                let m =
                    |v: fn(&Measurement) -> f64| self.median_of(c, fixed, v).unwrap_or(f64::NAN);
                let errors: u64 = self.runs(c, fixed).map(|(_, m)| m.errors).sum();
                writeln!(
                    f,
                    "  {:<14} {:<11} {:>9.0} {:>9.0} µs {:>6.2} ms {:>6.2} ms {:>7.2} ms {:>7} {:>7.0} % {:>22}",
                    config.name,
                    if fixed { "fixed" } else { "saturating" },
                    m(|m| m.achieved_per_s),
                    m(|m| m.cpu_per_request_us),
                    m(|m| m.p50_over_ms),
                    m(|m| m.p99_over_ms),
                    m(|m| m.p99_9_over_ms),
                    errors,
                    m(|m| m.load_cpu_share * 100.0),
                    if fixed { format!("{sent}/{received}/{expected}") } else { String::new() },
                )?;
            }
        }
        writeln!(
            f,
            "  (agg CPU/req: the aggregator's utime+stime, all threads, per completed request; \
             load CPU: the load generator's own, % of one core; spans: all sessions incl. warm-up, \
             sent = the services' own otel.sdk.processor.span.processed count (- when metrics are off), \
             recv = arrived at the receiver, exp = {} per request × answered requests)",
            self.spans_per_request
        )?;
        writeln!(f)?;

        let cpu = |m: &Measurement| m.cpu_per_request_us;
        let tail = |m: &Measurement| m.p99_9_ms;
        // Export alone: both sides without metrics (the SDK-disabled row
        // has none), so the metrics' own cost is not counted twice.
        let cpu_fixed = self.ratio(METRICS_OFF, SDK_DISABLED, true, cpu);
        let cpu_saturating = self.ratio(METRICS_OFF, SDK_DISABLED, false, cpu);
        let tail_fixed = self.ratio(TRACING_ON, SDK_DISABLED, true, tail);
        let metrics_saturating = self.ratio(TRACING_ON, METRICS_OFF, false, cpu);
        writeln!(f, "medians of per-round ratios:")?;
        let p99_total = |m: &Measurement| m.p99_over_ms + self.mock_latency_ms;
        let throughput = |m: &Measurement| m.achieved_per_s;
        type Value<'v> = &'v dyn Fn(&Measurement) -> f64;
        let lines: [(&str, Config, Config, bool, Value); 11] = [
            (
                "CPU/req, metrics off ÷ SDK disabled, fixed rate",
                METRICS_OFF,
                SDK_DISABLED,
                true,
                &cpu,
            ),
            (
                "CPU/req, metrics off ÷ SDK disabled, saturating",
                METRICS_OFF,
                SDK_DISABLED,
                false,
                &cpu,
            ),
            (
                "CPU/req, tracing on ÷ SDK disabled, fixed rate",
                TRACING_ON,
                SDK_DISABLED,
                true,
                &cpu,
            ),
            (
                "CPU/req, tracing on ÷ SDK disabled, saturating",
                TRACING_ON,
                SDK_DISABLED,
                false,
                &cpu,
            ),
            (
                "CPU/req, sampling off ÷ SDK disabled, saturating",
                SAMPLING_OFF,
                SDK_DISABLED,
                false,
                &cpu,
            ),
            (
                "CPU/req, tracing on ÷ metrics off, fixed rate",
                TRACING_ON,
                METRICS_OFF,
                true,
                &cpu,
            ),
            (
                "CPU/req, tracing on ÷ metrics off, saturating",
                TRACING_ON,
                METRICS_OFF,
                false,
                &cpu,
            ),
            (
                "p99 (total), tracing on ÷ SDK disabled, fixed rate",
                TRACING_ON,
                SDK_DISABLED,
                true,
                &p99_total,
            ),
            (
                "p99.9 (total), tracing on ÷ SDK disabled, fixed rate",
                TRACING_ON,
                SDK_DISABLED,
                true,
                &tail,
            ),
            (
                "throughput, tracing on ÷ sampling off, saturating",
                TRACING_ON,
                SAMPLING_OFF,
                false,
                &throughput,
            ),
            (
                "throughput, tracing on ÷ SDK disabled, saturating",
                TRACING_ON,
                SDK_DISABLED,
                false,
                &throughput,
            ),
        ];
        for (name, a, b, fixed, value) in lines {
            let ratio = self.ratio(a, b, fixed, value);
            writeln!(
                f,
                "  {name:<55} {:>9}   rounds {}",
                ratio_text(ratio.median),
                range_text(ratio.range)
            )?;
        }
        writeln!(f)?;

        writeln!(f, "targets (issue 15):")?;
        let within = |r: Option<f64>, budget: f64| r.map(|r| r - 1.0 <= budget);
        writeln!(
            f,
            "  {}  export ≤ 5 % of aggregator CPU per request, fixed rate (metrics off ÷ SDK disabled: {}; rounds {}{})",
            verdict(within(cpu_fixed.median, CPU_BUDGET)),
            ratio_text(cpu_fixed.median),
            range_text(cpu_fixed.range),
            noise_note(cpu_fixed.range, CPU_BUDGET)
        )?;
        writeln!(
            f,
            "  {}  export ≤ 5 % of aggregator CPU per request, saturating (metrics off ÷ SDK disabled: {}; rounds {}{})",
            verdict(within(cpu_saturating.median, CPU_BUDGET)),
            ratio_text(cpu_saturating.median),
            range_text(cpu_saturating.range),
            noise_note(cpu_saturating.range, CPU_BUDGET)
        )?;
        writeln!(
            f,
            "  {}  export and metrics change p99.9 by < 10 %, fixed rate (tracing on ÷ SDK disabled: {}; rounds {})",
            verdict(tail_fixed.median.map(|r| (r - 1.0).abs() < TAIL_BUDGET)),
            ratio_text(tail_fixed.median),
            range_text(tail_fixed.range)
        )?;
        let exporting = || {
            self.spans
                .iter()
                .filter(|(_, c, _)| configs::ALL[*c].exports_spans)
                .map(|(_, _, s)| s)
        };
        let received: u64 = exporting().map(|s| s.received).sum();
        let expected: u64 = exporting().map(|s| s.expected).sum();
        let sent: u64 = exporting().filter_map(|s| s.sent).sum();
        let dropped: u64 = exporting().filter_map(|s| s.dropped).sum();
        writeln!(
            f,
            "  {}  spans sent = received (tracing on and metrics off: received {received}; sent {sent} and dropped {dropped} \
             by the services' own count where their metrics are on, else expected {expected} = {} per answered request)",
            verdict(Some(self.spans_complete())),
            self.spans_per_request
        )?;
        writeln!(
            f,
            "  {}  metrics within the same 5 % budget, saturating (tracing on ÷ metrics off: {}; rounds {}{})",
            verdict(within(metrics_saturating.median, CPU_BUDGET)),
            ratio_text(metrics_saturating.median),
            range_text(metrics_saturating.range),
            noise_note(metrics_saturating.range, CPU_BUDGET)
        )?;
        let overshoot = |value: fn(&SpanCount) -> Option<f64>| {
            let mut values: Vec<f64> = self.spans.iter().filter_map(|(_, _, s)| value(s)).collect();
            median(&mut values)
        };
        let ms = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |ms| format!("{ms:+.3} ms"));
        let (query, answer) = (
            overshoot(|s| s.db_query_p50_over_ms),
            overshoot(|s| s.client_p50_over_ms),
        );
        writeln!(
            f,
            "  {}  mocks on time at p50 (fixed rate, median over sessions): db.query span {} (≤ +0.5 ms), \
             answer at its client, the aggregator's CLIENT span, {} (≤ +1 ms)",
            verdict(query.zip(answer).map(|(q, a)| q <= MOCK_QUERY_SLACK_MS && a <= MOCK_ANSWER_SLACK_MS)),
            ms(query),
            ms(answer)
        )?;
        let most = |value: fn(&Measurement) -> f64| {
            self.measurements
                .iter()
                .map(|(_, _, m)| value(m))
                .fold(0.0, f64::max)
        };
        let load = most(|m| m.load_cpu_share);
        writeln!(
            f,
            "  info  load generator: at most {:.0} % of one core in any run{}; \
             the benchmark's own OTLP receiver: at most {:.0} %",
            load * 100.0,
            if load > 0.8 {
                " — it may be the bottleneck"
            } else {
                ""
            },
            most(|m| m.receiver_cpu_share) * 100.0
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_is_noise_bound_only_when_rounds_fall_on_both_sides_of_the_budget() {
        assert!(noise_note(Some((0.96, 1.21)), 0.05).contains("noise-bound"));
        assert_eq!(noise_note(Some((1.01, 1.04)), 0.05), "");
        assert_eq!(noise_note(Some((1.06, 1.20)), 0.05), "");
        assert_eq!(noise_note(None, 0.05), "");
        assert_eq!(range_text(Some((0.9612, 1.2))), "0.961–1.200×");
    }

    #[test]
    fn the_header_names_the_extra_variables_and_the_aggregator_only_mode() {
        use clap::Parser as _;
        let plain = BenchArgs::try_parse_from(["bench"]).unwrap();
        assert_eq!(setup_note(&plain), "");
        let both =
            BenchArgs::try_parse_from(["bench", "--env", "A=b", "--aggregator-only"]).unwrap();
        let note = setup_note(&both);
        assert!(note.contains("every service with A=b"), "{note}");
        assert!(note.contains("aggregator only"), "{note}");
    }
}
