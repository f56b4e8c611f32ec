use clap::Parser;

/// jemalloc: gives memory freed after a burst back to the system
/// (`service_kit::allocator` says why and what was measured).
#[global_allocator]
static ALLOCATOR: service_kit::allocator::Jemalloc = service_kit::allocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    service_kit::allocator::return_freed_memory();
    profile_aggregator::cli::Args::parse().run().await?;
    Ok(())
}
