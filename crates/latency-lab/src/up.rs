//! `latency-lab up`: the whole suite on one machine, no Docker, no collector.
//!
//! Starts the three services as real child processes (this same binary,
//! re-executed as `serve <service>`), so every hop is a real HTTP hop and
//! every service exports under its own `service.name`. Spans go to the
//! embedded OTLP receiver (or to `--otlp-endpoint`); each trace is printed
//! as a waterfall once it is complete, and saved as Jaeger JSON.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Args;
use otlp_receiver::{CollectedSpan, ReceiverConfig, RunningReceiver};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::broadcast;

use mock_db::latency::LatencySpec;

use crate::jaeger_json;
use crate::load;
use crate::terminal::{Display, DisplayArgs};
use crate::trace_model::Trace;
use crate::waterfall;

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
    /// instead of the embedded receiver; traces are then not printed here
    /// (only their ids: see `latency-lab trace ID --jaeger URL`).
    #[arg(long)]
    pub otlp_endpoint: Option<String>,
    /// Folder where every received trace is saved as `<trace id>.json`, in
    /// the format of Jaeger's UI upload ("JSON File") and `trace --file`.
    #[arg(
        long,
        env = "LATENCY_LAB_TRACES_DIR",
        default_value = "latency-lab-traces"
    )]
    pub traces_dir: PathBuf,
    /// Traces kept in memory; past that the oldest are dropped (and counted).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_traces: u64,
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
    /// After the demo, send this many requests in each demo mode and print
    /// the latency distribution (p50 … p99.9, a histogram) and the
    /// waterfall of the slowest request.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub load: Option<u64>,
    /// Requests in flight at once during `--load`.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub load_concurrency: u64,
    /// User service simulated latency: a duration or a model such as
    /// 'lognormal(median=80ms,p99=900ms)' or '100ms+spike(p=0.01,1s)' (see
    /// `latency-lab serve user-service --help`; the services' other
    /// `USER_SERVICE_*`/`ORDER_SERVICE_*` variables pass through).
    #[arg(long, default_value = "100ms")]
    pub user_latency: LatencySpec,
    /// Order service simulated latency (same forms).
    #[arg(long, default_value = "200ms")]
    pub order_latency: LatencySpec,
    #[command(flatten)]
    pub display: DisplayArgs,
}

/// A trace is printed once no span of it has arrived for this long.
const QUIET: Duration = Duration::from_millis(1500);

/// Spans one profile request produces across the three services.
const DEMO_SPANS: usize = 7;

/// How long the demo waits for a request's spans.
const DEMO_WAIT: Duration = Duration::from_secs(30);

pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    // Take over Ctrl-C and SIGTERM before anything starts: from here on they
    // stop the children and end cleanly instead of killing only this process.
    let mut stop = Stop::install().context("cannot install the Ctrl-C handler")?;
    let display = args.display.resolve();
    let receiver = match &args.otlp_endpoint {
        Some(_) => None,
        None => Some(
            otlp_receiver::start(ReceiverConfig {
                grpc_addr: args.otlp_grpc,
                http_addr: args.otlp_http,
                max_traces: usize::try_from(args.max_traces).unwrap_or(usize::MAX),
            })
            .await
            .context("cannot start the embedded OTLP receiver (is a collector already on 4317/4318? use --otlp-grpc/--otlp-http to move it, or --otlp-endpoint to send there)")?,
        ),
    };
    if receiver.is_some() {
        std::fs::create_dir_all(&args.traces_dir).with_context(|| {
            format!(
                "cannot create the traces folder {} (choose another with --traces-dir)",
                args.traces_dir.display()
            )
        })?;
    }
    let endpoint = match (&args.otlp_endpoint, &receiver) {
        (Some(e), _) => e.clone(),
        (None, Some(r)) => r.grpc_endpoint(),
        (None, None) => unreachable!("a receiver is started when no endpoint is given"),
    };

    let mut children = Children::default();
    let mut view = TraceView {
        dir: args.traces_dir.clone(),
        display,
        printed: HashSet::new(),
        saved: 0,
        dropped_reported: 0,
        max_traces: args.max_traces,
    };
    let result = tokio::select! {
        result = session(&args, &endpoint, &mut children, receiver.as_ref(), &mut view) => result,
        _ = stop.wait() => {
            println!("\nstopping…");
            Ok(())
        }
    };

    children.stop().await;
    if let Some(r) = receiver {
        let dropped = r.store().dropped_traces();
        println!(
            "{} saved in {}: open one with `latency-lab trace --file FILE`, or in Jaeger's UI (Search → JSON File)",
            plural(view.saved, "trace"),
            view.dir.display(),
        );
        if dropped > 0 {
            println!(
                "{} dropped from memory (the oldest first; --max-traces {})",
                plural(dropped as usize, "trace"),
                args.max_traces
            );
        }
        r.shutdown().await;
    }
    result
}

/// Starts the services, sends the demo requests, then follows new traces
/// (unless `--demo-only`). Runs until it fails or is cancelled.
async fn session(
    args: &UpArgs,
    endpoint: &str,
    children: &mut Children,
    receiver: Option<&RunningReceiver>,
    view: &mut TraceView,
) -> anyhow::Result<()> {
    let user_latency = args.user_latency.to_string();
    let order_latency = args.order_latency.to_string();
    let users = children
        .start(
            "user-service",
            &[
                "--listen",
                &args.user_service.to_string(),
                "--latency",
                &user_latency,
            ],
            endpoint,
        )
        .await?;
    let orders = children
        .start(
            "order-service",
            &[
                "--listen",
                &args.order_service.to_string(),
                "--latency",
                &order_latency,
            ],
            endpoint,
        )
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
            endpoint,
        )
        .await?;
    println!();
    println!("latency-lab is up:");
    println!("  profile-aggregator  {aggregator}   (GET /user-profile/{{id}}?mode=sequential|concurrent|unlinked)");
    println!("  user-service        {users}");
    println!("  order-service       {orders}");
    println!("  spans               {endpoint}");
    if receiver.is_some() {
        println!("  traces saved in     {}", args.traces_dir.display());
    }
    println!();
    println!("try:  curl '{aggregator}/user-profile/42?mode=concurrent'");
    println!();

    if !args.no_demo {
        demo(args, &aggregator, receiver, view).await?;
    }
    if let Some(requests) = args.load {
        load_each_mode(args, &aggregator, receiver, view, requests).await?;
    }
    if args.demo_only {
        return Ok(());
    }
    match receiver {
        Some(r) => {
            println!("waiting for requests; each trace is printed when complete (Ctrl-C stops)");
            follow_new_traces(r, view).await;
            Ok(())
        }
        None => {
            println!("spans go to {endpoint} (Ctrl-C stops)");
            std::future::pending().await
        }
    }
}

/// One request per demo mode, each trace printed as soon as its spans are in.
async fn demo(
    args: &UpArgs,
    aggregator: &str,
    receiver: Option<&RunningReceiver>,
    view: &mut TraceView,
) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .context("cannot build an HTTP client")?;
    let mut trace_ids = Vec::new();
    for mode in &args.demo_modes {
        // Subscribe before the request so no span of it can slip past; spans
        // of traces already known (late ones of an earlier request) are not
        // this request's.
        let mut batches = receiver.map(|r| r.store().subscribe());
        let known: HashSet<String> = receiver
            .map(|r| r.store().trace_ids().into_iter().collect())
            .unwrap_or_default();
        let url = format!("{aggregator}/user-profile/42?mode={mode}");
        let response = client
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.context("demo response is not JSON")?;
        if !status.is_success() {
            bail!("demo request {url} failed with {status}: {body}");
        }
        let trace_id = body["trace_id"].as_str().unwrap_or_default().to_owned();
        println!(
            "{mode} request: {} ms, trace {trace_id}",
            body["timing"]["total_ms"]
        );
        trace_ids.push(trace_id);
        let Some(batches) = batches.as_mut() else {
            continue;
        };
        // Whatever the mode, one profile request makes seven spans:
        // aggregator server + 2 clients + 2 downstream servers + 2 db
        // spans — in one trace, or (unlinked) spread over three.
        let spans = new_spans(batches, &known, DEMO_SPANS)
            .await
            .context("the demo request's spans did not arrive")?;
        let mut traces: Vec<(String, Vec<CollectedSpan>)> = Vec::new();
        for span in spans {
            let id = span.trace_id.to_ascii_lowercase();
            match traces.iter_mut().find(|(t, _)| *t == id) {
                Some((_, group)) => group.push(span),
                None => traces.push((id, vec![span])),
            }
        }
        if traces.len() > 1 {
            println!("one request, {} traces:", traces.len());
        }
        for (_, spans) in traces {
            view.show(&spans);
        }
        view.report_dropped(receiver);
    }
    if receiver.is_none() {
        if let Some(id) = trace_ids.first() {
            println!();
            println!(
                "the spans went to {}: look the traces up there, e.g. latency-lab trace {id} --jaeger <Jaeger UI URL>",
                args.otlp_endpoint.as_deref().unwrap_or("the external endpoint")
            );
        }
    }
    Ok(())
}

/// `--load N`: N requests per demo mode; the distribution of each, and the
/// trace of its slowest request — the tail made concrete.
async fn load_each_mode(
    args: &UpArgs,
    aggregator: &str,
    receiver: Option<&RunningReceiver>,
    view: &mut TraceView,
    requests: u64,
) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .context("cannot build an HTTP client")?;
    let shape = load::LoadShape {
        requests,
        concurrency: args.load_concurrency,
        request_timeout: Duration::from_secs(30),
    };
    for mode in &args.demo_modes {
        let url = reqwest::Url::parse(&format!("{aggregator}/user-profile/42?mode={mode}"))
            .context("the aggregator's URL")?;
        let report = load::run(&client, &url, &[], &shape).await;
        let title = format!("{mode}, {} in flight", shape.concurrency);
        print!("{}", load::render(&report, &title, view.display.width));
        // Their traces are summed up above, not printed one by one.
        view.printed
            .extend(report.trace_ids.iter().map(|id| id.to_ascii_lowercase()));
        match (&report.slowest, receiver) {
            (Some((latency, Some(trace_id))), Some(r)) => {
                println!(
                    "  the slowest request ({}):",
                    load::format_duration(*latency)
                );
                match settled_trace(r, trace_id).await {
                    Some(spans) => view.show(&spans),
                    None => println!("  (its spans did not arrive; trace {trace_id})\n"),
                }
            }
            (Some((latency, Some(trace_id))), None) => println!(
                "  the slowest request ({}): trace {trace_id}\n",
                load::format_duration(*latency)
            ),
            _ => println!(),
        }
        view.report_dropped(receiver);
    }
    Ok(())
}

/// The spans of a trace once they stop arriving (at most [`DEMO_WAIT`]).
async fn settled_trace(receiver: &RunningReceiver, trace_id: &str) -> Option<Vec<CollectedSpan>> {
    let store = receiver.store();
    let deadline = Instant::now() + DEMO_WAIT;
    store.wait_for_trace(trace_id, 1, DEMO_WAIT).await.ok()?;
    let mut seen = 0;
    while Instant::now() < deadline {
        let spans = store.trace(trace_id);
        if !spans.is_empty() && spans.len() == seen {
            return Some(spans);
        }
        seen = spans.len();
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    Some(store.trace(trace_id)).filter(|s| !s.is_empty())
}

/// Collects, from the store's live feed, `n` spans of traces not in `known`.
async fn new_spans(
    batches: &mut broadcast::Receiver<Vec<CollectedSpan>>,
    known: &HashSet<String>,
    n: usize,
) -> anyhow::Result<Vec<CollectedSpan>> {
    let mut spans = Vec::new();
    let deadline = tokio::time::Instant::now() + DEMO_WAIT;
    while spans.len() < n {
        match tokio::time::timeout_at(deadline, batches.recv()).await {
            Ok(Ok(batch)) => spans.extend(
                batch
                    .into_iter()
                    .filter(|s| !known.contains(&s.trace_id.to_ascii_lowercase())),
            ),
            Ok(Err(broadcast::error::RecvError::Lagged(missed))) => {
                bail!("missed {missed} span batches (the machine is overloaded)")
            }
            Ok(Err(broadcast::error::RecvError::Closed)) => bail!("the receiver stopped"),
            Err(_) => bail!("{} of {n} spans within {DEMO_WAIT:?}", spans.len()),
        }
    }
    Ok(spans)
}

/// Prints each trace once it has been quiet for [`QUIET`].
async fn follow_new_traces(receiver: &RunningReceiver, view: &mut TraceView) {
    let store = receiver.store();
    let mut updates = store.subscribe();
    let mut last_seen: HashMap<String, Instant> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            batch = updates.recv() => {
                // A lagged feed only delays printing: the store has the spans.
                if let Ok(batch) = batch {
                    for span in batch {
                        let id = span.trace_id.to_ascii_lowercase();
                        if !view.printed.contains(&id) {
                            last_seen.insert(id, Instant::now());
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
                    let spans = store.trace(&id);
                    if spans.is_empty() {
                        // Evicted before it was printed: counted as dropped.
                        view.printed.insert(id);
                    } else {
                        view.show(&spans);
                    }
                }
                view.report_dropped(Some(receiver));
            }
        }
    }
}

/// Prints traces as waterfalls and saves each as Jaeger JSON.
struct TraceView {
    dir: PathBuf,
    display: Display,
    /// Trace ids already shown: each trace is printed once.
    printed: HashSet<String>,
    saved: usize,
    dropped_reported: u64,
    max_traces: u64,
}

impl TraceView {
    fn show(&mut self, spans: &[CollectedSpan]) {
        let Some(trace) = Trace::from_collected(spans) else {
            return;
        };
        self.printed.insert(trace.trace_id.clone());
        print!(
            "{}",
            waterfall::render(&trace, self.display.width, self.display.colour)
        );
        match jaeger_json::save(&self.dir, &trace) {
            Ok(path) => {
                self.saved += 1;
                println!("saved as {}", path.display());
            }
            Err(e) => eprintln!("warning: the trace was not saved: {e}"),
        }
        println!();
    }

    /// Says so when the bounded store has dropped more traces since last time.
    fn report_dropped(&mut self, receiver: Option<&RunningReceiver>) {
        let Some(dropped) = receiver.map(|r| r.store().dropped_traces()) else {
            return;
        };
        if dropped > self.dropped_reported {
            self.dropped_reported = dropped;
            println!(
                "the trace store is full: {} dropped so far, the oldest first (it keeps {}; see --max-traces)",
                plural(dropped as usize, "trace"),
                self.max_traces
            );
        }
    }
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// Ctrl-C (SIGINT) or SIGTERM, registered once up front.
struct Stop {
    interrupt: Signal,
    terminate: Signal,
}

impl Stop {
    fn install() -> std::io::Result<Stop> {
        Ok(Stop {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    async fn wait(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {},
            _ = self.terminate.recv() => {},
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
