//! The three services on loopback, started as `latency-lab serve <name>`
//! children (as `latency-lab up` does), exporting to this process's own
//! OTLP receiver so the spans that arrive can be counted.

use std::ffi::OsString;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use otlp_receiver::{ReceiverConfig, RunningReceiver};
use service_kit::child::{self, ServiceCommand};

use super::args::{BenchArgs, EnvVar};
use super::configs::{self, Config};

/// How long a service may take to flush and exit after SIGTERM.
const STOP_DEADLINE: Duration = Duration::from_secs(10);
/// How long a wrapped aggregator may take to start and to stop: under
/// callgrind a debug build runs some hundred times slower.
const WRAPPED_WAIT: Duration = Duration::from_secs(120);

/// Enough that no trace of a run is evicted before it is counted.
const MAX_TRACES: usize = 10_000_000;

pub async fn receiver() -> anyhow::Result<RunningReceiver> {
    Ok(otlp_receiver::start(ReceiverConfig {
        max_traces: MAX_TRACES,
        ..ReceiverConfig::default()
    })
    .await?)
}

/// The running suite: children stop front to back on [`Suite::stop`].
pub struct Suite {
    children: child::Children,
    pub aggregator_pid: u32,
    pub aggregator_url: String,
    /// How long the services may take to stop: longer for a wrapped aggregator.
    stop_deadline: Duration,
}

impl Suite {
    pub async fn start(
        lab: &Path,
        config: &Config,
        endpoint: &str,
        args: &BenchArgs,
    ) -> anyhow::Result<Suite> {
        Self::start_with(lab, config, endpoint, args, &[]).await
    }

    /// As [`start`](Self::start), with the aggregator run under `wrapper`
    /// (a program and its arguments, e.g. valgrind's callgrind; empty:
    /// none) and its readiness and stop waits stretched to suit.
    pub async fn start_with(
        lab: &Path,
        config: &Config,
        endpoint: &str,
        args: &BenchArgs,
        wrapper: &[OsString],
    ) -> anyhow::Result<Suite> {
        let latency = format!("{}ms", args.mock_latency.as_secs_f64() * 1000.0);
        let mut children = child::Children::default();
        // Both mocks alike: same latency, free ports; with
        // `--aggregator-only`, tracing on whatever the configuration.
        let mock_config = if args.aggregator_only {
            &configs::TRACING_ON
        } else {
            config
        };
        let mock = |name| {
            command(lab, name, mock_config, endpoint, &args.env, &[]).args([
                "--listen",
                "127.0.0.1:0",
                "--latency",
                latency.as_str(),
            ])
        };
        let users = children.start(mock("user-service")).await?.url();
        let orders = children.start(mock("order-service")).await?.url();
        let mut aggregator = command(
            lab,
            "profile-aggregator",
            config,
            endpoint,
            &args.env,
            wrapper,
        )
        .args([
            "--listen",
            "127.0.0.1:0",
            "--user-service-url",
            &users,
            "--order-service-url",
            &orders,
        ]);
        let mut stop_deadline = STOP_DEADLINE;
        if !wrapper.is_empty() {
            aggregator = aggregator.ready_within(WRAPPED_WAIT);
            stop_deadline = WRAPPED_WAIT;
        }
        let aggregator = children.start(aggregator).await?;
        let (aggregator_pid, aggregator_url) = (aggregator.pid(), aggregator.url());
        Ok(Suite {
            children,
            aggregator_pid,
            aggregator_url,
            stop_deadline,
        })
    }

    /// SIGTERM front to back: every service flushes its spans before it exits.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let deadline = self.stop_deadline;
        for stopped in self.children.stop_all(deadline).await {
            let stopped = stopped?;
            if stopped.killed {
                anyhow::bail!("{} did not stop within {deadline:?}", stopped.service);
            }
        }
        Ok(())
    }
}

/// `[wrapper…] latency-lab serve <name>` with only the configuration's
/// OpenTelemetry variables (none inherited from the caller's shell, nor
/// `LATENCY_LAB_SPAN_*`) and `--env`'s, the SDK's defaults otherwise,
/// exporting over gRPC to `endpoint`.
fn command(
    lab: &Path,
    name: &str,
    config: &Config,
    endpoint: &str,
    env: &[EnvVar],
    wrapper: &[OsString],
) -> ServiceCommand {
    let mut cmd = match wrapper {
        [program, prefix @ ..] => ServiceCommand::new(name, program).args(prefix).arg(lab),
        [] => ServiceCommand::new(name, lab),
    }
    .arg("serve")
    .arg(name);
    for (key, _) in std::env::vars_os() {
        let key_text = key.to_string_lossy();
        if key_text.starts_with("OTEL_") || key_text.starts_with("LATENCY_LAB_SPAN_") {
            cmd = cmd.env_remove(key);
        }
    }
    cmd = cmd
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .env("RUST_LOG", "warn")
        .stderr(Stdio::inherit());
    // `--env` first: a configuration's own variable is what it compares.
    for EnvVar { key, value } in env {
        cmd = cmd.env(key, value);
    }
    for (key, value) in config.env {
        cmd = cmd.env(key, value);
    }
    cmd
}
