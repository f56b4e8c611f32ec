//! A bulkhead per dependency: at most `--max-in-flight N` calls to it at
//! once; the others queue for a permit.
//!
//! Named after a ship's watertight compartments: a slow order service can
//! then tie up at most N of the aggregator's connections and tasks, and the
//! requests that only need the user service are not dragged down with it.
//! The queueing this causes happens *inside* the aggregator, where no
//! downstream span can show it — so the wait for a permit is a span of its
//! own, `bulkhead.wait`, with how many calls were in flight when it began.
//!
//! The wait is bounded by the call's timeout: a call that cannot even start
//! in time fails (503 `bulkhead_full`) instead of queueing forever. And it
//! comes out of that timeout: the call's first attempt gets only what the
//! wait left (`downstream`), so a queued call ends within its timeout, not
//! up to twice it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::field::Empty;
use tracing::Instrument;

/// A permit for one call; the slot frees when it is dropped.
#[derive(Debug)]
pub struct BulkheadPermit(#[allow(dead_code)] OwnedSemaphorePermit);

/// No permit came within the wait limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full {
    pub max_in_flight: usize,
    pub waited: Duration,
}

#[derive(Debug)]
pub struct Bulkhead {
    permits: Arc<Semaphore>,
    max_in_flight: usize,
}

impl Bulkhead {
    pub fn new(max_in_flight: usize) -> Self {
        let max_in_flight = max_in_flight.max(1);
        Self {
            permits: Arc::new(Semaphore::new(max_in_flight)),
            max_in_flight,
        }
    }

    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// Calls holding a permit right now.
    pub fn in_flight(&self) -> usize {
        self.max_in_flight - self.permits.available_permits().min(self.max_in_flight)
    }

    /// Waits for a permit, at most `max_wait`, inside an INTERNAL span
    /// `bulkhead.wait` (a child of the current span).
    pub async fn acquire(
        &self,
        dependency: &'static str,
        max_wait: Duration,
    ) -> Result<BulkheadPermit, Full> {
        let in_flight = self.in_flight();
        let span = tracing::info_span!(
            "bulkhead.wait",
            otel.name = "bulkhead.wait",
            otel.kind = "internal",
            otel.status_code = Empty,
            dependency,
            bulkhead.max_in_flight = self.max_in_flight as i64,
            bulkhead.in_flight = in_flight as i64,
            bulkhead.queued = in_flight >= self.max_in_flight,
            bulkhead.wait_ms = Empty,
            error.type = Empty,
        );
        let started = Instant::now();
        let acquired = tokio::time::timeout(max_wait, self.permits.clone().acquire_owned())
            .instrument(span.clone())
            .await;
        let waited = started.elapsed();
        span.record("bulkhead.wait_ms", waited.as_secs_f64() * 1000.0);
        match acquired {
            Ok(Ok(permit)) => Ok(BulkheadPermit(permit)),
            // Timed out, or (never: it is not closed) the semaphore closed.
            _ => {
                span.record("otel.status_code", "ERROR");
                span.record("error.type", "bulkhead_full");
                Err(Full {
                    max_in_flight: self.max_in_flight,
                    waited,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn queues_then_gives_up_after_the_wait_limit() {
        let bulkhead = Bulkhead::new(1);
        let first = bulkhead
            .acquire("order-service", Duration::from_millis(10))
            .await
            .expect("a free slot");
        assert_eq!(bulkhead.in_flight(), 1);
        let full = bulkhead
            .acquire("order-service", Duration::from_millis(20))
            .await
            .unwrap_err();
        assert_eq!(full.max_in_flight, 1);
        assert!(full.waited >= Duration::from_millis(20));
        drop(first);
        assert_eq!(bulkhead.in_flight(), 0);
        bulkhead
            .acquire("order-service", Duration::from_millis(10))
            .await
            .expect("freed");
    }

    #[tokio::test]
    async fn a_queued_call_gets_the_slot_when_it_frees() {
        let bulkhead = Arc::new(Bulkhead::new(1));
        let first = bulkhead
            .acquire("order-service", Duration::from_secs(1))
            .await
            .unwrap();
        let waiter = {
            let bulkhead = bulkhead.clone();
            tokio::spawn(async move {
                bulkhead
                    .acquire("order-service", Duration::from_secs(5))
                    .await
                    .is_ok()
            })
        };
        tokio::task::yield_now().await;
        drop(first);
        assert!(waiter.await.unwrap());
    }

    #[test]
    fn zero_means_one() {
        assert_eq!(Bulkhead::new(0).max_in_flight(), 1);
    }
}
