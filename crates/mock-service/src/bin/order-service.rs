use clap::Parser;
use mock_service::cli::Args;
use mock_service::OrderService;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    Args::<OrderService>::parse().run().await?;
    Ok(())
}
