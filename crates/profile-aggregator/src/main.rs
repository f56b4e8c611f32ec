use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    profile_aggregator::cli::Args::parse().run().await?;
    Ok(())
}
