//! `latency-lab up`: the whole suite on one machine, no Docker, no collector.
//!
//! Starts the three services as real child processes (this same binary,
//! re-executed as `serve <service>`), so every hop is a real HTTP hop and
//! every service exports under its own `service.name`. Spans go to the
//! embedded OTLP receiver (or to `--otlp-endpoint`); each trace is printed
//! as a waterfall once it is complete, and saved as Jaeger JSON. Their
//! metrics go there too: a per-endpoint latency table is printed at exit,
//! after `--load`, and on demand.
//!
//! * [`args`]: the flags.
//! * [`preflight`]: the ports and the endpoint, checked before anything starts.
//! * this module: the session — start, demo, `--load`, follow, stop.
//! * [`follow`]: which spans and traces arrived, and when a trace is complete.
//! * [`view`]: printing and saving each trace once.
//! * [`stats`]: the per-endpoint latency table from the exported histograms.
//! * [`children`]: the child processes and the signals that stop them.

mod args;
pub(crate) mod children;
pub(crate) mod completion;
pub(crate) mod follow;
mod preflight;
pub(crate) mod stats;
mod tui;
mod view;
pub(crate) mod viewer;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context as _};
use otlp_receiver::{ReceiverConfig, RunningReceiver};
use tokio_util::sync::CancellationToken;
use trace_view::TraceId;

use crate::load;
pub use args::{ReceiverArgs, UpArgs};
use children::{Children, Stop};
use follow::{follow_new_traces, known_traces, request_traces, settled_trace};
use view::{plural, TraceView};
pub use viewer::ViewArgs;

pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    // Take over Ctrl-C and SIGTERM before anything starts: from here on they
    // stop the children and end cleanly instead of killing only this process.
    let mut stop = Stop::install().context("cannot install the Ctrl-C handler")?;
    let mut stats_triggers = stats::Triggers::install(args.receiver.stats_every)
        .context("cannot install the SIGUSR1 handler")?;
    if let (Some(endpoint), Some(_)) = (&args.otlp_endpoint, &args.receiver.forward) {
        bail!("--forward sends on what the embedded receiver gets, and --otlp-endpoint {endpoint} replaces that receiver: give one of them");
    }
    let services = check_before_start(&args).await?;
    let display = args.display.resolve();
    let receiver = match &args.otlp_endpoint {
        Some(_) => None,
        None => Some(start_receiver(&args.receiver).await?),
    };
    let endpoint = match (&args.otlp_endpoint, &receiver) {
        (Some(e), _) => e.clone(),
        (None, Some(r)) => r.grpc_endpoint(),
        (None, None) => unreachable!("a receiver is started when no endpoint is given"),
    };

    let mut children = Children::default();
    let mut view = TraceView::new(
        args.receiver.traces_dir.clone(),
        display,
        args.receiver.max_traces,
    );
    let result = tokio::select! {
        result = session(&args, services, &endpoint, &mut children, receiver.as_ref(), &mut view, &mut stats_triggers) => result,
        _ = stop.wait() => {
            println!("\nstopping…");
            Ok(())
        }
    };

    children.stop().await;
    if let Some(r) = receiver {
        // The children flushed their metrics on the way out: the table is
        // complete now.
        if result.is_ok() {
            stats::print(&r, &mut view, "at exit");
        }
        closing_lines(&r, &view, args.receiver.max_traces).await;
        r.shutdown().await;
    }
    result
}

/// Starts the embedded receiver on `--otlp-grpc`/`--otlp-http` and makes
/// the traces folder.
async fn start_receiver(args: &ReceiverArgs) -> anyhow::Result<RunningReceiver> {
    let receiver = match otlp_receiver::start(ReceiverConfig {
        grpc_addr: args.otlp_grpc,
        http_addr: args.otlp_http,
        max_traces: usize::try_from(args.max_traces).unwrap_or(usize::MAX),
        forward_to: args.forward.clone(),
    })
    .await
    {
        Ok(receiver) => receiver,
        Err(e @ otlp_receiver::ReceiverError::Forward { .. }) => bail!("--forward: {e}"),
        Err(e) => return Err(e).context("cannot start the embedded OTLP receiver (is a collector already on 4317/4318? use --otlp-grpc/--otlp-http to move it, or --otlp-endpoint to send there)"),
    };
    std::fs::create_dir_all(&args.traces_dir).with_context(|| {
        format!(
            "cannot create the traces folder {} (choose another with --traces-dir)",
            args.traces_dir.display()
        )
    })?;
    Ok(receiver)
}

/// What became of the traces, at exit: saved, printed again, cut short,
/// dropped.
async fn closing_lines(receiver: &RunningReceiver, view: &TraceView, max_traces: u64) {
    println!(
        "{} saved in {}: open one with `latency-lab trace --file FILE`, or in Jaeger's UI (Search → JSON File)",
        plural(view.saved, "trace"),
        view.dir.display(),
    );
    if view.amended > 0 {
        println!(
            "{} printed again because spans of them came late (their files hold every span)",
            plural(view.amended, "trace")
        );
    }
    if view.cut_short > 0 {
        println!(
            "{} printed before a parent span came (--trace-wait)",
            plural(view.cut_short, "trace")
        );
    }
    let dropped = receiver.store().dropped_traces();
    if dropped > 0 {
        println!(
            "{} dropped from memory (the oldest first; --max-traces {max_traces})",
            plural(dropped as usize, "trace"),
        );
    }
    // What was received last is still on its way upstream.
    receiver.flush_forwarding(FORWARD_FLUSH).await;
    if let Some((upstream, stats)) = receiver.forwarded() {
        println!(
            "forwarded to {upstream}: {} accepted, {} failed, {} dropped (queue full)",
            plural(stats.sent as usize, "export"),
            stats.failed,
            stats.dropped
        );
    }
}

/// How long the exit waits for exports still on their way to `--forward`.
const FORWARD_FLUSH: Duration = Duration::from_secs(5);

/// How long the table after `--load` waits for the services' next metric
/// export to count every request sent.
const METRICS_WAIT: Duration = Duration::from_secs(20);

/// Where the three services listen, once their ports are checked.
#[derive(Debug, Clone, Copy)]
struct ServiceAddrs {
    user: SocketAddr,
    order: SocketAddr,
    aggregator: SocketAddr,
}

/// Probes every port and `--otlp-endpoint` before anything starts (see
/// [`preflight`]); a default service port that is taken moves to a free
/// one, said in one line each.
async fn check_before_start(args: &UpArgs) -> anyhow::Result<ServiceAddrs> {
    let listens = args.listens();
    let decisions = preflight::check_ports(&listens)?;
    for (listen, decision) in listens.iter().zip(&decisions) {
        if let preflight::Decision::Moved { taken, .. } = decision {
            println!("{}", preflight::moved_note(listen, *taken));
        }
    }
    if let Some(endpoint) = &args.otlp_endpoint {
        preflight::check_endpoint(endpoint).await?;
    }
    // `listens` starts with the user, order and aggregator services.
    Ok(ServiceAddrs {
        user: decisions[0].addr(),
        order: decisions[1].addr(),
        aggregator: decisions[2].addr(),
    })
}

/// Starts the services, sends the demo requests, then follows new traces
/// (unless `--demo-only`). Runs until it fails or is cancelled.
async fn session(
    args: &UpArgs,
    services: ServiceAddrs,
    endpoint: &str,
    children: &mut Children,
    receiver: Option<&RunningReceiver>,
    view: &mut TraceView,
    stats_triggers: &mut stats::Triggers,
) -> anyhow::Result<()> {
    let user_latency = args.user_latency.to_string();
    let order_latency = args.order_latency.to_string();
    let order_pool = args.order_db_pool.map(|n| n.to_string());
    let mut order_args = vec![
        "--listen".to_owned(),
        services.order.to_string(),
        "--latency".to_owned(),
        order_latency,
    ];
    if let Some(pool) = order_pool {
        order_args.extend(["--db-pool-size".to_owned(), pool]);
    }
    let order_args: Vec<&str> = order_args.iter().map(String::as_str).collect();
    let users = children
        .start(
            "user-service",
            &[
                "--listen",
                &services.user.to_string(),
                "--latency",
                &user_latency,
            ],
            endpoint,
        )
        .await?;
    let orders = children
        .start("order-service", &order_args, endpoint)
        .await?;
    let aggregator = children
        .start(
            "profile-aggregator",
            &[
                "--listen",
                &services.aggregator.to_string(),
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
    if let Some(r) = receiver {
        // Where another app sends: OTEL_EXPORTER_OTLP_ENDPOINT takes this one.
        println!("  OTLP/HTTP           {}", r.http_endpoint());
        println!(
            "  traces saved in     {}",
            args.receiver.traces_dir.display()
        );
    }
    println!();
    println!("try:  curl '{aggregator}/user-profile/42?mode=concurrent'");
    println!();

    // Requests `up` sent to the aggregator, to know when its metrics count them.
    let mut sent = 0;
    let load_loops = args.load_loops().map_err(anyhow::Error::msg)?;
    if !args.no_demo {
        demo(args, &aggregator, receiver, view).await?;
        sent += args.demo_modes.len() as u64;
    }
    if let Some(requests) = args.load {
        load_each_mode(args, &load_loops, &aggregator, receiver, view, requests).await?;
        sent += requests * (args.demo_modes.len() * load_loops.len()) as u64;
        // With --demo-only the table follows at once, at exit.
        if let (Some(r), false) = (receiver, args.demo_only) {
            if !stats::wait_for_requests(r, sent, METRICS_WAIT).await {
                println!(
                    "(the services' metrics do not count all {sent} requests yet: they export every few seconds)"
                );
            }
            stats::print(r, view, "after --load");
        }
    }
    if args.demo_only {
        return Ok(());
    }
    match receiver {
        Some(r) if args.no_follow => {
            println!("waiting for requests; traces are not printed (--no-follow; Ctrl-C stops)");
            loop {
                let when = stats_triggers.next().await;
                stats::print(r, view, when);
            }
        }
        Some(r) => {
            println!("waiting for requests; each trace is printed when complete (Ctrl-C stops)");
            follow_new_traces(r, view, stats_triggers, args.receiver.timing()).await;
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
        let known: HashSet<TraceId> = receiver.map(known_traces).unwrap_or_default();
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
        // `null` when the aggregator's span is not sampled.
        let trace_id = body["trace_id"]
            .as_str()
            .and_then(|id| TraceId::parse(id).ok());
        println!(
            "{mode} request: {} ms, trace {}",
            body["timing"]["total_ms"],
            trace_id.map(|id| id.to_string()).unwrap_or_default()
        );
        trace_ids.extend(trace_id);
        let Some(batches) = batches.as_mut() else {
            continue;
        };
        let traces = request_traces(batches, &known)
            .await
            .context("the demo request's spans did not arrive")?;
        if traces.len() > 1 {
            println!("one request, {} traces:", traces.len());
        }
        for spans in traces {
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

/// `--load N`: N requests per demo mode and loop — an open loop at
/// `--load-rate`, a closed loop with `--load-concurrency`, or both — the
/// distribution of each, and the trace of its slowest request: the tail
/// made concrete.
async fn load_each_mode(
    args: &UpArgs,
    loops: &[load::engine::Loop],
    aggregator: &str,
    receiver: Option<&RunningReceiver>,
    view: &mut TraceView,
    requests: u64,
) -> anyhow::Result<()> {
    let client = load::client()?;
    for mode in &args.demo_modes {
        let url = reqwest::Url::parse(&format!("{aggregator}/user-profile/42?mode={mode}"))
            .context("the aggregator's URL")?;
        for loop_ in loops {
            let plan = load::engine::Plan {
                loop_: *loop_,
                variants: load::variants::variants(&url, &[], &[]),
                requests: Some(requests),
                duration: None,
                warmup: load::engine::Warmup::NONE,
                request_timeout: Duration::from_secs(30),
                observer: None,
            };
            // Ctrl-C is `up`'s: it cancels the whole session.
            let run = load::engine::run(&client, &plan, CancellationToken::new())
                .await
                .with_context(|| format!("--load: no request to {url} was answered"))?;
            let report = load::LoadReport::of(&run, 0);
            let title = match loop_ {
                load::engine::Loop::Closed { concurrency } => {
                    format!("{mode}, {concurrency} in flight")
                }
                load::engine::Loop::Open { rate, .. } => format!("{mode}, open loop at {rate}"),
            };
            print!("{}", load::render(&report, &title, view.display.width));
            println!("{}", load::pacing_line(&run));
            // Their traces are summed up above, not printed one by one.
            view.summarize(report.trace_ids.iter().copied());
            match (&report.slowest, receiver) {
                (Some((latency, Some(trace_id))), Some(r)) => {
                    println!(
                        "  the slowest request ({}):",
                        load::format_duration(*latency)
                    );
                    match settled_trace(r, *trace_id).await {
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
    }
    Ok(())
}
