use clap::Parser;
use mock_service::cli::Args;
use mock_service::UserService;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    Args::<UserService>::parse().run().await?;
    Ok(())
}
