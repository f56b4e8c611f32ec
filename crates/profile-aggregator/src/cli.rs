//! Command line of the aggregator, shared by its own binary and the
//! all-in-one runner.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use service_kit::cli::{parse_duration, CommonArgs};
use service_kit::{ServeError, Service};
use url::Url;

use crate::config::{parse_base_url, Dependency};
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
