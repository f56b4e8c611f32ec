//! The three services on loopback, started as `latency-lab serve <name>`
//! children (as `latency-lab up` does), exporting to this process's own
//! OTLP receiver so the spans that arrive can be counted.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use otlp_receiver::{ReceiverConfig, RunningReceiver};
use service_kit::child::{self, ServiceCommand};

use super::args::{BenchArgs, EnvVar};
use super::configs::Config;

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
}

impl Suite {
    pub async fn start(
        lab: &Path,
        config: &Config,
        endpoint: &str,
        args: &BenchArgs,
    ) -> anyhow::Result<Suite> {
        Self::start_with(lab, config, endpoint, args, None).await
    }

    /// As [`start`](Self::start), with the aggregator run under `wrapper`
    /// (a program and its arguments, e.g. valgrind's callgrind) and its
    /// readiness and stop waits stretched to suit.
    pub async fn start_with(
        lab: &Path,
        config: &Config,
        endpoint: &str,
        args: &BenchArgs,
        wrapper: Option<&[std::ffi::OsString]>,
    ) -> anyhow::Result<Suite> {
        let mock_latency = args.mock_latency;
        let env = &args.env;
        let latency = format!("{}ms", mock_latency.as_secs_f64() * 1000.0);
        let mut children = child::Children::default();
        // Both mocks alike: same latency, free ports.
        let mock = |name| {
            command(lab, name, config, endpoint, env).args([
                "--listen",
                "127.0.0.1:0",
                "--latency",
                latency.as_str(),
            ])
        };
        let users = children.start(mock("user-service")).await?.url();
        let orders = children.start(mock("order-service")).await?.url();
        let mut aggregator = match wrapper {
            Some([program, prefix @ ..]) => wrapped(
                program,
                prefix,
                lab,
                "profile-aggregator",
                config,
                endpoint,
                env,
            )
            .ready_within(WRAPPED_WAIT),
            _ => command(lab, "profile-aggregator", config, endpoint, env),
        };
        aggregator = aggregator.args([
            "--listen",
            "127.0.0.1:0",
            "--user-service-url",
            &users,
            "--order-service-url",
            &orders,
        ]);
        let aggregator = children.start(aggregator).await?;
        let (aggregator_pid, aggregator_url) = (aggregator.pid(), aggregator.url());
        Ok(Suite {
            children,
            aggregator_pid,
            aggregator_url,
        })
    }

    /// SIGTERM front to back: every service flushes its spans before it exits.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop_within(STOP_DEADLINE).await
    }

    /// As [`stop`](Self::stop), for a wrapped aggregator.
    pub async fn stop_wrapped(self) -> anyhow::Result<()> {
        self.stop_within(WRAPPED_WAIT).await
    }

    async fn stop_within(mut self, deadline: Duration) -> anyhow::Result<()> {
        for stopped in self.children.stop_all(deadline).await {
            let stopped = stopped?;
            if stopped.killed {
                anyhow::bail!("{} did not stop within {deadline:?}", stopped.service);
            }
        }
        Ok(())
    }
}

/// `latency-lab serve <name>` with only the configuration's OpenTelemetry
/// variables (none inherited from the caller's shell, nor
/// `LATENCY_LAB_SPAN_*`) and `--env`'s, the
/// SDK's defaults otherwise, exporting over gRPC to `endpoint`.
fn command(
    lab: &Path,
    name: &str,
    config: &Config,
    endpoint: &str,
    env: &[EnvVar],
) -> ServiceCommand {
    configured(ServiceCommand::new(name, lab), name, config, endpoint, env)
}

/// As [`command`], run as `program prefix… latency-lab serve <name>`.
fn wrapped(
    program: &std::ffi::OsStr,
    prefix: &[std::ffi::OsString],
    lab: &Path,
    name: &str,
    config: &Config,
    endpoint: &str,
    env: &[EnvVar],
) -> ServiceCommand {
    let cmd = ServiceCommand::new(name, program).args(prefix).arg(lab);
    configured(cmd, name, config, endpoint, env)
}

fn configured(
    cmd: ServiceCommand,
    name: &str,
    config: &Config,
    endpoint: &str,
    env: &[EnvVar],
) -> ServiceCommand {
    let mut cmd = cmd.arg("serve").arg(name);
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
