//! The behaviour both mock services share: how long a lookup takes, whether
//! it fails or hangs, and how many may run at once.
//!
//! One request to a mock goes through, in order:
//!
//! 1. **Overrides** ([`overrides`]): `latency.<name>`, `fail.<name>`,
//!    `hang.<name>` from the request's baggage replace the configured
//!    latency, error rate and hang rate for this request only. Precedence:
//!    baggage, then the flag, then its environment variable, then the
//!    default. A malformed value is a 400 listing the accepted forms.
//! 2. **Limit**: a requested latency whose [`LatencySpec::nominal_max`] is
//!    above `--max-delay` (30 s) is refused with 400 `delay_too_long`; a
//!    configured one stops the service at start-up. A *draw* from an
//!    unbounded model beyond the limit is clamped to it instead (and the span
//!    says so): it is the model's doing, not the caller's, so it must not
//!    look like a client error, and turning a slow tail into a fast refusal
//!    would hide exactly what the model was asked to show.
//! 3. **Decision**: one delay drawn from the spec, one fault rolled.
//! 4. **Pool** ([`pool`]): with `--db-pool-size`, wait for a connection
//!    inside a `db.pool.wait` span.
//! 5. **Query**: the `db.query` span, holding the connection. `none` waits
//!    the delay and succeeds; `error` waits the delay, then fails with 503
//!    `injected_fault` — a failing database still makes you wait, and the
//!    span keeps its length; `hang` never answers: it ends when the client
//!    gives up (the server drops the request), when the service shuts down
//!    (503 `shutting_down`, so a hung request never blocks the exit), or,
//!    as a last resort against a client that never gives up, after
//!    `--max-delay` (503 `injected_fault`).
//!
//! A 400 leaves the SERVER span's status unset (a client error, per the
//! HTTP semantic conventions); a 503 marks it, and the `db.query` span, as
//! an error.

pub mod overrides;
pub mod pool;

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::latency::units::{describe_duration, format_duration};
use crate::latency::{Fault, FaultRates, LatencySpec, Probability, Sample, Sampler, SpecProblem};
use crate::metrics::QueryMetrics;
use crate::simulated::SimulatedQuery;
use crate::timer;
use service_kit::ApiError;

pub use overrides::{OverrideError, OverrideKeys, Overrides};
pub use pool::Pool;

/// `--max-delay` unless set.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(30);

/// Who the mock is: its `service.name` (for messages) and the short name its
/// baggage keys end in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MockName {
    /// `user-service`, `order-service`.
    pub service: &'static str,
    /// `user`, `orders`: the mock obeys `latency.<short>` and friends.
    pub short: &'static str,
}

/// A mock's configuration, from its flags and environment.
#[derive(Debug, Clone, PartialEq)]
pub struct MockSettings {
    /// `--latency`: the model every lookup's delay is drawn from.
    pub latency: LatencySpec,
    /// `--error-rate`, `--hang-rate`.
    pub faults: FaultRates,
    /// `--db-pool-size`; `None` is unlimited.
    pub db_pool_size: Option<NonZeroUsize>,
    /// `--max-delay`.
    pub max_delay: Duration,
}

impl MockSettings {
    /// A constant latency, no faults, no pool; the limit raised if needed so
    /// this cannot be refused.
    pub fn fixed(latency: Duration) -> Self {
        Self {
            latency: LatencySpec::fixed(latency),
            faults: FaultRates::default(),
            db_pool_size: None,
            max_delay: DEFAULT_MAX_DELAY.max(latency),
        }
    }
}

/// A configuration the mock refuses to start with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SettingsError {
    #[error("--latency {spec} asks for up to {asks}, above --max-delay {max}: raise --max-delay or lower the latency")]
    AboveMaxDelay {
        spec: String,
        asks: String,
        max: String,
    },
    #[error("--latency {spec}: {problem}")]
    Latency { spec: String, problem: SpecProblem },
}

/// A mock's shared state: cheap to clone into every handler.
#[derive(Clone)]
pub struct Mock {
    inner: Arc<Inner>,
}

struct Inner {
    name: MockName,
    keys: OverrideKeys,
    /// The configured spec as the span shows it, formatted once, not per
    /// request.
    latency: Arc<str>,
    sampler: Sampler,
    faults: FaultRates,
    max_delay: Duration,
    pool: Option<Pool>,
    /// Created on first use: a mock is built before telemetry is
    /// initialised (its settings are checked first), and an instrument
    /// created then would stay a no-op.
    query_metrics: OnceLock<QueryMetrics>,
    rng: Mutex<StdRng>,
    shutdown: CancellationToken,
}

impl fmt::Debug for Mock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("Mock")
            .field("service", &i.name.service)
            .field("latency", &i.latency.to_string())
            .field("faults", &i.faults)
            .field("db_pool_size", &i.pool.as_ref().map(Pool::size))
            .field("max_delay", &i.max_delay)
            .finish()
    }
}

impl Mock {
    /// Checks the settings against the limit; the RNG is seeded from the OS.
    pub fn new(name: MockName, settings: MockSettings) -> Result<Self, SettingsError> {
        Self::build(name, settings, rand::make_rng())
    }

    /// Same, with a fixed seed: the same requests draw the same delays.
    pub fn seeded(
        name: MockName,
        settings: MockSettings,
        seed: u64,
    ) -> Result<Self, SettingsError> {
        Self::build(name, settings, StdRng::seed_from_u64(seed))
    }

    /// A constant latency, no faults, no pool: what most tests want, and
    /// cannot be refused.
    pub fn fixed(name: MockName, latency: Duration) -> Self {
        let settings = MockSettings::fixed(latency);
        let sampler = Sampler::fixed(latency);
        Self::assemble(name, settings, sampler, rand::make_rng())
    }

    fn build(name: MockName, settings: MockSettings, rng: StdRng) -> Result<Self, SettingsError> {
        let spec = settings.latency.to_string();
        if settings.latency.nominal_max() > settings.max_delay {
            return Err(SettingsError::AboveMaxDelay {
                spec,
                asks: describe_duration(settings.latency.nominal_max()),
                max: describe_duration(settings.max_delay),
            });
        }
        let sampler = Sampler::new(&settings.latency)
            .map_err(|problem| SettingsError::Latency { spec, problem })?;
        Ok(Self::assemble(name, settings, sampler, rng))
    }

    fn assemble(name: MockName, settings: MockSettings, sampler: Sampler, rng: StdRng) -> Self {
        Self {
            inner: Arc::new(Inner {
                name,
                keys: OverrideKeys::for_mock(name.short),
                latency: settings.latency.to_string().into(),
                sampler,
                faults: settings.faults,
                max_delay: settings.max_delay,
                pool: settings
                    .db_pool_size
                    .map(|size| Pool::new(size, name.service)),
                query_metrics: OnceLock::new(),
                rng: Mutex::new(rng),
                shutdown: CancellationToken::new(),
            }),
        }
    }

    /// Cancelled when the service shuts down: releases hung requests and
    /// requests still queued for a connection, so the exit never waits on
    /// them. `mock_service` cancels it on Ctrl-C/SIGTERM.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.inner.shutdown.clone()
    }

    /// Runs one simulated lookup for the current request: overrides from the
    /// current span's baggage, the limit, the pool, the `db.query` span.
    pub async fn query(&self, query: SimulatedQuery) -> Result<(), ApiError> {
        let cx = tracing::Span::current().context();
        let overrides = Overrides::from_context(&self.inner.keys, &cx)
            .map_err(|e| ApiError::bad_request("invalid_override", e.to_string()))?;
        let plan = self.plan(overrides)?;

        let _connection = match &self.inner.pool {
            Some(pool) => tokio::select! {
                connection = pool.acquire() => Some(connection),
                () = self.inner.shutdown.cancelled() => return Err(self.shutting_down()),
            },
            None => None,
        };

        let span = query.span();
        // The wait ends at an absolute deadline counted from here, as the
        // span's own clock starts: the work below is part of the delay.
        let started = Instant::now();
        plan.record(&span);
        // If the server drops this future (the client hung up), say so on
        // the span and in the metrics: otherwise a query cut short looks
        // like a fast one.
        let abandoned = Abandoned(Some(AbandonedQuery {
            span: span.clone(),
            query,
            started,
            metrics: self.query_metrics().clone(),
        }));
        let outcome = self
            .execute(&plan, started, &span)
            .instrument(span.clone())
            .await;
        abandoned.disarm();
        let error_type = outcome.as_ref().err().map(|e| e.code);
        self.query_metrics()
            .record(&query, started.elapsed(), error_type);
        outcome
    }

    fn query_metrics(&self) -> &QueryMetrics {
        self.inner.query_metrics.get_or_init(QueryMetrics::new)
    }

    /// Everything decided before any waiting: which spec, which delay,
    /// which fault, and why.
    fn plan(&self, overrides: Overrides) -> Result<Plan, ApiError> {
        let inner = &self.inner;
        let requested;
        let (spec, sampler) = match overrides.latency {
            Some(spec) => {
                if spec.nominal_max() > inner.max_delay {
                    return Err(ApiError::bad_request(
                        "delay_too_long",
                        format!(
                            "baggage {}={spec} asks for up to {}, above {}'s maximum delay of {} (--max-delay)",
                            inner.keys.latency,
                            describe_duration(spec.nominal_max()),
                            inner.name.service,
                            describe_duration(inner.max_delay),
                        ),
                    ));
                }
                requested = Sampler::new(&spec).map_err(|problem| {
                    ApiError::bad_request(
                        "invalid_override",
                        format!("baggage {}={spec}: {problem}", inner.keys.latency),
                    )
                })?;
                (Arc::from(spec.to_string()), &requested)
            }
            None => (inner.latency.clone(), &inner.sampler),
        };
        let rates = FaultRates {
            error: overrides.error_rate.unwrap_or(inner.faults.error),
            hang: overrides.hang_rate.unwrap_or(inner.faults.hang),
        };
        let (sample, fault) = {
            let mut rng = inner
                .rng
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            (sampler.sample(&mut *rng), rates.decide(&mut *rng))
        };
        let fault_cause = match fault {
            Fault::None => String::new(),
            Fault::Error => cause(
                &inner.keys.fail,
                overrides.error_rate,
                "--error-rate",
                rates.error,
            ),
            Fault::Hang => cause(
                &inner.keys.hang,
                overrides.hang_rate,
                "--hang-rate",
                rates.hang,
            ),
        };
        Ok(Plan {
            spec,
            delay: sample.delay.min(inner.max_delay),
            sample,
            clamped: sample.delay > inner.max_delay,
            fault,
            fault_cause,
            baggage_keys: overrides.keys,
        })
    }

    /// The `db.query` span's body; the delay counts from `started`, on the
    /// precise [`timer`](crate::timer) (Tokio's would add 1–2 ms).
    async fn execute(
        &self,
        plan: &Plan,
        started: Instant,
        span: &tracing::Span,
    ) -> Result<(), ApiError> {
        let service = self.inner.name.service;
        let deadline = started + plan.delay;
        match plan.fault {
            Fault::None => {
                timer::sleep_until(deadline).await;
                Ok(())
            }
            Fault::Error => {
                timer::sleep_until(deadline).await;
                mark_error(span);
                tracing::warn!(cause = %plan.fault_cause, "injected failure");
                Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "injected_fault",
                    format!("{service}: injected failure ({})", plan.fault_cause),
                ))
            }
            Fault::Hang => {
                tracing::info!(cause = %plan.fault_cause, "hanging: no answer until the client gives up");
                let answer = tokio::select! {
                    () = self.inner.shutdown.cancelled() => self.shutting_down(),
                    () = tokio::time::sleep(self.inner.max_delay) => ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "injected_fault",
                        format!(
                            "{service}: injected hang ({}) released after {} (--max-delay)",
                            plan.fault_cause,
                            format_duration(self.inner.max_delay)
                        ),
                    ),
                };
                mark_error(span);
                tracing::warn!("hang released: {}", answer.message);
                Err(answer)
            }
        }
    }

    fn shutting_down(&self) -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            format!("{} is shutting down", self.inner.name.service),
        )
    }
}

/// `baggage fail.orders=1` or `--error-rate 0.02`: who asked for the fault.
fn cause(key: &str, from_baggage: Option<Probability>, flag: &str, rate: Probability) -> String {
    match from_baggage {
        Some(_) => format!("baggage {key}={rate}"),
        None => format!("{flag} {rate}"),
    }
}

fn mark_error(span: &tracing::Span) {
    span.record("otel.status_code", "ERROR");
    span.record("error.type", "injected_fault");
}

/// What one request will get.
#[derive(Debug, Clone)]
struct Plan {
    spec: Arc<str>,
    sample: Sample,
    /// The sample, clamped to `--max-delay`.
    delay: Duration,
    clamped: bool,
    fault: Fault,
    fault_cause: String,
    baggage_keys: Vec<String>,
}

impl Plan {
    fn record(&self, span: &tracing::Span) {
        span.record("latency_lab.latency_spec", &*self.spec);
        if self.fault != Fault::Hang {
            span.record("latency_lab.delay_ms", self.delay.as_secs_f64() * 1000.0);
            span.record("latency_lab.spiked", self.sample.spiked);
            span.record("latency_lab.delay_clamped", self.clamped);
        }
        span.record("latency_lab.fault", self.fault.as_str());
        if self.baggage_keys.is_empty() {
            span.record("latency_lab.override_source", "config");
        } else {
            span.record("latency_lab.override_source", "baggage");
            span.record(
                "latency_lab.baggage_overrides",
                self.baggage_keys.join(",").as_str(),
            );
        }
    }
}

/// Notes on the span that a query was abandoned — dropped by the
/// server because the client went away — and records its duration so far
/// with `error.type = abandoned`, unless disarmed first.
struct Abandoned(Option<AbandonedQuery>);

struct AbandonedQuery {
    span: tracing::Span,
    query: SimulatedQuery,
    started: Instant,
    metrics: QueryMetrics,
}

impl Abandoned {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for Abandoned {
    fn drop(&mut self) {
        if let Some(q) = self.0.take() {
            tracing::info!(parent: &q.span, "abandoned: the client gave up waiting");
            q.metrics
                .record(&q.query, q.started.elapsed(), Some("abandoned"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: MockName = MockName {
        service: "order-service",
        short: "orders",
    };

    fn settings(latency: &str, max_delay: Duration) -> MockSettings {
        MockSettings {
            latency: latency.parse().unwrap(),
            faults: FaultRates::default(),
            db_pool_size: None,
            max_delay,
        }
    }

    fn overrides(entries: &[(&str, &str)]) -> Overrides {
        let keys = OverrideKeys::for_mock(NAME.short);
        Overrides::read(&keys, |k| {
            entries
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| (*v).to_owned())
        })
        .unwrap()
    }

    #[test]
    fn a_seed_fixes_the_draws() {
        let s = settings("lognormal(80ms,900ms)", DEFAULT_MAX_DELAY);
        let delays = |seed| {
            let mock = Mock::seeded(NAME, s.clone(), seed).unwrap();
            (0..50)
                .map(|_| mock.plan(Overrides::default()).unwrap().delay)
                .collect::<Vec<_>>()
        };
        assert_eq!(delays(1), delays(1));
        assert_ne!(delays(1), delays(2));
    }

    #[test]
    fn baggage_wins_over_the_configuration_key_by_key() {
        let mock = Mock::seeded(NAME, settings("200ms", DEFAULT_MAX_DELAY), 3).unwrap();
        let plan = mock.plan(Overrides::default()).unwrap();
        assert_eq!(
            (&*plan.spec, plan.delay),
            ("200ms", Duration::from_millis(200))
        );
        assert_eq!(plan.fault, Fault::None);

        let plan = mock
            .plan(overrides(&[
                ("latency.orders", "900ms"),
                ("fail.orders", "1"),
            ]))
            .unwrap();
        assert_eq!(plan.delay, Duration::from_millis(900));
        assert_eq!(plan.fault, Fault::Error);
        assert_eq!(plan.fault_cause, "baggage fail.orders=1");
        assert_eq!(plan.baggage_keys, ["latency.orders", "fail.orders"]);

        // Only the error rate was overridden: the latency is as configured.
        let plan = mock.plan(overrides(&[("hang.orders", "1")])).unwrap();
        assert_eq!(plan.delay, Duration::from_millis(200));
        assert_eq!(plan.fault, Fault::Hang);
    }

    #[test]
    fn configured_rates_name_their_flag() {
        let mock = Mock::seeded(
            NAME,
            MockSettings {
                faults: FaultRates {
                    error: Probability::ALWAYS,
                    hang: Probability::NEVER,
                },
                ..settings("1ms", DEFAULT_MAX_DELAY)
            },
            4,
        )
        .unwrap();
        let plan = mock.plan(Overrides::default()).unwrap();
        assert_eq!(plan.fault_cause, "--error-rate 1");
        // Baggage can also switch a configured fault off for one request.
        let plan = mock.plan(overrides(&[("fail.orders", "0")])).unwrap();
        assert_eq!(plan.fault, Fault::None);
    }

    #[test]
    fn requests_above_the_limit_are_refused_and_draws_above_it_clamped() {
        let max = Duration::from_secs(1);
        let mock = Mock::seeded(NAME, settings("pareto(scale=10ms,shape=0.5)", max), 5).unwrap();
        for asked in ["5s", "uniform(0ms,2s)", "10ms+spike(p=0.001,1s)"] {
            let err = mock
                .plan(overrides(&[("latency.orders", asked)]))
                .unwrap_err();
            assert_eq!(err.status, StatusCode::BAD_REQUEST, "{asked}");
            assert_eq!(err.code, "delay_too_long", "{asked}");
            assert!(err.message.contains("maximum delay of 1s"), "{err}");
        }
        // A Pareto whose median is beyond any clock, and one merely long:
        // both limits read as durations.
        for (asked, asks) in [
            (
                "pareto(scale=50ms,shape=0.001)",
                "asks for up to more than 24h,",
            ),
            ("pareto(scale=50ms,shape=0.1)", "asks for up to 51.2s,"),
        ] {
            let err = mock
                .plan(overrides(&[("latency.orders", asked)]))
                .unwrap_err();
            assert_eq!(err.code, "delay_too_long", "{asked}");
            assert!(
                err.message.contains(asks)
                    && err.message.ends_with("maximum delay of 1s (--max-delay)"),
                "{err}"
            );
            assert!(err.message.len() < 200, "{err}");
        }
        // P(X > 1s) = (10ms / 1s)^0.5 = 10 %: some of 500 draws are cut.
        let plans: Vec<Plan> = (0..500)
            .map(|_| mock.plan(Overrides::default()).unwrap())
            .collect();
        assert!(plans.iter().all(|p| p.delay <= max));
        let clamped = plans.iter().filter(|p| p.clamped).count();
        assert!((20..100).contains(&clamped), "{clamped}");
        assert!(plans
            .iter()
            .filter(|p| p.clamped)
            .all(|p| p.delay == max && p.sample.delay > max));
    }
}
