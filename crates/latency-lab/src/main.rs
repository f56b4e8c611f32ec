//! `latency-lab`: the whole suite from one binary.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod explain;
mod load;
mod scenario;
mod trace_cmd;
mod up;

/// jemalloc: gives memory freed after a burst back to the system
/// (`service_kit::allocator` says why and what was measured).
#[global_allocator]
static ALLOCATOR: service_kit::allocator::Jemalloc = service_kit::allocator::Jemalloc;

/// latency-lab: three traced HTTP services that show where request time goes.
#[derive(Debug, Parser)]
#[command(name = "latency-lab", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the user, order and aggregator services (each its own process)
    /// and print every trace they produce as a waterfall. The default command.
    Up(up::UpArgs),
    /// Receive OTLP from any OpenTelemetry app (no suite started) and print
    /// each trace as a waterfall once complete, again if spans come late;
    /// save each as Jaeger JSON.
    View(up::ViewArgs),
    /// Print the waterfall of a trace from a running Jaeger (`trace ID
    /// --jaeger URL`) or from a Jaeger JSON file (`trace --file FILE`).
    Trace(trace_cmd::TraceArgs),
    /// Send a bounded load to a URL and print the latency distribution
    /// (p50, p90, p99, p99.9, max, histogram) and the slowest trace.
    Load(load::LoadArgs),
    /// Why the slow requests are slow: over many saved traces, each
    /// operation's share of the critical path in the typical requests
    /// against the tail.
    Explain(explain::ExplainArgs),
    /// Run a lesson's situation live and check its claim: `scenario` lists
    /// them, `scenario NAME` runs one and ends with the verdict.
    Scenario(scenario::ScenarioArgs),
    /// Run one service in this process (what `up` starts three times).
    Serve {
        #[command(subcommand)]
        service: Service,
    },
}

#[derive(Debug, Subcommand)]
enum Service {
    /// Mock user service: GET /users/{id}.
    #[command(name = "user-service")]
    User(mock_service::cli::Args<mock_service::UserService>),
    /// Mock order service: GET /users/{id}/orders.
    #[command(name = "order-service")]
    Order(mock_service::cli::Args<mock_service::OrderService>),
    /// The profile aggregator: GET /user-profile/{id}.
    #[command(name = "profile-aggregator")]
    Aggregator(profile_aggregator::cli::Args),
}

impl Cli {
    /// `latency-lab` alone means `latency-lab up` with its defaults.
    fn up_args(self) -> up::UpArgs {
        match self.command {
            Some(Command::Up(args)) => args,
            _ => unreachable!("parsed from `latency-lab up`"),
        }
    }
}

/// Errors end the program as one line, `error: what: why: …`, and exit
/// status 1 (clap's own usage errors exit with 2).
#[tokio::main]
async fn main() -> ExitCode {
    service_kit::allocator::return_freed_memory();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => up::run(Cli::parse_from(["latency-lab", "up"]).up_args()).await,
        Some(Command::Up(args)) => up::run(args).await,
        Some(Command::View(args)) => up::viewer::run(args).await,
        Some(Command::Trace(args)) => trace_cmd::run(args).await,
        Some(Command::Load(args)) => load::command(args).await,
        Some(Command::Scenario(args)) => scenario::command(args).await,
        Some(Command::Explain(args)) => explain::command(args).await,
        Some(Command::Serve { service }) => {
            match service {
                Service::User(args) => args.run().await?,
                Service::Order(args) => args.run().await?,
                Service::Aggregator(args) => args.run().await?,
            }
            Ok(())
        }
    }
}
