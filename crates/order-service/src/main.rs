use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    order_service::cli::Args::parse().run().await?;
    Ok(())
}
