//! The simulated query's wait: a sleep that ends when asked, not a
//! millisecond or two later.
//!
//! A mock exists to make its caller wait *exactly* its configured latency,
//! so that what a trace shows above it is the caller's own doing. Tokio's
//! timer cannot do that: its wheel counts whole milliseconds and rounds a
//! deadline *up* to the next tick, and its driver then parks in
//! `epoll_wait`, whose timeout is again whole milliseconds, rounded up. A
//! 100 ms sleep started mid-tick ends 1–2 ms late (a 100 ms mock answered
//! in 102.6 ms at p50).
//!
//! [`sleep_until`] uses `async-io`'s [`Timer`](async_io::Timer) instead:
//! its reactor (one small thread of its own, blocked in the kernel while
//! nothing is due) sets its wake-up on a `timerfd` on Linux (`kqueue`
//! timeouts elsewhere), which has nanosecond resolution and fires within the
//! kernel's timer slack (about 50 µs); it then wakes the Tokio task. Nothing
//! spins, and nothing is subtracted from the delay: the deadline is absolute,
//! computed from when the query started, so the time spent before the wait
//! (recording the span's attributes, …) is part of the delay, not added to
//! it. A well-kept crate rather than our own `timerfd` code: `async-io` is
//! smol's runtime core, portable, and its timer works under any executor;
//! a `timerfd` registered in Tokio's own reactor (one fewer thread to wake)
//! was tried and woke no earlier (median 0.18 ms late against async-io's
//! 0.14 ms and Tokio's 1.2 ms, on the 2-core machine under load; the
//! `timer_precision` test prints the last two).
//!
//! Tokio's timer stays where a millisecond does not matter (the hang's
//! `--max-delay` release, tests' polling).

use std::time::Instant;

/// Completes at `deadline` (at once if it has passed), never before it.
/// Cancel-safe: dropping the future removes the timer.
pub async fn sleep_until(deadline: Instant) {
    async_io::Timer::at(deadline).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn never_ends_before_its_deadline() {
        for ms in [0, 1, 3, 7] {
            let deadline = Instant::now() + Duration::from_millis(ms);
            sleep_until(deadline).await;
            assert!(Instant::now() >= deadline, "{ms} ms");
        }
    }

    #[tokio::test]
    async fn a_past_deadline_is_already_due() {
        let started = Instant::now();
        sleep_until(started - Duration::from_millis(5)).await;
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test]
    async fn dropping_the_wait_cancels_it() {
        let far = Instant::now() + Duration::from_secs(60);
        let cut = tokio::time::timeout(Duration::from_millis(10), sleep_until(far)).await;
        assert!(cut.is_err());
    }
}
