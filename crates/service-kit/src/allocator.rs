//! The memory allocator of every service process: jemalloc, with its
//! background thread on, so memory freed after a burst goes back to the
//! system instead of staying in the process.
//!
//! Measured on the debug build, four bursts of 1000 concurrent requests,
//! the aggregator's RSS ten seconds after each: with glibc's malloc
//! 22 → 95 → 113 → 118 → 120 MB, of which `malloc_trim(0)` then gave back
//! 80 MB — freed memory kept, not live data (`MALLOC_ARENA_MAX=2` did not
//! change it); with jemalloc and its background thread 26 → 44 → 42 → 43 →
//! 44 MB, 36 MB twenty seconds later. jemalloc without the thread purges
//! only while allocating, so an idle process kept its peak (44 → 67 → 44 →
//! 87 MB); mimalloc kept more still (36 → 171 → 140 → 132 → 128 MB).
//! `tikv-jemallocator` is the maintained binding (TiKV's, and what rustc
//! itself links). Each binary declares it as its global allocator:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOCATOR: service_kit::allocator::Jemalloc = service_kit::allocator::Jemalloc;
//! ```
//!
//! and calls [`return_freed_memory`] first thing in `main`.

pub use tikv_jemallocator::Jemalloc;

/// Starts jemalloc's background thread, which purges freed pages after its
/// decay time (10 s) whether or not the process allocates again. Without it
/// jemalloc purges only on allocation, so a process gone idle after a burst
/// keeps its peak. Has no effect (and says so once) when jemalloc is not
/// the process's allocator.
pub fn return_freed_memory() {
    if let Err(error) = tikv_jemalloc_ctl::background_thread::write(true) {
        eprintln!("warning: freed memory may not be returned to the system (jemalloc background thread: {error})");
    }
}
