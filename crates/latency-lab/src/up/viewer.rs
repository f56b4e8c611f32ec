//! `latency-lab view`: the embedded receiver alone, as a local trace viewer
//! for any OpenTelemetry app. No suite starts: whatever arrives (gRPC,
//! HTTP protobuf or HTTP JSON, any service name) is printed as a waterfall
//! once complete, printed again when spans of it come late, saved as Jaeger
//! JSON, and summed up in the per-endpoint table from the metrics that
//! arrive. `up` is this plus the suite.

use std::io::IsTerminal as _;

use anyhow::Context as _;
use clap::Args;
use trace_view::terminal::DisplayArgs;

use super::children::Stop;
use super::follow::follow_new_traces;
use super::tui::Tui;
use super::view::TraceView;
use super::{closing_lines, start_receiver, stats, ReceiverArgs};

#[derive(Debug, Clone, Args)]
pub struct ViewArgs {
    /// Print each trace as a waterfall, as `up` does, instead of the
    /// interactive list (which runs only when output is a terminal).
    #[arg(long)]
    pub plain: bool,
    /// Jaeger's UI, which the interactive view's `o` opens a trace in (with
    /// --forward to that Jaeger, the trace is there too).
    #[arg(
        long,
        env = "LATENCY_LAB_JAEGER_URL",
        default_value = "http://localhost:16686"
    )]
    pub jaeger_url: String,
    #[command(flatten)]
    pub receiver: ReceiverArgs,
    #[command(flatten)]
    pub display: DisplayArgs,
}

/// Where to send, printed before the plain output.
fn banner(receiver: &otlp_receiver::RunningReceiver, args: &ViewArgs) {
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
    if std::io::stdout().is_terminal() && !args.plain {
        let banner = format!(
            "receiving OTLP: gRPC {} · HTTP {} (OTEL_EXPORTER_OTLP_ENDPOINT) · saved in {}",
            receiver.grpc_endpoint(),
            receiver.http_endpoint(),
            args.receiver.traces_dir.display()
        );
        let mut screen = Tui::start(receiver.metrics().clone(), args.jaeger_url.clone(), banner);
        view.send_to_screen(screen.sender());
        let closed = tokio::select! {
            () = follow_new_traces(&receiver, &mut view, &mut stats_triggers, args.receiver.timing()) => Ok(()),
            closed = screen.finished() => closed,
            _ = stop.wait() => screen.close().await,
        };
        closed.context("the interactive view")?;
        println!(
            "latency-lab view: received on {} (gRPC) and {} (HTTP)",
            receiver.grpc_endpoint(),
            receiver.http_endpoint()
        );
    } else {
        banner(&receiver, &args);
        tokio::select! {
            () = follow_new_traces(&receiver, &mut view, &mut stats_triggers, args.receiver.timing()) => {}
            _ = stop.wait() => println!("\nstopping…"),
        }
    }
    let mut view = view.into_printing();
    if !receiver.metrics().is_empty() {
        stats::print(&receiver, &mut view, "at exit");
    }
    closing_lines(&receiver, &view, args.receiver.max_traces).await;
    receiver.shutdown().await;
    Ok(())
}
