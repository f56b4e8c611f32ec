//! The flags of `latency-lab up`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use mock_db::latency::LatencySpec;
use trace_view::terminal::DisplayArgs;

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
