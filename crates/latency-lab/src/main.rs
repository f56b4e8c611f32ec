//! `latency-lab`: the whole suite from one binary.

use clap::{Parser, Subcommand};

mod tree;
mod up;

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
    /// and print every trace they produce. The default command.
    Up(up::UpArgs),
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
    User(user_service::cli::Args),
    /// Mock order service: GET /users/{id}/orders.
    #[command(name = "order-service")]
    Order(order_service::cli::Args),
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        None => up::run(Cli::parse_from(["latency-lab", "up"]).up_args()).await,
        Some(Command::Up(args)) => up::run(args).await,
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
