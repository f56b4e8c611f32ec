//! `latency-lab up`: the whole suite on one machine, no Docker, no collector.
//!
//! Starts the three services as real child processes (this same binary,
//! re-executed as `serve <service>`), so every hop is a real HTTP hop and
//! every service exports under its own `service.name`. Spans go to the
//! embedded OTLP receiver (or to `--otlp-endpoint`), and each trace is
//! printed as a tree once it is complete.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Args;
use otlp_receiver::{CollectedSpan, ReceiverConfig, RunningReceiver};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use service_kit::cli::parse_duration;

use crate::tree;

#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// Aggregator listen address.
    #[arg(long, env = "LATENCY_LAB_AGGREGATOR", default_value = "127.0.0.1:8080")]
    pub aggregator: SocketAddr,
    /// User service listen address.
    #[arg(
        long,
        env = "LATENCY_LAB_USER_SERVICE",
        default_value = "127.0.0.1:5001"
    )]
    pub user_service: SocketAddr,
    /// Order service listen address.
    #[arg(
        long,
        env = "LATENCY_LAB_ORDER_SERVICE",
        default_value = "127.0.0.1:5002"
    )]
    pub order_service: SocketAddr,
    /// Embedded OTLP/gRPC receiver address.
    #[arg(long, env = "LATENCY_LAB_OTLP_GRPC", default_value = "127.0.0.1:4317")]
    pub otlp_grpc: SocketAddr,
    /// Embedded OTLP/HTTP receiver address.
    #[arg(long, env = "LATENCY_LAB_OTLP_HTTP", default_value = "127.0.0.1:4318")]
    pub otlp_http: SocketAddr,
    /// Send spans to this external OTLP/gRPC endpoint (a collector or Jaeger)
    /// instead of the embedded receiver; traces are then not printed here.
    #[arg(long)]
    pub otlp_endpoint: Option<String>,
    /// Do not send the two demo requests at start-up.
    #[arg(long)]
    pub no_demo: bool,
    /// Send the demo requests, print their traces, stop everything and exit
    /// (for scripts and the docs' tests).
    #[arg(long, conflicts_with = "no_demo")]
    pub demo_only: bool,
    /// The requests sent at start-up, one per mode, in order.
    #[arg(long, value_delimiter = ',', default_value = "sequential,concurrent")]
    pub demo_modes: Vec<profile_aggregator::Mode>,
    /// User service simulated latency.
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    pub user_latency: Duration,
    /// Order service simulated latency.
    #[arg(long, default_value = "200ms", value_parser = parse_duration)]
    pub order_latency: Duration,
}

/// A trace is printed once no span of it has arrived for this long.
const QUIET: Duration = Duration::from_millis(1500);

/// Spans one profile request produces across the three services.
const DEMO_SPANS: usize = 7;

pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    let receiver = match &args.otlp_endpoint {
        Some(_) => None,
        None => Some(
            otlp_receiver::start(ReceiverConfig {
                grpc_addr: args.otlp_grpc,
                http_addr: args.otlp_http,
                max_traces: 1000,
            })
            .await
            .context("cannot start the embedded OTLP receiver (is a collector already on 4317/4318? use --otlp-grpc/--otlp-http to move it, or --otlp-endpoint to send there)")?,
        ),
    };
    let endpoint = match (&args.otlp_endpoint, &receiver) {
        (Some(e), _) => e.clone(),
        (None, Some(r)) => r.grpc_endpoint(),
        (None, None) => unreachable!("a receiver is started when no endpoint is given"),
    };

    let user_latency = format!("{}ms", args.user_latency.as_millis());
    let order_latency = format!("{}ms", args.order_latency.as_millis());
    let mut children = Children::default();
    let result = async {
        let users = children
            .start("user-service", &["--listen", &args.user_service.to_string(), "--latency", &user_latency], &endpoint)
            .await?;
        let orders = children
            .start("order-service", &["--listen", &args.order_service.to_string(), "--latency", &order_latency], &endpoint)
            .await?;
        let aggregator = children
            .start(
                "profile-aggregator",
                &[
                    "--listen",
                    &args.aggregator.to_string(),
                    "--user-service-url",
                    &users,
                    "--order-service-url",
                    &orders,
                ],
                &endpoint,
            )
            .await?;
        println!();
        println!("latency-lab is up:");
        println!("  profile-aggregator  {aggregator}   (GET /user-profile/{{id}}?mode=sequential|concurrent|unlinked)");
        println!("  user-service        {users}");
        println!("  order-service       {orders}");
        println!("  spans               {endpoint}");
        println!();
        println!("try:  curl '{aggregator}/user-profile/42?mode=concurrent'");
        println!();
        run_session(&args, &aggregator, receiver.as_ref()).await
    }
    .await;

    children.stop().await;
    if let Some(r) = receiver {
        r.shutdown().await;
    }
    result
}

async fn run_session(
    args: &UpArgs,
    aggregator: &str,
    receiver: Option<&RunningReceiver>,
) -> anyhow::Result<()> {
    let mut printed = HashSet::new();
    if !args.no_demo {
        let client = reqwest::Client::new();
        for mode in &args.demo_modes {
            let before: HashSet<String> = receiver
                .map(|r| r.store().trace_ids().into_iter().collect())
                .unwrap_or_default();
            let url = format!("{aggregator}/user-profile/42?mode={mode}");
            let response = client
                .get(&url)
                .send()
                .await
                .with_context(|| format!("GET {url}"))?;
            let status = response.status();
            let body: serde_json::Value =
                response.json().await.context("demo response is not JSON")?;
            if !status.is_success() {
                bail!("demo request {url} failed with {status}: {body}");
            }
            let trace_id = body["trace_id"].as_str().unwrap_or_default().to_owned();
            println!(
                "{mode} request: {} ms, trace {trace_id}",
                body["timing"]["total_ms"]
            );
            if let Some(r) = receiver {
                // Whatever the mode, one profile request makes seven spans:
                // aggregator server + 2 clients + 2 downstream servers + 2
                // db spans — in one trace, or (unlinked) spread over three.
                let is_new = |s: &CollectedSpan| !before.contains(&s.trace_id);
                let spans = r
                    .store()
                    .wait_for(Duration::from_secs(30), |all| {
                        all.iter().filter(|s| is_new(s)).count() >= DEMO_SPANS
                    })
                    .await
                    .context("the demo request's spans did not arrive")?;
                let mut traces: Vec<String> = Vec::new();
                for span in spans.iter().filter(|s| is_new(s)) {
                    if !traces.contains(&span.trace_id) {
                        traces.push(span.trace_id.clone());
                    }
                }
                if traces.len() > 1 {
                    println!("one request, {} traces:", traces.len());
                }
                for id in traces {
                    print!("{}", tree::render(&r.store().trace(&id)));
                    printed.insert(id);
                }
                println!();
            }
        }
    }
    if args.demo_only {
        return Ok(());
    }
    match receiver {
        Some(r) => {
            println!("waiting for requests; each trace is printed when complete (Ctrl-C stops)");
            tokio::select! {
                _ = print_new_traces(r, printed) => Ok(()),
                _ = service_kit_shutdown() => Ok(()),
            }
        }
        None => {
            println!("spans go to the external endpoint (Ctrl-C stops)");
            service_kit_shutdown().await;
            Ok(())
        }
    }
}

async fn service_kit_shutdown() {
    telemetry_signal().await;
    println!("\nstopping…");
}

/// Ctrl-C or SIGTERM.
async fn telemetry_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term => {},
    }
}

/// Prints each trace once it has been quiet for [`QUIET`].
async fn print_new_traces(receiver: &RunningReceiver, mut printed: HashSet<String>) {
    let store = receiver.store();
    let mut updates = store.subscribe();
    let mut last_seen: HashMap<String, Instant> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            batch = updates.recv() => {
                if let Ok(batch) = batch {
                    for span in batch {
                        if !printed.contains(&span.trace_id) {
                            last_seen.insert(span.trace_id.clone(), Instant::now());
                        }
                    }
                }
            }
            _ = tick.tick() => {
                let ready: Vec<String> = last_seen
                    .iter()
                    .filter(|(_, t)| t.elapsed() >= QUIET)
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in ready {
                    last_seen.remove(&id);
                    let spans: Vec<CollectedSpan> = store.trace(&id);
                    if !spans.is_empty() {
                        print!("{}", tree::render(&spans));
                        println!();
                    }
                    printed.insert(id);
                }
            }
        }
    }
}

/// The child processes; stopped with SIGTERM so they flush their spans.
#[derive(Default)]
struct Children {
    running: Vec<(&'static str, Child)>,
}

impl Children {
    async fn start(
        &mut self,
        name: &'static str,
        args: &[&str],
        endpoint: &str,
    ) -> anyhow::Result<String> {
        let exe = std::env::current_exe().context("cannot find the latency-lab binary")?;
        let mut cmd = Command::new(exe);
        cmd.arg("serve").arg(name).args(args);
        cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .env_remove("OTEL_SERVICE_NAME");
        if std::env::var_os("OTEL_BSP_SCHEDULE_DELAY").is_none() {
            cmd.env("OTEL_BSP_SCHEDULE_DELAY", "100");
        }
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "warn");
        }
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        let stdout = child.stdout.take().context("child stdout")?;
        self.running.push((name, child));
        let mut lines = BufReader::new(stdout).lines();
        let url = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some((_, url)) = line.split_once(" listening on ") {
                    return Some(url.trim().to_owned());
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .with_context(|| format!("{name} did not start (see its error above)"))?;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(url)
    }

    async fn stop(&mut self) {
        for (_, child) in &self.running {
            if let Some(pid) = child.id() {
                terminate(pid);
            }
        }
        for (name, child) in &mut self.running {
            let pid = child.id().unwrap_or_default();
            match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
                Ok(_) => println!("stopped {name} (pid {pid})"),
                Err(_) => {
                    eprintln!("{name} did not stop within 10 s; killing it");
                    let _ = child.kill().await;
                }
            }
        }
        self.running.clear();
    }
}

/// SIGTERM: the signal the services treat as "flush and exit".
fn terminate(pid: u32) {
    let Ok(pid) = i32::try_from(pid) else { return };
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is one of
    // our own children that has not been reaped yet.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
}
