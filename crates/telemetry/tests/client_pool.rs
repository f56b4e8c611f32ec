//! The traced client's idle pool is bounded: after a burst of concurrent
//! calls it keeps at most `max_idle_per_host` connections open to the host,
//! and closes those after `idle_timeout`.
//!
//! Connections are counted from the kernel's table (`/proc/net/tcp`): the
//! established loopback sockets whose remote end is the test server, that is
//! the client's side of each connection it holds.

use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use telemetry::PoolConfig;

/// Client-side sockets connected to `port` on this machine.
fn established_to(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("Linux: /proc/net/tcp");
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address rem_address st: "0100007F:1F90", state 01 = ESTABLISHED.
            fields.len() > 3
                && fields[3] == "01"
                && fields[2]
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
                    == Some(port)
        })
        .count()
}

/// Polls `condition` until it holds or `limit` passes; whether it held.
async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    condition()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_leaves_at_most_the_cap_idle_and_they_close_after_the_timeout() {
    const BURST: usize = 40;
    const CAP: usize = 3;
    const IDLE_TIMEOUT: Duration = Duration::from_secs(2);
    let router = Router::new().route(
        "/slow",
        get(|| async {
            // Long enough for the whole burst to be in flight at once, each
            // call on a connection of its own.
            tokio::time::sleep(Duration::from_millis(300)).await;
            "ok"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, router).await });

    let client = telemetry::traced_client_with_pool(PoolConfig {
        max_idle_per_host: CAP,
        idle_timeout: IDLE_TIMEOUT,
    })
    .unwrap();
    let url = format!("http://127.0.0.1:{port}/slow");
    let handles: Vec<_> = (0..BURST)
        .map(|_| {
            let client = client.clone();
            let url = url.clone();
            tokio::spawn(async move { client.get(url).send().await.unwrap().text().await })
        })
        .collect();
    let mut peak = 0;
    // While the burst is in flight, many connections are open at once.
    assert!(
        eventually(Duration::from_secs(10), || {
            peak = peak.max(established_to(port));
            peak > CAP
        })
        .await,
        "the burst should open more than {CAP} connections (peak {peak})"
    );
    for handle in handles {
        assert_eq!(handle.await.unwrap().unwrap(), "ok");
    }

    // Soon after the burst (the surplus closes as each call returns, long
    // before the idle timeout): at most the cap kept, and some are (the
    // pool does keep connections for reuse).
    let returned = Instant::now();
    let mut kept = usize::MAX;
    let capped = eventually(IDLE_TIMEOUT / 4, || {
        kept = established_to(port);
        kept <= CAP
    })
    .await;
    assert!(
        capped && kept >= 1 && returned.elapsed() < IDLE_TIMEOUT,
        "{kept} connections kept after a burst of {BURST} (peak {peak}); the cap is {CAP}"
    );

    // Then they go once idle for the timeout.
    assert!(
        eventually(Duration::from_secs(10), || established_to(port) == 0).await,
        "{} idle connections still open long after the idle timeout",
        established_to(port)
    );
}

#[test]
fn the_default_pool_is_bounded() {
    let pool = PoolConfig::default();
    assert_eq!(pool.max_idle_per_host, 64);
    assert_eq!(pool.idle_timeout, Duration::from_secs(5));
}
