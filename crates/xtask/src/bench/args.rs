//! The flags of `cargo xtask bench`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use service_kit::cli::parse_duration;

#[derive(Debug, Clone, Parser)]
#[command(name = "bench")]
pub struct BenchArgs {
    /// Rounds; each runs every configuration once (interleaved, so drift
    /// on a shared machine hits all alike), each round starting one
    /// configuration further on (so none always runs first or last).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rounds: u32,
    /// The fixed-rate run's requests per second (open loop).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub rate: u32,
    /// The saturating run's requests in flight (closed loop): enough to keep
    /// the aggregator busy on every core.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,
    /// Length of each measured run.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Load sent after each start and before the measured runs (not counted).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Each mock's fixed latency (both mocks: the concurrent mode's
    /// dependencies then take this long, and it is subtracted from the
    /// measured latency).
    #[arg(long, default_value = "20ms", value_parser = parse_duration)]
    pub mock_latency: Duration,
    /// Build latency-lab in release, and run this benchmark (its OTLP
    /// receiver shares the cores) built in release too: what a measurement
    /// should use. CI uses the debug build.
    #[arg(long)]
    pub release: bool,
    /// One round of 2 s runs with a short warm-up: checks the benchmark
    /// works, not the numbers (what the test runs).
    #[arg(long)]
    pub quick: bool,
    /// Count instructions instead of timing: the aggregator under valgrind's
    /// callgrind, per request, for every configuration (deterministic where
    /// CPU time is noisy; needs valgrind; about 4 minutes in release).
    #[arg(long)]
    pub instructions: bool,
    /// With --instructions: the measured requests per configuration.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub instructions_requests: u32,
    /// With --instructions: their rate per second (under callgrind the
    /// aggregator runs some 50 times slower, so keep it low).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub instructions_rate: u32,
    /// With --instructions: keep callgrind's profiles in this folder, one
    /// per configuration and run, for `callgrind_annotate` (where the
    /// instructions go, function by function).
    #[arg(long, value_name = "DIR")]
    pub keep_profiles: Option<PathBuf>,
    /// A variable for every service in every configuration, `KEY=VALUE`
    /// (repeatable): what to compare against the defaults, e.g.
    /// `--env OTEL_TRACES_SAMPLER=parentbased_traceidratio --env
    /// OTEL_TRACES_SAMPLER_ARG=0.1`. A configuration's own variable wins.
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env_var)]
    pub env: Vec<EnvVar>,
    /// Apply each configuration to the aggregator alone; the mocks trace
    /// (and export) in every configuration. On shared cores the mocks'
    /// and the receiver's export work otherwise slows the aggregator in
    /// the exporting configurations only (less throughput, fewer requests
    /// to share each wake-up), which a ratio of CPU per request would
    /// charge to the aggregator's export. (With the aggregator's sampling
    /// off the mocks record nothing all the same: they follow its
    /// not-sampled `traceparent`.)
    #[arg(long)]
    pub aggregator_only: bool,
    /// Use this latency-lab binary as is instead of building it.
    #[arg(long, env = "LATENCY_LAB_BIN", value_name = "PATH")]
    pub lab: Option<PathBuf>,
}

impl BenchArgs {
    /// The flags after `--quick` took effect.
    pub fn effective(&self) -> BenchArgs {
        let mut args = self.clone();
        if args.quick {
            args.rounds = 1;
            args.duration = Duration::from_secs(2);
            args.warmup = Duration::from_millis(500);
            args.instructions_requests = args.instructions_requests.min(20);
            args.instructions_rate = args.instructions_rate.min(10);
        }
        args
    }
}

/// One `--env KEY=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    pub key: String,
    pub value: String,
}

fn parse_env_var(text: &str) -> Result<EnvVar, String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() && !key.contains(char::is_whitespace) => {
            Ok(EnvVar {
                key: key.to_owned(),
                value: value.to_owned(),
            })
        }
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_takes_key_equals_value_and_names_a_bad_one() {
        let args = BenchArgs::try_parse_from([
            "bench",
            "--env",
            "OTEL_TRACES_SAMPLER_ARG=0.1",
            "--env",
            "A=b=c",
        ])
        .unwrap();
        assert_eq!(args.env[0].key, "OTEL_TRACES_SAMPLER_ARG");
        assert_eq!(args.env[0].value, "0.1");
        assert_eq!(args.env[1].value, "b=c");
        let error = BenchArgs::try_parse_from(["bench", "--env", "NOEQUALS"]).unwrap_err();
        assert!(error.to_string().contains("KEY=VALUE"), "{error}");
    }
}
