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
pub(crate) struct Stop {
    interrupt: Signal,
    terminate: Signal,
}

impl Stop {
    pub(crate) fn install() -> std::io::Result<Stop> {
        Ok(Stop {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    pub(crate) async fn wait(&mut self) {
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
pub(crate) struct Children {
    running: child::Children,
    /// Extra variables for every service (a scenario's start-up settings).
    env: Vec<(String, String)>,
    /// Inherited variables the services must not see.
    remove: Vec<String>,
    /// No line per stopped service (`scenario --json` keeps stdout JSON).
    quiet: bool,
    /// Extra variables for one service, by name (applied last).
    service_env: Vec<(&'static str, String, String)>,
}

/// How long a service may take to flush and exit after SIGTERM.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

impl Children {
    /// Services that get `env` on top of what `up` sets, do not inherit the
    /// variables in `remove`, and stop without a line each when `quiet`.
    pub(crate) fn with_env(
        env: Vec<(String, String)>,
        remove: Vec<String>,
        quiet: bool,
    ) -> Children {
        Children {
            running: child::Children::default(),
            env,
            remove,
            quiet,
            service_env: Vec::new(),
        }
    }

    /// `key=value` for the service `name` only (a scenario's aggregator
    /// exporting late).
    pub(crate) fn set_for(&mut self, name: &'static str, key: &str, value: String) {
        self.service_env.push((name, key.to_owned(), value));
    }

    /// Starts `latency-lab serve <name> <args>` exporting to `endpoint`;
    /// its URL, from its readiness line.
    pub(crate) async fn start(
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
        for key in &self.remove {
            cmd = cmd.env_remove(key);
        }
        for (key, value) in &self.env {
            cmd = cmd.env(key, value);
        }
        for (_, key, value) in self.service_env.iter().filter(|(n, _, _)| *n == name) {
            cmd = cmd.env(key, value);
        }
        let child = self.running.start(cmd).await?;
        Ok(child.url())
    }

    /// Front to back, one at a time: the aggregator first (it finishes the
    /// requests in flight while the mocks still answer their calls), then
    /// the order service, then the user service — each SIGTERM, waited for
    /// and killed past its deadline (`service_kit::child::Children`). One
    /// line each.
    pub(crate) async fn stop(&mut self) {
        for report in self.running.stop_all(STOP_DEADLINE).await {
            match report {
                Ok(stopped) if stopped.killed => eprintln!(
                    "{} did not stop within {} s; killed it",
                    stopped.service,
                    STOP_DEADLINE.as_secs()
                ),
                Ok(_) if self.quiet => {}
                Ok(stopped) => println!("stopped {} (pid {})", stopped.service, stopped.pid),
                Err(error) => eprintln!("warning: {error}"),
            }
        }
    }
}
