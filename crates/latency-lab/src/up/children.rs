//! The three services as child processes of `up`: started as `latency-lab
//! serve <service>` back to front, stopped with SIGTERM front to back so
//! requests in flight finish and every service flushes its spans; and the
//! signals that stop `up` itself.

use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use service_kit::child::{self, ServiceCommand};
use tokio::signal::unix::{signal, Signal, SignalKind};

/// Ctrl-C (SIGINT) or SIGTERM, registered once up front.
pub(super) struct Stop {
    interrupt: Signal,
    terminate: Signal,
}

impl Stop {
    pub(super) fn install() -> std::io::Result<Stop> {
        Ok(Stop {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    pub(super) async fn wait(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {},
            _ = self.terminate.recv() => {},
        }
    }
}

/// The three services, started through the shared child-process helper
/// (`service_kit::child`: readiness line, SIGTERM, deadline, kill on drop),
/// configured to export where `up` receives.
#[derive(Default)]
pub(super) struct Children {
    running: child::Children,
}

/// How long a service may take to flush and exit after SIGTERM.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

impl Children {
    /// Starts `latency-lab serve <name> <args>` exporting to `endpoint`;
    /// its URL, from its readiness line.
    pub(super) async fn start(
        &mut self,
        name: &'static str,
        args: &[&str],
        endpoint: &str,
    ) -> anyhow::Result<String> {
        let exe = std::env::current_exe().context("cannot find the latency-lab binary")?;
        let mut cmd = ServiceCommand::new(name, exe)
            .arg("serve")
            .arg(name)
            .args(args)
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .env_remove("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL")
            .env_remove("OTEL_SERVICE_NAME")
            // A terminal's Ctrl-C reaches every child too: they leave it to
            // `up`, which stops them front to back.
            .stopped_by_parent()
            .stderr(Stdio::inherit());
        if std::env::var_os("OTEL_BSP_SCHEDULE_DELAY").is_none() {
            cmd = cmd.env("OTEL_BSP_SCHEDULE_DELAY", "100");
        }
        // Metrics every 2 s unless told otherwise: the latency table on
        // demand is then at most that stale.
        if std::env::var_os("OTEL_METRIC_EXPORT_INTERVAL").is_none() {
            cmd = cmd.env("OTEL_METRIC_EXPORT_INTERVAL", "2000");
        }
        if std::env::var_os("RUST_LOG").is_none() {
            cmd = cmd.env("RUST_LOG", "warn");
        }
        let child = self.running.start(cmd).await?;
        Ok(child.url())
    }

    /// Front to back, one at a time: the aggregator first (it finishes the
    /// requests in flight while the mocks still answer their calls), then
    /// the order service, then the user service — each SIGTERM, waited for
    /// and killed past its deadline (`service_kit::child::Children`). One
    /// line each.
    pub(super) async fn stop(&mut self) {
        for report in self.running.stop_all(STOP_DEADLINE).await {
            match report {
                Ok(stopped) if stopped.killed => eprintln!(
                    "{} did not stop within {} s; killed it",
                    stopped.service,
                    STOP_DEADLINE.as_secs()
                ),
                Ok(stopped) => println!("stopped {} (pid {})", stopped.service, stopped.pid),
                Err(error) => eprintln!("warning: {error}"),
            }
        }
    }
}
