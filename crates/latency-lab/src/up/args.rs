//! The flags of `latency-lab up`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use mock_db::latency::LatencySpec;
use trace_view::terminal::DisplayArgs;

use super::preflight::{Listen, Otlp};

#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// Aggregator listen address [default: 127.0.0.1:8080, or a free port
    /// when 8080 is taken].
    #[arg(long, env = "LATENCY_LAB_AGGREGATOR", value_name = "ADDR")]
    pub aggregator: Option<SocketAddr>,
    /// User service listen address [default: 127.0.0.1:5001, or a free port
    /// when 5001 is taken].
    #[arg(long, env = "LATENCY_LAB_USER_SERVICE", value_name = "ADDR")]
    pub user_service: Option<SocketAddr>,
    /// Order service listen address [default: 127.0.0.1:5002, or a free port
    /// when 5002 is taken].
    #[arg(long, env = "LATENCY_LAB_ORDER_SERVICE", value_name = "ADDR")]
    pub order_service: Option<SocketAddr>,
    /// Send spans to this external OTLP/gRPC endpoint (a collector or Jaeger)
    /// instead of the embedded receiver; traces are then not printed here
    /// (only their ids: see `latency-lab trace ID --jaeger URL`). `up` stops
    /// at once when nothing listens there.
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// Do not send the two demo requests at start-up.
    #[arg(long)]
    pub no_demo: bool,
    /// Send the demo requests, print their traces, stop everything and exit
    /// (for scripts and the docs' tests).
    #[arg(long, conflicts_with = "no_demo")]
    pub demo_only: bool,
    /// Keep running but neither print nor save each new trace (the latency
    /// table still comes at exit, with --stats-every and on SIGUSR1): for
    /// long runs under load, such as scripts/soak.sh, where a waterfall per
    /// request would be the busiest thing on the machine.
    #[arg(long, conflicts_with = "demo_only")]
    pub no_follow: bool,
    /// The requests sent at start-up, one per mode, in order.
    #[arg(long, value_delimiter = ',', default_value = "sequential,concurrent")]
    pub demo_modes: Vec<profile_aggregator::Mode>,
    /// After the demo, send this many requests in each demo mode (an open
    /// loop at `--load-rate`) and print the latency distribution (p50 …
    /// p99.9, a histogram) and the waterfall of the slowest request.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub load: Option<u64>,
    /// `--load`'s rate in requests per second (an open loop: sent on schedule
    /// whatever the answers do, latency counted from when each was due).
    #[arg(long, default_value = "50", value_parser = crate::load::schedule::parse_rate)]
    pub load_rate: crate::load::schedule::Rate,
    /// Make `--load` a closed loop instead: this many requests in flight,
    /// each sent when the previous one's answer is in (with `--load-loop
    /// both`, the closed loop's size) [default with `--load-loop closed|both`: 4].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub load_concurrency: Option<u64>,
    /// `--load`'s pacing: `open` (at `--load-rate`), `closed` (`--load-concurrency`
    /// in flight), or `both`, one after the other for each mode, to compare
    /// [default: closed with `--load-concurrency`, open otherwise].
    #[arg(long, value_enum)]
    pub load_loop: Option<LoadLoop>,
    /// The order service's simulated database pool: at most N queries at
    /// once, the rest wait (`db.pool.wait`); unlimited when not set. A slow
    /// query then holds up everyone behind it — a stall.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub order_db_pool: Option<u64>,
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
    pub receiver: ReceiverArgs,
    #[command(flatten)]
    pub display: DisplayArgs,
}

/// The embedded receiver's flags and how it follows traces: `up`'s and
/// `view`'s.
#[derive(Debug, Clone, Args)]
pub struct ReceiverArgs {
    /// Embedded OTLP/gRPC receiver address (never moved when taken: every
    /// SDK sends to 4317 by default).
    #[arg(
        long,
        env = "LATENCY_LAB_OTLP_GRPC",
        default_value = "127.0.0.1:4317",
        value_name = "ADDR"
    )]
    pub otlp_grpc: SocketAddr,
    /// Embedded OTLP/HTTP receiver address (never moved when taken: every
    /// SDK sends to 4318 by default).
    #[arg(
        long,
        env = "LATENCY_LAB_OTLP_HTTP",
        default_value = "127.0.0.1:4318",
        value_name = "ADDR"
    )]
    pub otlp_http: SocketAddr,
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
    /// While following traces, print the per-endpoint latency table (rate,
    /// errors, p50/p90/p99, max, from the histograms the services export)
    /// this often, e.g. 30s. The table is also printed at exit, after
    /// `up --load`, and whenever the process gets SIGUSR1 (`kill -USR1
    /// PID`); `view`'s interactive screen shows it on `t` instead.
    #[arg(long, value_name = "DURATION", value_parser = parse_stats_every)]
    pub stats_every: Option<Duration>,
    /// A trace is printed once no span of it has come for this long and it
    /// is whole (a root, and every parent its spans name). It grows by
    /// itself when spans come late (an exporter batching for seconds).
    #[arg(long, default_value = "1500ms", value_name = "DURATION", value_parser = service_kit::cli::parse_duration)]
    pub trace_quiet: Duration,
    /// A trace that is not whole (its root, or a parent, has not come) is
    /// printed anyway once no span of it has come for this long, and said
    /// to be cut short. Every OpenTelemetry SDK batches spans for 5 s by
    /// default: keep this above that.
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = service_kit::cli::parse_duration)]
    pub trace_wait: Duration,
    /// Also send everything received (spans and metrics) on to this OTLP/HTTP
    /// endpoint, e.g. a collector or Jaeger at http://localhost:4318
    /// (`/v1/traces` and `/v1/metrics` are added): the OTLP requests as
    /// received, not rebuilt from what the lab keeps.
    #[arg(long, value_name = "URL")]
    pub forward: Option<String>,
}

impl ReceiverArgs {
    /// `--trace-quiet` and `--trace-wait`.
    pub(super) fn timing(&self) -> super::follow::Timing {
        super::follow::Timing {
            quiet: self.trace_quiet,
            max_wait: self.trace_wait,
        }
    }
}

/// `--load-loop`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LoadLoop {
    Open,
    Closed,
    Both,
}

impl UpArgs {
    /// The loops `--load` runs for each mode, in order.
    pub(super) fn load_loops(&self) -> Result<Vec<crate::load::engine::Loop>, String> {
        use crate::load::engine::Loop;
        let open = Loop::Open {
            rate: self.load_rate,
            max_in_flight: 256,
        };
        let closed = Loop::Closed {
            concurrency: self.load_concurrency.unwrap_or(4),
        };
        let chosen = match self.load_loop {
            Some(chosen) => chosen,
            None if self.load_concurrency.is_some() => LoadLoop::Closed,
            None => LoadLoop::Open,
        };
        if chosen == LoadLoop::Open && self.load_concurrency.is_some() {
            return Err("--load-concurrency makes a closed loop: use --load-loop closed or both, or drop it".to_owned());
        }
        if self.load_rate.is_ramp() {
            return Err(
                "--load-rate is one rate (a ramp needs a duration: use `latency-lab load`)"
                    .to_owned(),
            );
        }
        Ok(match chosen {
            LoadLoop::Open => vec![open],
            LoadLoop::Closed => vec![closed],
            LoadLoop::Both => vec![open, closed],
        })
    }
}

/// `--stats-every`: a duration of at least a second (the services export
/// their metrics every few seconds; a faster table would repeat itself).
fn parse_stats_every(value: &str) -> Result<Duration, String> {
    let every = service_kit::cli::parse_duration(value)?;
    if every < Duration::from_secs(1) {
        return Err(format!("{value:?} is too short: at least 1s"));
    }
    Ok(every)
}

/// The service addresses used when none is given; a taken one is swapped
/// for a free port (see `preflight`).
const DEFAULT_AGGREGATOR: SocketAddr = local(8080);
const DEFAULT_USER_SERVICE: SocketAddr = local(5001);
const DEFAULT_ORDER_SERVICE: SocketAddr = local(5002);

const fn local(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
}

impl UpArgs {
    /// Every address `up` listens on, in start order: the three services,
    /// then the embedded receiver's two (only when it runs).
    pub(super) fn listens(&self) -> Vec<Listen> {
        let service = |who, flag, var, given: Option<SocketAddr>, default| Listen {
            who,
            flag,
            var,
            addr: given.unwrap_or(default),
            movable: given.is_none(),
            otlp: None,
        };
        let receiver = |who, flag, var, addr, otlp| Listen {
            who,
            flag,
            var,
            addr,
            movable: false,
            otlp: Some(otlp),
        };
        let mut listens = vec![
            service(
                "the user-service",
                "--user-service",
                "LATENCY_LAB_USER_SERVICE",
                self.user_service,
                DEFAULT_USER_SERVICE,
            ),
            service(
                "the order-service",
                "--order-service",
                "LATENCY_LAB_ORDER_SERVICE",
                self.order_service,
                DEFAULT_ORDER_SERVICE,
            ),
            service(
                "the profile-aggregator",
                "--aggregator",
                "LATENCY_LAB_AGGREGATOR",
                self.aggregator,
                DEFAULT_AGGREGATOR,
            ),
        ];
        if self.otlp_endpoint.is_none() {
            listens.push(receiver(
                "the embedded OTLP/gRPC receiver",
                "--otlp-grpc",
                "LATENCY_LAB_OTLP_GRPC",
                self.receiver.otlp_grpc,
                Otlp::Grpc,
            ));
            listens.push(receiver(
                "the embedded OTLP/HTTP receiver",
                "--otlp-http",
                "LATENCY_LAB_OTLP_HTTP",
                self.receiver.otlp_http,
                Otlp::Http,
            ));
        }
        listens
    }
}
