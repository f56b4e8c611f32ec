//! `latency-lab view`: the embedded receiver alone, as a local trace viewer
//! for any OpenTelemetry app. No suite starts: whatever arrives (gRPC,
//! HTTP protobuf or HTTP JSON, any service name) is printed as a waterfall
//! once complete, printed again when spans of it come late, saved as Jaeger
//! JSON, and summed up in the per-endpoint table from the metrics that
//! arrive. `up` is this plus the suite.

use anyhow::Context as _;
use clap::Args;
use trace_view::terminal::DisplayArgs;

use super::children::Stop;
use super::follow::follow_new_traces;
use super::view::TraceView;
use super::{closing_lines, start_receiver, stats, ReceiverArgs};

#[derive(Debug, Clone, Args)]
pub struct ViewArgs {
    #[command(flatten)]
    pub receiver: ReceiverArgs,
    #[command(flatten)]
    pub display: DisplayArgs,
}

pub async fn run(args: ViewArgs) -> anyhow::Result<()> {
    let mut stop = Stop::install().context("cannot install the Ctrl-C handler")?;
    let mut stats_triggers = stats::Triggers::install(args.receiver.stats_every)
        .context("cannot install the SIGUSR1 handler")?;
    let receiver = start_receiver(&args.receiver).await?;
    let mut view = TraceView::new(
        args.receiver.traces_dir.clone(),
        args.display.resolve(),
        args.receiver.max_traces,
    );
    println!("latency-lab view: receiving OTLP from any OpenTelemetry app");
    println!("  OTLP/gRPC           {}", receiver.grpc_endpoint());
    println!(
        "  OTLP/HTTP           {}   (protobuf or JSON)",
        receiver.http_endpoint()
    );
    println!(
        "  traces saved in     {}",
        args.receiver.traces_dir.display()
    );
    println!();
    println!(
        "point an app here:  OTEL_EXPORTER_OTLP_ENDPOINT={}",
        receiver.http_endpoint()
    );
    if let Some((upstream, _)) = receiver.forwarded() {
        println!("everything received is forwarded to {upstream}");
    }
    println!("each trace is printed when complete, again if spans of it come late (Ctrl-C stops)");
    println!();
    tokio::select! {
        () = follow_new_traces(&receiver, &mut view, &mut stats_triggers, args.receiver.timing()) => {}
        _ = stop.wait() => println!("\nstopping…"),
    }
    if !receiver.metrics().is_empty() {
        stats::print(&receiver, &mut view, "at exit");
    }
    closing_lines(&receiver, &view, args.receiver.max_traces).await;
    receiver.shutdown().await;
    Ok(())
}
