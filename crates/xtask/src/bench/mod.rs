//! `cargo xtask bench`: what observing costs — tracing on against the SDK
//! disabled, sampling off and metrics off — measured from outside on the
//! real binaries.
//!
//! An xtask rather than `cargo bench`: the benchmark orchestrates processes
//! (the three services, a load generator per run, an OTLP receiver) and
//! reads the kernel's per-process CPU accounting from `/proc`, while
//! `cargo bench` runs functions in its own process. A shell script could
//! start the processes, but the medians, ratios and verdicts are clearer
//! in Rust, and a test can call [`run`] directly.
//!
//! Each round runs every configuration once (interleaved, so slow drift
//! on a shared machine hits them alike), each round starting one
//! configuration further on, so that no configuration always runs first
//! or last in a round (a position effect would otherwise bias a ratio the
//! same way in every round, which the median cannot remove); each
//! configuration gets a fresh suite, a warm-up, a fixed-rate run (open
//! loop) and a saturating run (closed loop), then the suite is stopped so
//! every span is flushed and counted. The report gives medians across
//! rounds, and medians of the per-round ratios, never one round's numbers.

pub mod args;
pub mod configs;
pub mod cpu;
pub mod instructions;
pub mod load;
pub mod report;
pub mod suite;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use otlp_receiver::{CollectedSpan, MetricStore, RunningReceiver, SpanKind, SpanStore};

pub use args::BenchArgs;
use configs::Config;
use load::Pacing;
use report::{Measurement, Report, SpanCount};

/// The configurations' order in round `round` (from 1): all of them,
/// starting `round - 1` further on.
fn rotated(count: usize, round: u32) -> impl Iterator<Item = usize> {
    let start = (round as usize).saturating_sub(1);
    (0..count).map(move |k| (start + k) % count)
}

/// Builds latency-lab (or takes `--lab`), runs the benchmark, and returns
/// the printed report. Progress goes to stderr.
pub async fn run(args: &BenchArgs) -> anyhow::Result<Report> {
    let args = args.effective();
    let lab = match &args.lab {
        Some(lab) => lab.clone(),
        None => build_lab(args.release)?,
    };
    let ticks = cpu::ticks_per_second();
    let receiver = suite::receiver().await?;
    let endpoint = receiver.grpc_endpoint();
    let work = tempfile::tempdir().context("cannot create a scratch folder")?;

    let spans_per_request =
        calibrate(&lab, &endpoint, receiver.store(), &args, work.path()).await?;
    eprintln!("bench: {spans_per_request} spans per request with tracing on");

    let mut report = Report::new(&args, &lab, spans_per_request);
    for round in 1..=args.rounds {
        for index in rotated(configs::ALL.len(), round) {
            let config = &configs::ALL[index];
            eprintln!("bench: round {round}/{}: {}", args.rounds, config.name);
            let dir = work.path().join(format!("r{round}-c{index}"));
            let (runs, spans) = session(
                &lab,
                config,
                &endpoint,
                &receiver,
                &args,
                ticks,
                spans_per_request,
                &dir,
            )
            .await
            .with_context(|| format!("round {round}, {}", config.name))?;
            for measurement in runs {
                report.measurements.push((round, index, measurement));
            }
            report.spans.push((round, index, spans));
        }
    }
    receiver.shutdown().await;
    Ok(report)
}

/// `--instructions`: builds latency-lab (or takes `--lab`) and counts the
/// aggregator's instructions per request ([`instructions`]).
pub async fn run_instructions(args: &BenchArgs) -> anyhow::Result<instructions::InstructionReport> {
    let args = args.effective();
    let lab = match &args.lab {
        Some(lab) => lab.clone(),
        None => build_lab(args.release)?,
    };
    instructions::run(&args, &lab).await
}

/// `cargo build -p latency-lab`; the binary's path.
fn build_lab(release: bool) -> anyhow::Result<PathBuf> {
    cargo_build(&["latency-lab"], release)?;
    Ok(target_dir(release).join("latency-lab"))
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn target_dir(release: bool) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
        .join(if release { "release" } else { "debug" })
}

fn cargo_build(packages: &[&str], release: bool) -> anyhow::Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.current_dir(workspace_root()).arg("build");
    for package in packages {
        cmd.args(["-p", package]);
    }
    if release {
        cmd.arg("--release");
    }
    let status = cmd.status().context("cannot run cargo")?;
    anyhow::ensure!(status.success(), "cargo build {packages:?} failed");
    Ok(())
}

/// Builds xtask and latency-lab in release and runs `xtask bench` from
/// there with this process's arguments and the release latency-lab.
pub fn rerun_in_release() -> anyhow::Result<std::process::ExitCode> {
    cargo_build(&["xtask", "latency-lab"], true)?;
    let dir = target_dir(true);
    let status = std::process::Command::new(dir.join("xtask"))
        .args(std::env::args_os().skip(1))
        .arg("--lab")
        .arg(dir.join("latency-lab"))
        .status()
        .context("cannot run the release xtask")?;
    Ok(match status.code() {
        Some(0) => std::process::ExitCode::SUCCESS,
        _ => std::process::ExitCode::FAILURE,
    })
}

/// Spans one request produces with tracing on: a few requests, then the
/// suite is stopped (everything flushed) and the spans counted.
async fn calibrate(
    lab: &Path,
    endpoint: &str,
    store: &SpanStore,
    args: &BenchArgs,
    work: &Path,
) -> anyhow::Result<u64> {
    store.clear();
    let suite = suite::Suite::start(lab, &configs::TRACING_ON, endpoint, args).await?;
    let summary = load::run(
        lab,
        &target_url(&suite.aggregator_url),
        Pacing::Fixed(10),
        Duration::from_millis(500),
        &work.join("calibration"),
    )
    .await?;
    suite.stop().await?;
    let spans = store.spans().len() as u64;
    store.clear();
    anyhow::ensure!(
        summary.requests > 0 && spans.is_multiple_of(summary.requests),
        "calibration: {spans} spans for {} requests is not a whole number per request",
        summary.requests
    );
    Ok(spans / summary.requests)
}

pub(crate) fn target_url(aggregator: &str) -> String {
    format!("{aggregator}/user-profile/42?mode=concurrent")
}

/// One configuration in one round: a fresh suite, warm-up, the fixed-rate
/// and the saturating run, stop, count the spans.
#[allow(clippy::too_many_arguments)]
async fn session(
    lab: &Path,
    config: &Config,
    endpoint: &str,
    receiver: &RunningReceiver,
    args: &BenchArgs,
    ticks: u64,
    spans_per_request: u64,
    dir: &Path,
) -> anyhow::Result<(Vec<Measurement>, SpanCount)> {
    let store = receiver.store();
    store.clear();
    receiver.metrics().clear();
    let suite = suite::Suite::start(lab, config, endpoint, args).await?;
    let url = target_url(&suite.aggregator_url);
    let warmup = load::run(
        lab,
        &url,
        Pacing::Fixed(args.rate),
        args.warmup,
        &dir.join("warmup"),
    )
    .await?;
    let mut answered = warmup.answered();
    let mut runs = Vec::new();
    // The fixed-rate run's span of wall-clock time: the mocks' overshoot
    // is read from its spans only (at saturation, queueing would hide it).
    let mut fixed_window = (0, u64::MAX);
    for pacing in [
        Pacing::Fixed(args.rate),
        Pacing::Saturating(args.concurrency),
    ] {
        let out = dir.join(match pacing {
            Pacing::Fixed(_) => "fixed",
            Pacing::Saturating(_) => "saturating",
        });
        let cpu_before = cpu::process_cpu(suite.aggregator_pid, ticks)?;
        let load_before = cpu::waited_children_cpu(ticks)?;
        let own_before = cpu::own_cpu(ticks)?;
        let started = std::time::Instant::now();
        let started_unix = unix_nanos();
        let summary = load::run(lab, &url, pacing, args.duration, &out).await?;
        let wall = started.elapsed();
        let cpu_after = cpu::process_cpu(suite.aggregator_pid, ticks)?;
        let load_after = cpu::waited_children_cpu(ticks)?;
        let own_after = cpu::own_cpu(ticks)?;
        let errors = summary.errors();
        let completed = summary.requests - errors;
        answered += summary.answered();
        anyhow::ensure!(completed > 0, "no request completed");
        let latency = summary.latency()?;
        let deps = args.mock_latency.as_micros() as f64;
        if matches!(pacing, Pacing::Fixed(_)) {
            fixed_window = (started_unix, unix_nanos());
        }
        runs.push(Measurement {
            pacing,
            completed,
            errors,
            achieved_per_s: summary.achieved_per_s,
            cpu_per_request_us: (cpu_after - cpu_before).as_secs_f64() * 1e6 / completed as f64,
            load_cpu_share: (load_after - load_before).as_secs_f64() / wall.as_secs_f64(),
            receiver_cpu_share: (own_after - own_before).as_secs_f64() / wall.as_secs_f64(),
            p50_over_ms: (latency.p50 as f64 - deps) / 1000.0,
            p99_over_ms: (latency.p99 as f64 - deps) / 1000.0,
            p99_9_over_ms: (latency.p99_9 as f64 - deps) / 1000.0,
            p99_9_ms: latency.p99_9 as f64 / 1000.0,
        });
    }
    suite.stop().await?;
    let spans = store.spans();
    store.clear();
    let in_window =
        |s: &CollectedSpan| (fixed_window.0..=fixed_window.1).contains(&s.start_unix_nanos);
    // The services' own count covers every span only when every service
    // counts: with `--aggregator-only` the mocks keep their metrics in a
    // configuration that turns the aggregator's off, so the check falls
    // back to the spans of one request × the answered requests.
    let (sent, dropped) = if args.aggregator_only {
        (None, None)
    } else {
        exported_by_services(receiver.metrics())
    };
    let count = SpanCount {
        received: spans.len() as u64,
        sent,
        dropped,
        expected: if config.exports_spans {
            spans_per_request * answered
        } else {
            0
        },
        db_query_p50_over_ms: p50_over(&spans, args.mock_latency, |s| {
            in_window(s) && s.name.starts_with("db.query")
        }),
        client_p50_over_ms: p50_over(&spans, args.mock_latency, |s| {
            in_window(s) && s.kind == SpanKind::Client && s.service_name == "profile-aggregator"
        }),
    };
    Ok((runs, count))
}

/// The p50 duration of the spans `which` picks, minus the mocks'
/// configured latency (ms).
fn p50_over(
    spans: &[CollectedSpan],
    configured: Duration,
    which: impl Fn(&CollectedSpan) -> bool,
) -> Option<f64> {
    let mut durations: Vec<f64> = spans
        .iter()
        .filter(|s| which(s))
        .map(|s| s.duration().as_secs_f64() * 1000.0)
        .collect();
    report::median(&mut durations).map(|p50| p50 - configured.as_secs_f64() * 1000.0)
}

/// What the services themselves say they exported and dropped, from their
/// `otel.sdk.processor.span.processed` counters (final values: the services
/// flush their spans, then their metrics, on SIGTERM); `None` when no
/// service exported metrics.
fn exported_by_services(metrics: &MetricStore) -> (Option<u64>, Option<u64>) {
    let points = metrics.sums("otel.sdk.processor.span.processed");
    if points.is_empty() {
        return (None, None);
    }
    let (mut sent, mut dropped) = (0, 0);
    for point in points {
        let value = point.value.as_f64() as u64;
        if point.origin.attr("error.type").is_some() {
            dropped += value;
        } else {
            sent += value;
        }
    }
    (Some(sent), Some(dropped))
}

fn unix_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::rotated;

    #[test]
    fn every_configuration_takes_every_position_over_as_many_rounds() {
        let orders: Vec<Vec<usize>> = (1..=4).map(|round| rotated(4, round).collect()).collect();
        assert_eq!(orders[0], [0, 1, 2, 3]);
        assert_eq!(orders[1], [1, 2, 3, 0]);
        for position in 0..4 {
            let mut at: Vec<usize> = orders.iter().map(|o| o[position]).collect();
            at.sort_unstable();
            assert_eq!(at, [0, 1, 2, 3], "position {position}");
        }
    }
}
