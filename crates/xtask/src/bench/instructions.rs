//! `cargo xtask bench --instructions`: the aggregator's cost per request
//! as a count of executed instructions, which a shared, noisy machine does
//! not move.
//!
//! CPU time per request moves by several percent between runs on two
//! shared cores, as much as the 5 % budget it is judged against. valgrind's
//! callgrind counts the instructions a process executes (all its threads)
//! whatever else the machine does, so a difference of 1 % between two
//! configurations is a real difference. (`perf stat -e instructions` would
//! be cheaper, but virtual machines often have no hardware counters.)
//!
//! Per configuration, two runs of the same suite with the aggregator under
//! callgrind: one sends the warm-up alone, the other the warm-up and then
//! `N` requests at a fixed rate; each is stopped with SIGTERM (every span
//! flushed, so the export of every request is counted), and the difference
//! of the two totals over `N` is the cost of one request at that rate, with
//! the start-up, warm-up and shut-down cancelled out. Time spent idle
//! between requests (timers, the export thread's wake-ups) is part of it,
//! as it is of the CPU time.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use super::args::BenchArgs;
use super::configs::{self, Config};
use super::load::{self, Pacing};
use super::{suite, target_url};

/// Export (or metrics) may cost at most this share of the aggregator's
/// instructions per request: the same budget as for its CPU time.
const BUDGET: f64 = 0.05;

/// What one configuration cost.
#[derive(Debug, Clone)]
pub struct Count {
    pub config: Config,
    /// Instructions of the run with the warm-up alone.
    pub baseline: u64,
    /// Instructions of the run with the warm-up and the measured requests.
    pub loaded: u64,
    /// Requests of the measured load that got an answer.
    pub requests: u64,
    /// Spans that reached the receiver in the loaded run.
    pub spans: u64,
}

impl Count {
    /// Instructions per measured request.
    pub fn per_request(&self) -> f64 {
        self.loaded.saturating_sub(self.baseline) as f64 / self.requests.max(1) as f64
    }
}

/// Every configuration's count, printed by its `Display`.
#[derive(Debug, Clone)]
pub struct InstructionReport {
    pub rate: u32,
    pub requests: u32,
    pub binary: String,
    /// The header's note on `--env` and `--aggregator-only` (empty: none).
    pub setup: String,
    pub counts: Vec<Count>,
}

impl InstructionReport {
    fn per_request(&self, config: Config) -> Option<f64> {
        self.counts
            .iter()
            .find(|c| c.config == config)
            .map(Count::per_request)
    }

    /// Instructions per request of `a` over those of `b`.
    pub fn ratio(&self, a: Config, b: Config) -> Option<f64> {
        let (a, b) = (self.per_request(a)?, self.per_request(b)?);
        (b > 0.0).then(|| a / b)
    }
}

/// Runs the instruction count for every configuration.
pub async fn run(args: &BenchArgs, lab: &Path) -> anyhow::Result<InstructionReport> {
    let valgrind = valgrind()?;
    let receiver = suite::receiver().await?;
    let endpoint = receiver.grpc_endpoint();
    let work = tempfile::tempdir().context("cannot create a scratch folder")?;
    let (rate, requests) = (args.instructions_rate, args.instructions_requests);
    // callgrind's files: kept where `--keep-profiles` says, else scratch.
    let profiles = args
        .keep_profiles
        .clone()
        .unwrap_or_else(|| work.path().to_owned());
    std::fs::create_dir_all(&profiles)
        .with_context(|| format!("cannot create {}", profiles.display()))?;
    let mut counts = Vec::new();
    for (index, config) in configs::ALL.iter().enumerate() {
        let mut totals = [0u64; 2];
        let mut answered = 0;
        let mut spans = 0;
        for (run, measured) in [0, requests].into_iter().enumerate() {
            eprintln!(
                "bench: instructions: {}: warm-up{}",
                config.name,
                if measured > 0 {
                    format!(" and {measured} requests at {rate}/s")
                } else {
                    " alone".to_owned()
                }
            );
            let dir = work.path().join(format!("c{index}-{run}"));
            std::fs::create_dir_all(&dir)?;
            let name = format!(
                "{}-{}.callgrind.out",
                config.name.replace(' ', "-"),
                if measured > 0 { "loaded" } else { "baseline" }
            );
            let out = profiles.join(name);
            receiver.store().clear();
            let wrapper = callgrind(&valgrind, &out);
            let suite = suite::Suite::start_with(lab, config, &endpoint, args, &wrapper).await?;
            let url = target_url(&suite.aggregator_url);
            let warm = load::run(
                lab,
                &url,
                Pacing::Fixed(rate),
                warmup(args, rate),
                &dir.join("warmup"),
            )
            .await;
            let loaded = match warm {
                Ok(_) if measured > 0 => {
                    load::run(
                        lab,
                        &url,
                        Pacing::Fixed(rate),
                        Duration::from_secs_f64(f64::from(measured) / f64::from(rate)),
                        &dir.join("measured"),
                    )
                    .await
                }
                other => other,
            };
            let stopped = suite.stop().await;
            let summary = loaded.with_context(|| format!("{}: the load failed", config.name))?;
            stopped?;
            if measured > 0 {
                answered = summary.answered();
                spans = receiver.store().spans().len() as u64;
            }
            totals[run] = instructions_in(&out)?;
        }
        anyhow::ensure!(
            answered > 0,
            "{}: no measured request answered",
            config.name
        );
        counts.push(Count {
            config: *config,
            baseline: totals[0],
            loaded: totals[1],
            requests: answered,
            spans,
        });
    }
    receiver.shutdown().await;
    Ok(InstructionReport {
        rate,
        requests,
        binary: super::report::build_of(lab).to_owned(),
        setup: super::report::setup_note(args),
        counts,
    })
}

/// The warm-up: enough requests for every lazy start (connections,
/// instruments, the first export) to be behind, the same in both runs.
fn warmup(args: &BenchArgs, rate: u32) -> Duration {
    args.warmup
        .max(Duration::from_secs_f64(20.0 / f64::from(rate)))
}

/// valgrind on `PATH`, or a clear error.
pub fn valgrind() -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("valgrind"))
        .find(|candidate| candidate.is_file())
        .context(
            "--instructions needs valgrind (callgrind counts the instructions): \
             install Debian's valgrind package",
        )
}

/// `valgrind --tool=callgrind` writing its totals to `out`, quietly.
fn callgrind(valgrind: &Path, out: &Path) -> Vec<OsString> {
    let mut file = OsString::from("--callgrind-out-file=");
    file.push(out);
    vec![
        valgrind.into(),
        "--tool=callgrind".into(),
        "--quiet".into(),
        file,
    ]
}

/// The `totals:` (or `summary:`) line of a callgrind output: instructions
/// executed, all threads.
pub fn instructions_in(out: &Path) -> anyhow::Result<u64> {
    let text = std::fs::read_to_string(out)
        .with_context(|| format!("no callgrind output at {}", out.display()))?;
    parse_totals(&text).with_context(|| format!("no totals in {}", out.display()))
}

fn parse_totals(text: &str) -> Option<u64> {
    let line = text
        .lines()
        .find(|l| l.starts_with("totals:"))
        .or_else(|| text.lines().find(|l| l.starts_with("summary:")))?;
    line.split_once(':')?
        .1
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn ratio_text(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "n/a".to_owned(), |r| format!("{r:.3}×"))
}

impl fmt::Display for InstructionReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use configs::{METRICS_OFF, SAMPLING_OFF, SDK_DISABLED, TRACING_ON};
        writeln!(
            f,
            "bench --instructions: {} build; the aggregator under callgrind (all threads), \
             {} requests at {}/s (open loop) minus a run with the warm-up alone; \
             mocks and receiver not counted{}",
            self.binary, self.requests, self.rate, self.setup
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "  {:<14} {:>14} {:>15} {:>9} {:>7}",
            "config", "instr/request", "÷ SDK disabled", "requests", "spans"
        )?;
        for count in &self.counts {
            writeln!(
                f,
                "  {:<14} {:>12.1} k {:>15} {:>9} {:>7}",
                count.config.name,
                count.per_request() / 1000.0,
                ratio_text(self.ratio(count.config, SDK_DISABLED)),
                count.requests,
                count.spans,
            )?;
        }
        writeln!(f)?;
        // Export alone: both sides without metrics.
        let export = self.ratio(METRICS_OFF, SDK_DISABLED);
        let metrics = self.ratio(TRACING_ON, METRICS_OFF);
        let verdict = |r: Option<f64>| match r {
            Some(r) if r - 1.0 <= BUDGET => "PASS",
            Some(_) => "MISS",
            None => "MISS (not measured)",
        };
        writeln!(f, "targets (issue 15), in instructions:")?;
        writeln!(
            f,
            "  {}  export ≤ 5 % of the aggregator's instructions per request (metrics off ÷ SDK disabled: {})",
            verdict(export),
            ratio_text(export)
        )?;
        writeln!(
            f,
            "  {}  metrics within the same 5 % budget (tracing on ÷ metrics off: {})",
            verdict(metrics),
            ratio_text(metrics)
        )?;
        writeln!(
            f,
            "  info  export and metrics together (tracing on ÷ SDK disabled): {}; \
             sampling off ÷ SDK disabled (spans not recorded, metrics on): {}",
            ratio_text(self.ratio(TRACING_ON, SDK_DISABLED)),
            ratio_text(self.ratio(SAMPLING_OFF, SDK_DISABLED))
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_totals_line_gives_the_instructions() {
        let text = "events: Ir\nsummary: 325278526\n\nfn=main\n1 2\ntotals: 325278948\n";
        assert_eq!(parse_totals(text), Some(325_278_948));
        assert_eq!(parse_totals("events: Ir\nsummary: 12\n"), Some(12));
        assert_eq!(parse_totals("events: Ir\n"), None);
    }
}
