//! A simulated database connection pool.
//!
//! Under load a real service rarely waits on its database *query*; it waits
//! for a *connection* to run the query on. That wait is invisible unless it
//! is traced: the SERVER span grows, the `db.query` span does not, and the
//! timeline shows an unexplained gap before the query. So waiting for a
//! connection is a span of its own, `db.pool.wait`, which opens with an event
//! saying how many requests were queued ahead.
//!
//! The span is created for every request when a pool is configured, even an
//! uncontended one (it is then a sliver): the trace shape depends on the
//! configuration, not on luck. Without `--db-pool-size` (the default) there
//! is no pool, no wait and no span.
//!
//! The pool's state is also metrics ([`crate::metrics`]): connections idle
//! and used, the maximum, the requests waiting, and each wait's duration —
//! what an alert on a saturated pool reads.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;

use crate::metrics::PoolMetrics;

/// `--db-pool-size N`: at most N queries run at once; the rest queue in
/// arrival order (Tokio's semaphore is fair).
#[derive(Debug)]
pub struct Pool {
    size: usize,
    connections: Arc<Semaphore>,
    /// Requests currently queued for a connection.
    waiting: AtomicUsize,
    name: &'static str,
    /// Created on the first wait, not with the pool: a mock (and its pool)
    /// is built before telemetry is initialised, and an instrument created
    /// then would stay a no-op. The pool's series appear with its first
    /// request.
    metrics: OnceLock<PoolMetrics>,
}

/// A borrowed connection; returned to the pool when dropped — including when
/// the request is abandoned mid-query, so a client that gives up never leaks
/// a connection.
#[derive(Debug)]
pub struct Connection {
    permit: Option<OwnedSemaphorePermit>,
    metrics: PoolMetrics,
}

impl Drop for Connection {
    fn drop(&mut self) {
        if self.permit.take().is_some() {
            self.metrics.released();
        }
    }
}

impl Pool {
    /// A pool of `size` connections; `name` is its
    /// `db.client.connection.pool.name`.
    pub fn new(size: NonZeroUsize, name: &'static str) -> Self {
        Self {
            size: size.get(),
            connections: Arc::new(Semaphore::new(size.get())),
            waiting: AtomicUsize::new(0),
            name,
            metrics: OnceLock::new(),
        }
    }

    fn metrics(&self) -> &PoolMetrics {
        self.metrics
            .get_or_init(|| PoolMetrics::new(self.name, self.size))
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// Waits for a connection inside a `db.pool.wait` INTERNAL span.
    pub async fn acquire(&self) -> Connection {
        let in_use = self.size - self.connections.available_permits().min(self.size);
        let started = Instant::now();
        let queued = Queued::join(&self.waiting, self.metrics());
        let span = tracing::info_span!(
            "db.pool.wait",
            otel.name = "db.pool.wait",
            otel.kind = "internal",
            latency_lab.db_pool_size = self.size as i64,
        );
        tracing::info!(
            parent: &span,
            requests_ahead = queued.ahead as i64,
            connections_in_use = in_use as i64,
            pool_size = self.size as i64,
            "waiting for a database connection"
        );
        let permit = Arc::clone(&self.connections)
            .acquire_owned()
            .instrument(span)
            .await
            // Only a closed semaphore fails, and this one is never closed;
            // were it ever, running without a connection beats a panic.
            .ok();
        drop(queued);
        if permit.is_some() {
            self.metrics().acquired(started.elapsed());
        }
        Connection {
            permit,
            metrics: self.metrics().clone(),
        }
    }
}

/// Counts a request as queued for as long as it waits — also when the wait
/// is abandoned because the client went away.
struct Queued<'a> {
    waiting: &'a AtomicUsize,
    metrics: &'a PoolMetrics,
    ahead: usize,
}

impl<'a> Queued<'a> {
    fn join(waiting: &'a AtomicUsize, metrics: &'a PoolMetrics) -> Self {
        let ahead = waiting.fetch_add(1, Ordering::SeqCst);
        metrics.pending(1);
        Self {
            waiting,
            metrics,
            ahead,
        }
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        self.metrics.pending(-1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_pool_of_one_serialises_and_counts_the_queue() {
        let pool = Arc::new(Pool::new(NonZeroUsize::new(1).unwrap(), "test-pool"));
        let first = pool.acquire().await;
        assert_eq!(pool.waiting.load(Ordering::SeqCst), 0);

        let waiter = {
            let pool = Arc::clone(&pool);
            tokio::spawn(async move { pool.acquire().await })
        };
        // The second request queues behind the first.
        while pool.waiting.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert!(!waiter.is_finished());
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the released connection goes to the waiter")
            .unwrap();
        assert_eq!(pool.waiting.load(Ordering::SeqCst), 0);
        drop(second);
        assert_eq!(pool.connections.available_permits(), 1);
    }

    #[tokio::test]
    async fn an_abandoned_wait_leaves_the_queue() {
        let pool = Arc::new(Pool::new(NonZeroUsize::new(1).unwrap(), "test-pool"));
        let _held = pool.acquire().await;
        let gave_up = tokio::time::timeout(Duration::from_millis(20), pool.acquire()).await;
        assert!(gave_up.is_err());
        assert_eq!(pool.waiting.load(Ordering::SeqCst), 0);
    }
}
