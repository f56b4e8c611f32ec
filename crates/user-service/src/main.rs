use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    user_service::cli::Args::parse().run().await?;
    Ok(())
}
