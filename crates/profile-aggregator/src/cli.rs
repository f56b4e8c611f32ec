//! Command line of the aggregator, shared by its own binary and the
//! all-in-one runner.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use service_kit::cli::{parse_duration, CommonArgs};
use service_kit::{ServeError, Service};
use url::Url;

use crate::config::{parse_base_url, Dependency, TraceContextValidation};
use crate::{Config, Mode};

/// The profile aggregator: GET /user-profile/{id}?mode=sequential|concurrent|unlinked
#[derive(Debug, Clone, Parser)]
#[command(name = "profile-aggregator", version)]
pub struct Args {
    /// Address to listen on (port 0 picks a free port and prints it).
    #[arg(long, env = "AGGREGATOR_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Base URL of the user service.
    #[arg(long, env = "USER_SERVICE_URL", default_value = "http://127.0.0.1:5001", value_parser = parse_base_url)]
    pub user_service_url: Url,
    /// Base URL of the order service.
    #[arg(long, env = "ORDER_SERVICE_URL", default_value = "http://127.0.0.1:5002", value_parser = parse_base_url)]
    pub order_service_url: Url,
    /// Fan-out mode when a request has no ?mode=.
    #[arg(long, env = "AGGREGATOR_MODE", default_value = "sequential")]
    pub mode: Mode,
    /// Give up on the user service after this long (answer 504).
    #[arg(long, env = "USER_SERVICE_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    pub user_timeout: Duration,
    /// Give up on the order service after this long (answer 504).
    #[arg(long, env = "ORDER_SERVICE_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    pub order_timeout: Duration,
    /// Serve POST /verify-tracecontext, the endpoint the official W3C Trace
    /// Context test harness drives (off by default; calls loopback URLs only).
    #[arg(long, env = "TRACECONTEXT_VALIDATION")]
    pub tracecontext_validation: bool,
    /// Let /verify-tracecontext call hosts other than loopback. It then
    /// POSTs wherever its caller says: only for a harness on another machine.
    #[arg(
        long,
        env = "TRACECONTEXT_VALIDATION_ALLOW_REMOTE",
        requires = "tracecontext_validation"
    )]
    pub tracecontext_validation_allow_remote: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

impl Args {
    pub fn config(&self) -> Config {
        Config {
            users: Dependency {
                base_url: self.user_service_url.clone(),
                timeout: self.user_timeout,
            },
            orders: Dependency {
                base_url: self.order_service_url.clone(),
                timeout: self.order_timeout,
            },
            default_mode: self.mode,
            tracecontext_validation: match (
                self.tracecontext_validation,
                self.tracecontext_validation_allow_remote,
            ) {
                (false, _) => TraceContextValidation::Off,
                (true, false) => TraceContextValidation::LoopbackOnly,
                (true, true) => TraceContextValidation::AnyHost,
            },
        }
    }

    pub async fn run(self) -> Result<(), ServeError> {
        let config = self.config();
        let service = Service {
            name: "profile-aggregator",
            listen: self.listen,
            log_format: self.common.log_format,
        };
        service_kit::serve(service, move || {
            crate::router(config).map_err(|e| ServeError::Build(e.to_string()))
        })
        .await
    }
}
