//! Command line of the user service, shared by its own binary and the
//! all-in-one runner.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::time::Duration;

use clap::Parser;
use mock_db::latency::{FaultRates, LatencySpec, Probability};
use mock_db::mock::{Mock, MockSettings};
use service_kit::cli::{parse_duration, CommonArgs};
use service_kit::{ServeError, Service};

use crate::Config;

/// Mock user service: GET /users/{id} after a simulated database wait.
#[derive(Debug, Clone, Parser)]
#[command(name = "user-service", version)]
pub struct Args {
    /// Address to listen on (port 0 picks a free port and prints it).
    #[arg(long, env = "USER_SERVICE_LISTEN", default_value = "127.0.0.1:5001")]
    pub listen: SocketAddr,
    /// Simulated database latency per lookup: a duration (100ms, 1.5s) or a
    /// model — uniform(50ms,150ms), normal(mean=100ms,stddev=20ms),
    /// lognormal(median=80ms,p99=900ms), pareto(scale=50ms,shape=1.5) —
    /// optionally followed by +spike(p=0.01,1s). Baggage
    /// `latency.user=SPEC` overrides it for one request.
    #[arg(long, env = "USER_SERVICE_LATENCY", default_value = "100ms")]
    pub latency: LatencySpec,
    /// Fraction of lookups (0 to 1) that fail with 503 after their delay.
    /// Baggage `fail.user=RATE` overrides it for one request.
    #[arg(long, env = "USER_SERVICE_ERROR_RATE", default_value = "0")]
    pub error_rate: Probability,
    /// Fraction of lookups (0 to 1) that never answer: the request ends when
    /// the client gives up. Baggage `hang.user=RATE` overrides it.
    #[arg(long, env = "USER_SERVICE_HANG_RATE", default_value = "0")]
    pub hang_rate: Probability,
    /// Simulated database connection pool: at most N lookups at once, the
    /// rest queue (traced as `db.pool.wait`). Unlimited when not set.
    #[arg(long, env = "USER_SERVICE_DB_POOL_SIZE")]
    pub db_pool_size: Option<NonZeroUsize>,
    /// Longest delay a lookup may be asked for: a longer `--latency` stops
    /// the service, a longer baggage override is refused with 400, and a
    /// longer random draw is cut to it.
    #[arg(long, env = "USER_SERVICE_MAX_DELAY", default_value = "30s", value_parser = parse_duration)]
    pub max_delay: Duration,
    #[command(flatten)]
    pub common: CommonArgs,
}

impl Args {
    pub async fn run(self) -> Result<(), ServeError> {
        let settings = MockSettings {
            latency: self.latency,
            faults: FaultRates {
                error: self.error_rate,
                hang: self.hang_rate,
            },
            db_pool_size: self.db_pool_size,
            max_delay: self.max_delay,
        };
        let mock =
            Mock::new(crate::NAME, settings).map_err(|e| ServeError::Build(e.to_string()))?;
        // Ctrl-C/SIGTERM also releases the requests the mock holds (hung or
        // queued for a connection), so they never delay the exit.
        let shutdown = mock.shutdown_token();
        let service = Service {
            name: crate::NAME.service,
            listen: self.listen,
            log_format: self.common.log_format,
        };
        service_kit::serve_until(service, shutdown, move || {
            Ok(crate::router(Config { mock }))
        })
        .await
    }
}
