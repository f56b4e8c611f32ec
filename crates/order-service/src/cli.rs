//! Command line of the order service, shared by its own binary and the
//! all-in-one runner.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use service_kit::cli::{parse_duration, CommonArgs};
use service_kit::{ServeError, Service};

use crate::Config;

/// Mock order service: GET /users/{id}/orders after a simulated database wait.
#[derive(Debug, Clone, Parser)]
#[command(name = "order-service", version)]
pub struct Args {
    /// Address to listen on (port 0 picks a free port and prints it).
    #[arg(long, env = "ORDER_SERVICE_LISTEN", default_value = "127.0.0.1:5002")]
    pub listen: SocketAddr,
    /// Simulated database latency per lookup, e.g. 100ms.
    #[arg(long, env = "ORDER_SERVICE_LATENCY", default_value = "200ms", value_parser = parse_duration)]
    pub latency: Duration,
    #[command(flatten)]
    pub common: CommonArgs,
}

impl Args {
    pub async fn run(self) -> Result<(), ServeError> {
        let config = Config {
            latency: self.latency,
        };
        let service = Service {
            name: "order-service",
            listen: self.listen,
            log_format: self.common.log_format,
        };
        service_kit::serve(service, move || Ok(crate::router(config))).await
    }
}
