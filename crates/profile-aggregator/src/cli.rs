//! Command line of the aggregator, shared by its own binary and the
//! all-in-one runner.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::time::Duration;

use clap::Parser;
use service_kit::cli::{parse_duration, CommonArgs};
use service_kit::{ServeError, Service};
use telemetry::PoolConfig;
use url::Url;

use crate::config::{parse_base_url, Dependency, TraceContextValidation};
use crate::resilience::breaker::BreakerConfig;
use crate::resilience::budget::BudgetConfig;
use crate::resilience::hedge::HedgeAfter;
use crate::resilience::retry::{RetryConfig, RetryJitter};
use crate::resilience::timeout::parse_timeout;
use crate::resilience::{RemedyConfig, Switches, MAX_DELAY};
use crate::{Config, Mode};

/// The profile aggregator: GET /user-profile/{id}?mode=sequential|concurrent|unlinked
#[derive(Debug, Clone, Parser)]
#[command(name = "profile-aggregator", version)]
pub struct Args {
    /// Address to listen on (port 0 picks a free port and prints it).
    #[arg(long, env = "AGGREGATOR_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Base URL of the user service.
    #[arg(long, env = "USER_SERVICE_URL", default_value = "http://127.0.0.1:5001", value_parser = parse_base_url)]
    pub user_service_url: Url,
    /// Base URL of the order service.
    #[arg(long, env = "ORDER_SERVICE_URL", default_value = "http://127.0.0.1:5002", value_parser = parse_base_url)]
    pub order_service_url: Url,
    /// Fan-out mode when a request has no ?mode=.
    #[arg(long, env = "AGGREGATOR_MODE", default_value = "sequential")]
    pub mode: Mode,
    /// Give up on the user service after this long (answer 504).
    /// From 1ms to 1m.
    #[arg(long, env = "USER_SERVICE_TIMEOUT", default_value = "2s", value_parser = parse_timeout)]
    pub user_timeout: Duration,
    /// Give up on the order service after this long (answer 504).
    /// From 1ms to 1m.
    #[arg(long, env = "ORDER_SERVICE_TIMEOUT", default_value = "2s", value_parser = parse_timeout)]
    pub order_timeout: Duration,
    /// Serve POST /verify-tracecontext, the endpoint the official W3C Trace
    /// Context test harness drives (off by default; calls loopback URLs only).
    #[arg(long, env = "TRACECONTEXT_VALIDATION")]
    pub tracecontext_validation: bool,
    /// Let /verify-tracecontext call hosts other than loopback. It then
    /// POSTs wherever its caller says: only for a harness on another machine.
    #[arg(
        long,
        env = "TRACECONTEXT_VALIDATION_ALLOW_REMOTE",
        requires = "tracecontext_validation"
    )]
    pub tracecontext_validation_allow_remote: bool,
    /// Idle keep-alive connections kept per dependency host: after a burst,
    /// the connections beyond this close as their calls end.
    #[arg(long, env = "AGGREGATOR_POOL_MAX_IDLE_PER_HOST", value_name = "N", default_value_t = PoolConfig::DEFAULT_MAX_IDLE_PER_HOST, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=10_000))]
    pub pool_max_idle_per_host: usize,
    /// Close an idle keep-alive connection to a dependency after this long
    /// unused. From 1ms to 1m; keep it below the dependencies' own
    /// keep-alive timeout, so the aggregator is the side that closes.
    #[arg(long, env = "AGGREGATOR_POOL_IDLE_TIMEOUT", value_name = "DURATION", default_value = "5s", value_parser = parse_timeout)]
    pub pool_idle_timeout: Duration,
    #[command(flatten)]
    pub common: CommonArgs,
    /// Boxed: the remedies' many flags would make this struct, and every
    /// enum that holds it, large. Last, so their help heading covers them
    /// alone.
    #[command(flatten)]
    pub remedies: Box<RemedyArgs>,
}

/// The remedies for tail latency and failing dependencies. Each is off
/// unless switched on here; a request overrides with query parameters
/// (`?retry=on|off`, `breaker=on|off`, `hedge_after=50ms|p95|off`,
/// `bulkhead=on|off`, `fallback=true|false`, `user_timeout=`,
/// `order_timeout=`). The tuning flags apply whenever a remedy is on. Each
/// flag also reads `AGGREGATOR_<FLAG>` (`AGGREGATOR_RETRY=true`,
/// `AGGREGATOR_HEDGE_AFTER=p95`, …), which `latency-lab up` passes on.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Remedies")]
pub struct RemedyArgs {
    /// Retry failed calls (5xx, connection refused, timeout; never 4xx) in
    /// every request that does not say `?retry=off`.
    #[arg(long, env = "AGGREGATOR_RETRY")]
    pub retry: bool,
    /// Retries per call after the first attempt.
    #[arg(long, env = "AGGREGATOR_RETRY_MAX", default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=10))]
    pub retry_max: u32,
    /// Bound of the first backoff wait; it doubles for every further retry.
    #[arg(long, env = "AGGREGATOR_RETRY_BACKOFF", default_value = "50ms", value_parser = parse_bounded_duration)]
    pub retry_backoff: Duration,
    /// Cap of any one backoff wait.
    #[arg(long, env = "AGGREGATOR_RETRY_MAX_BACKOFF", default_value = "1s", value_parser = parse_bounded_duration)]
    pub retry_max_backoff: Duration,
    /// `full`: each wait uniform between 0 and its bound (spreads out a
    /// crowd of retrying clients); `none`: exactly the bound.
    #[arg(long, env = "AGGREGATOR_RETRY_JITTER", default_value = "full")]
    pub retry_jitter: RetryJitter,
    /// Retry budget: retries (and hedges) per call made, over the window,
    /// per dependency; 0.1 = at most one retry per ten calls.
    #[arg(long, env = "AGGREGATOR_RETRY_BUDGET", default_value_t = 0.1, value_parser = parse_budget_ratio)]
    pub retry_budget: f64,
    /// Retries always allowed per window on top of the ratio, so a cold
    /// start can retry.
    #[arg(long, env = "AGGREGATOR_RETRY_BUDGET_MIN", default_value_t = 3)]
    pub retry_budget_min: u32,
    /// How far back the budget counts calls and retries.
    #[arg(long, env = "AGGREGATOR_RETRY_BUDGET_WINDOW", default_value = "10s", value_parser = parse_bounded_duration)]
    pub retry_budget_window: Duration,
    /// Guard each dependency with a circuit breaker, in every request that
    /// does not say `?breaker=off`.
    #[arg(long, env = "AGGREGATOR_BREAKER")]
    pub breaker: bool,
    /// Open the breaker when at least this fraction of the window failed.
    #[arg(long, env = "AGGREGATOR_BREAKER_FAILURE_RATIO", default_value_t = 0.5, value_parser = parse_failure_ratio)]
    pub breaker_failure_ratio: f64,
    /// How many of the most recent calls the breaker judges.
    #[arg(long, env = "AGGREGATOR_BREAKER_WINDOW", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub breaker_window: u32,
    /// Never open on fewer calls than this.
    #[arg(long, env = "AGGREGATOR_BREAKER_MIN_CALLS", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub breaker_min_calls: u32,
    /// How long an open breaker fails fast before letting one probe through.
    #[arg(long, env = "AGGREGATOR_BREAKER_OPEN_FOR", default_value = "5s", value_parser = parse_bounded_duration)]
    pub breaker_open_for: Duration,
    /// Hedge: send a second copy of a call that has not answered after this
    /// delay (`50ms`) or this percentile of recent latencies (`p95`); `off`.
    #[arg(long, env = "AGGREGATOR_HEDGE_AFTER", default_value = "off")]
    pub hedge_after: HedgeAfter,
    /// Bulkhead: at most N calls in flight per dependency; more queue, at
    /// most for the call's timeout (then 503 bulkhead_full).
    #[arg(long, env = "AGGREGATOR_MAX_IN_FLIGHT")]
    pub max_in_flight: Option<NonZeroUsize>,
    /// Answer 200 with `orders: null` and `degraded: ["orders"]` when the
    /// order service fails, instead of failing the request (unless
    /// `?fallback=false`).
    #[arg(long, env = "AGGREGATOR_FALLBACK")]
    pub fallback: bool,
}

impl RemedyArgs {
    pub fn config(&self) -> RemedyConfig {
        RemedyConfig {
            defaults: Switches {
                retry: self.retry,
                breaker: self.breaker,
                hedge_after: self.hedge_after,
                bulkhead: self.max_in_flight.is_some(),
                fallback: self.fallback,
            },
            retry: RetryConfig {
                max_retries: self.retry_max,
                backoff: self.retry_backoff,
                max_backoff: self.retry_max_backoff,
                jitter: self.retry_jitter,
            },
            budget: BudgetConfig {
                ratio: self.retry_budget,
                min_per_window: self.retry_budget_min,
                window: self.retry_budget_window,
            },
            breaker: BreakerConfig {
                failure_ratio: self.breaker_failure_ratio,
                window: self.breaker_window as usize,
                min_calls: self.breaker_min_calls as usize,
                open_for: self.breaker_open_for,
            },
            max_in_flight: self.max_in_flight,
        }
    }
}

/// A duration of at most a minute: no flag can make a wait unbounded.
fn parse_bounded_duration(value: &str) -> Result<Duration, String> {
    let d = parse_duration(value)?;
    if d > MAX_DELAY {
        return Err(format!(
            "{value:?}: at most {}",
            humantime::format_duration(MAX_DELAY)
        ));
    }
    Ok(d)
}

fn parse_fraction(value: &str) -> Result<f64, String> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|r| r.is_finite())
        .ok_or_else(|| format!("{value:?}: expected a number such as 0.5"))
}

/// Retry budget ratio: 0 (only the floor) to 1 (one retry per call).
fn parse_budget_ratio(value: &str) -> Result<f64, String> {
    let r = parse_fraction(value)?;
    (0.0..=1.0)
        .contains(&r)
        .then_some(r)
        .ok_or_else(|| format!("{value:?}: the ratio is between 0 and 1"))
}

/// Breaker failure ratio: above 0, at most 1.
fn parse_failure_ratio(value: &str) -> Result<f64, String> {
    let r = parse_fraction(value)?;
    (r > 0.0 && r <= 1.0)
        .then_some(r)
        .ok_or_else(|| format!("{value:?}: the ratio is above 0 and at most 1"))
}

impl Args {
    pub fn config(&self) -> Config {
        Config {
            users: Dependency {
                base_url: self.user_service_url.clone(),
                timeout: self.user_timeout,
            },
            orders: Dependency {
                base_url: self.order_service_url.clone(),
                timeout: self.order_timeout,
            },
            default_mode: self.mode,
            remedies: self.remedies.config(),
            pool: PoolConfig {
                max_idle_per_host: self.pool_max_idle_per_host,
                idle_timeout: self.pool_idle_timeout,
            },
            tracecontext_validation: match (
                self.tracecontext_validation,
                self.tracecontext_validation_allow_remote,
            ) {
                (false, _) => TraceContextValidation::Off,
                (true, false) => TraceContextValidation::LoopbackOnly,
                (true, true) => TraceContextValidation::AnyHost,
            },
        }
    }

    pub async fn run(self) -> Result<(), ServeError> {
        let config = self.config();
        let service = Service {
            name: "profile-aggregator",
            version: env!("CARGO_PKG_VERSION"),
            listen: self.listen,
            log_format: self.common.log_format,
            limits: self.common.server.limits(),
        };
        service_kit::run(service, move || {
            crate::router(config).map_err(|e| ServeError::Build(e.to_string()))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from([&["profile-aggregator"], args].concat())
    }

    #[test]
    fn remedies_are_off_by_default() {
        let config = parse(&[]).unwrap().config();
        assert_eq!(config.remedies, RemedyConfig::default());
        assert_eq!(config.remedies.defaults, Switches::default());
    }

    #[test]
    fn remedy_flags_reach_the_config() {
        let config = parse(&[
            "--retry",
            "--retry-max",
            "2",
            "--retry-jitter",
            "none",
            "--retry-budget",
            "0.2",
            "--breaker",
            "--breaker-open-for",
            "1s",
            "--hedge-after",
            "p90",
            "--max-in-flight",
            "4",
            "--fallback",
        ])
        .unwrap()
        .config()
        .remedies;
        assert!(config.defaults.retry && config.defaults.breaker && config.defaults.fallback);
        assert!(config.defaults.bulkhead);
        assert_eq!(config.defaults.hedge_after, HedgeAfter::Percentile(90.0));
        assert_eq!(config.retry.max_retries, 2);
        assert_eq!(config.retry.jitter, RetryJitter::None);
        assert_eq!(config.budget.ratio, 0.2);
        assert_eq!(config.breaker.open_for, Duration::from_secs(1));
        assert_eq!(config.max_in_flight, NonZeroUsize::new(4));
    }

    #[test]
    fn bad_remedy_flags_are_refused() {
        for bad in [
            &["--retry-max", "11"][..],
            &["--retry-budget", "1.5"],
            &["--retry-budget", "NaN"],
            &["--breaker-failure-ratio", "0"],
            &["--breaker-window", "0"],
            &["--breaker-open-for", "2h"],
            &["--hedge-after", "soon"],
            &["--max-in-flight", "0"],
            &["--retry-jitter", "some"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn the_idle_pool_is_bounded_by_default_and_configurable() {
        let config = parse(&[]).unwrap().config();
        assert_eq!(config.pool, PoolConfig::default());
        let config = parse(&[
            "--pool-max-idle-per-host",
            "0",
            "--pool-idle-timeout",
            "500ms",
        ])
        .unwrap()
        .config();
        assert_eq!(config.pool.max_idle_per_host, 0);
        assert_eq!(config.pool.idle_timeout, Duration::from_millis(500));
        for bad in [
            &["--pool-max-idle-per-host", "-1"][..],
            &["--pool-max-idle-per-host", "10001"],
            &["--pool-idle-timeout", "0s"],
            &["--pool-idle-timeout", "2m"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn timeout_flags_accept_one_millisecond_to_one_minute() {
        let config = parse(&["--user-timeout", "1ms", "--order-timeout", "1m"])
            .unwrap()
            .config();
        assert_eq!(config.users.timeout, Duration::from_millis(1));
        assert_eq!(config.orders.timeout, Duration::from_secs(60));
        for flag in ["--user-timeout", "--order-timeout", "--hedge-after"] {
            for bad in ["1ns", "999us", "0s", "61s"] {
                let message = parse(&[flag, bad]).unwrap_err().to_string();
                assert!(message.contains(flag), "{flag} {bad}: {message}");
                assert!(
                    message.contains("at least 1ms and at most 1m"),
                    "{flag} {bad}: {message}"
                );
            }
        }
    }
}
