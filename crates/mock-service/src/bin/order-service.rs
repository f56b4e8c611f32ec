use clap::Parser;
use mock_service::cli::Args;
use mock_service::OrderService;

/// jemalloc: gives memory freed after a burst back to the system
/// (`service_kit::allocator` says why and what was measured).
#[global_allocator]
static ALLOCATOR: service_kit::allocator::Jemalloc = service_kit::allocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    service_kit::allocator::return_freed_memory();
    Args::<OrderService>::parse().run().await?;
    Ok(())
}
