//! One call to one dependency: build the URL, send it through the traced
//! client, turn what came back into a value or an [`AggregatorError`] —
//! wrapped in the remedies the request asked for, composed here and only
//! here, in the order explained in [`crate::resilience`]: bulkhead →
//! breaker → hedge → retry → attempt. Which errors are retried, counted by
//! the breaker or end a hedge leg is `crate::failure`'s judgement.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use reqwest_middleware::Error as MiddlewareError;
use serde::de::DeserializeOwned;
use telemetry::client::{ResendCount, SpanAttributes, UrlTemplate};
use telemetry::HttpClient;
use url::Url;

use crate::resilience::breaker::SharedBreaker;
use crate::resilience::budget::RetryBudget;
use crate::resilience::bulkhead::Bulkhead;
use crate::resilience::hedge::{HedgeAfter, LatencyWindow, Leg};
use crate::resilience::metrics::RemedyMetrics;
use crate::resilience::retry::{self, RetryConfig};
use crate::resilience::{RemedyConfig, Switches};
use crate::AggregatorError;

/// A value and how long the call that produced it took.
#[derive(Debug)]
pub(crate) struct Timed<T> {
    pub value: T,
    pub elapsed: Duration,
}

/// How long each attempt of one call may take. The first gets what the
/// bulkhead wait left of the call's timeout — the wait comes out of the
/// same deadline, so a queued call still ends within its timeout instead of
/// up to twice it; a retry (a new attempt after a failure) gets the whole
/// timeout again, as without a bulkhead.
#[derive(Debug, Clone, Copy)]
struct AttemptTimeouts {
    /// The call's timeout, as configured (and as error messages state it).
    timeout: Duration,
    /// What the first attempt (of each hedge leg) may take.
    first: Duration,
}

impl AttemptTimeouts {
    /// `waited` in the bulkhead before the first attempt; never below the
    /// shortest timeout there is, so a permit granted at the last moment
    /// still makes one (quickly failing) attempt rather than a zero timeout.
    fn after_wait(timeout: Duration, waited: Duration) -> Self {
        Self {
            timeout,
            first: timeout
                .saturating_sub(waited)
                .max(crate::resilience::MIN_DELAY),
        }
    }

    fn for_attempt(&self, resends: u32) -> Duration {
        if resends == 0 {
            self.first
        } else {
            self.timeout
        }
    }
}

/// One dependency, with the state its remedies share across requests.
pub(crate) struct Downstream {
    /// The dependency's service name, used in error messages and spans.
    pub name: &'static str,
    base_url: Url,
    client: HttpClient,
    retry: RetryConfig,
    budget: Mutex<RetryBudget>,
    breaker: std::sync::Arc<SharedBreaker>,
    bulkhead: Option<Bulkhead>,
    latencies: Mutex<LatencyWindow>,
    /// What the remedies did, counted (`latency_lab.*`).
    pub metrics: RemedyMetrics,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded values are counters and windows: a panic elsewhere cannot
    // leave them worse than stale. Keep serving.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Downstream {
    pub fn new(
        name: &'static str,
        base_url: Url,
        client: HttpClient,
        remedies: &RemedyConfig,
    ) -> Self {
        Self {
            name,
            base_url,
            client,
            retry: remedies.retry,
            budget: Mutex::new(RetryBudget::new(remedies.budget, Instant::now())),
            breaker: SharedBreaker::new(name, remedies.breaker),
            bulkhead: remedies.max_in_flight.map(|n| Bulkhead::new(n.get())),
            latencies: Mutex::new(LatencyWindow::default()),
            metrics: RemedyMetrics::new(&telemetry::metrics::meter(), name),
        }
    }

    /// `GET` the path made of `segments` (each percent-encoded, so an id can
    /// never change the path) and decode the JSON answer, with the
    /// `remedies` the request switched on and `timeout` per attempt, the
    /// bulkhead wait included in the first one's. `elapsed` covers
    /// everything: queueing, retries, hedges.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        template: &'static str,
        remedies: &Switches,
        timeout: Duration,
    ) -> Result<Timed<T>, AggregatorError> {
        let mut url = self.base_url.clone();
        url.path_segments_mut()
            .map_err(|()| AggregatorError::Internal(format!("{} has no base URL", self.name)))?
            .pop_if_empty()
            .extend(segments);
        let started = Instant::now();
        // Every call deposits into the retry budget, whether it retries or not.
        lock(&self.budget).record_call(started);

        // 1. Bulkhead: a permit for the whole call, held until it returns.
        let _permit = match (&self.bulkhead, remedies.bulkhead) {
            (Some(bulkhead), true) => {
                Some(bulkhead.acquire(self.name, timeout).await.map_err(|full| {
                    self.metrics.bulkhead_rejected();
                    AggregatorError::BulkheadFull {
                        dependency: self.name,
                        max_in_flight: full.max_in_flight,
                        waited: full.waited,
                    }
                })?)
            }
            _ => None,
        };
        // 2. Breaker: fail fast while open; judge the call's final outcome.
        let admitted = if remedies.breaker {
            let admission = self.breaker.admit();
            self.metrics.breaker_state(self.breaker.state());
            Some(admission.map_err(|rejected| {
                self.metrics.breaker_rejected();
                AggregatorError::CircuitOpen {
                    dependency: self.name,
                    retry_in: rejected.retry_in,
                }
            })?)
        } else {
            None
        };
        // 3–5. Hedge → retry → attempt, the first attempt within what the
        // bulkhead wait left of the timeout.
        let timeouts = AttemptTimeouts::after_wait(timeout, started.elapsed());
        let result = self.hedged::<T>(&url, template, remedies, timeouts).await;
        if let Some(permit) = admitted {
            permit.record(
                result
                    .as_ref()
                    .is_err_and(|error| error.failure().is_dependency_failure()),
            );
            self.metrics.breaker_state(self.breaker.state());
        }
        result.map(|value| Timed {
            value,
            elapsed: started.elapsed(),
        })
    }

    /// The hedge delay for this call, if it is to be hedged.
    fn hedge_delay(&self, hedge_after: HedgeAfter) -> Option<Duration> {
        match hedge_after {
            HedgeAfter::Off => None,
            HedgeAfter::Fixed(delay) => Some(delay),
            // Too few samples yet: no hedge, rather than a guess.
            HedgeAfter::Percentile(p) => lock(&self.latencies).percentile(p),
        }
    }

    /// Step 3, hedge: if the first leg has not answered after the delay, race a
    /// second; the first *answer* wins (a success, or a 4xx that a second
    /// copy would only repeat) and the other leg is cancelled. A leg that
    /// fails leaves the race to the other.
    async fn hedged<T: DeserializeOwned>(
        &self,
        url: &Url,
        template: &'static str,
        remedies: &Switches,
        timeouts: AttemptTimeouts,
    ) -> Result<T, AggregatorError> {
        let retry = remedies.retry;
        let Some(delay) = self.hedge_delay(remedies.hedge_after) else {
            return self
                .with_retries(url, template, retry, timeouts, None)
                .await;
        };
        let (first_leg, second_leg) = (Leg::primary(), Leg::hedge());
        let primary = self.with_retries(url, template, retry, timeouts, Some(&first_leg));
        let hedge = self.with_retries(url, template, retry, timeouts, Some(&second_leg));
        tokio::pin!(primary, hedge);

        tokio::select! {
            biased;
            result = &mut primary => return result,
            () = tokio::time::sleep(delay) => {}
        }
        if !lock(&self.budget).try_retry(Instant::now()) {
            self.budget_exhausted("hedge", 0);
            return primary.await;
        }
        first_leg.mark_hedged();
        self.metrics.hedge_sent();
        tracing::info!(
            dependency = self.name,
            hedge.after_ms = delay.as_secs_f64() * 1000.0,
            "hedge.sent"
        );

        let (result, winner, loser, other, other_is_hedge) = tokio::select! {
            result = &mut primary => (result, &first_leg, &second_leg, hedge, true),
            result = &mut hedge => (result, &second_leg, &first_leg, primary, false),
        };
        let answered = match &result {
            Ok(_) => true,
            Err(error) => !error.failure().is_dependency_failure(),
        };
        if answered {
            if !other_is_hedge {
                self.metrics.hedge_won();
            }
            // Marked before `other` is dropped (on return), which ends it.
            loser.cancel(winner.number);
            return result;
        }
        match other.await {
            Ok(value) => {
                if other_is_hedge {
                    self.metrics.hedge_won();
                }
                Ok(value)
            }
            Err(_) => result,
        }
    }

    /// Step 4, retry: attempt, and on a retryable failure (when `retry` is
    /// on) wait and attempt again, while the schedule and the budget allow.
    async fn with_retries<T: DeserializeOwned>(
        &self,
        url: &Url,
        template: &'static str,
        retry: bool,
        timeouts: AttemptTimeouts,
        leg: Option<&Leg>,
    ) -> Result<T, AggregatorError> {
        let mut resends = 0;
        loop {
            let result = self.attempt(url, template, timeouts, resends, leg).await;
            if resends > 0 {
                self.metrics.retry_attempt(result.is_ok());
            }
            let error = match result {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            if !retry || !error.failure().is_retryable() {
                return Err(error);
            }
            let Some(delay) = self.retry.delay(resends) else {
                tracing::info!(
                    dependency = self.name,
                    retry.max_retries = i64::from(self.retry.max_retries),
                    "retry.exhausted"
                );
                return Err(error);
            };
            if !lock(&self.budget).try_retry(Instant::now()) {
                self.budget_exhausted("retry", resends);
                return Err(error);
            }
            resends += 1;
            retry::backoff(self.name, delay, resends).await;
        }
    }

    fn budget_exhausted(&self, kind: &'static str, resends: u32) {
        self.metrics.budget_exhausted(kind);
        let budget = lock(&self.budget);
        let config = budget.config();
        let (calls, retries) = budget.totals(Instant::now());
        drop(budget);
        tracing::info!(
            dependency = self.name,
            retry.kind = kind,
            http.request.resend_count = i64::from(resends),
            retry.budget.ratio = config.ratio,
            retry.budget.calls = calls as i64,
            retry.budget.retries = retries as i64,
            "retry.budget_exhausted"
        );
    }

    /// Step 5, one attempt: one CLIENT span, bounded by its share of the
    /// timeout ([`AttemptTimeouts`]).
    async fn attempt<T: DeserializeOwned>(
        &self,
        url: &Url,
        template: &'static str,
        timeouts: AttemptTimeouts,
        resends: u32,
        leg: Option<&Leg>,
    ) -> Result<T, AggregatorError> {
        let started = Instant::now();
        // Errors state the call's timeout, which a queued call has used up.
        let timeout = timeouts.timeout;
        let mut request = self
            .client
            .get(url.clone())
            .timeout(timeouts.for_attempt(resends))
            .with_extension(UrlTemplate(template.into()))
            .with_extension(ResendCount(resends));
        if let Some(leg) = leg {
            request = request
                .with_extension(SpanAttributes(leg.span_attributes()))
                .with_extension(leg.slot.clone());
        }
        let sent = request.send().await;
        if let Some(leg) = leg {
            // The call returned: let its span end with it.
            leg.slot.take();
        }
        let response = sent.map_err(|e| self.classify_send_error(e, timeout))?;

        let status = response.status();
        if !status.is_success() {
            return Err(self.classify_status(status, response).await);
        }
        let value = response.json::<T>().await.map_err(|e| {
            if e.is_timeout() {
                self.timeout(timeout)
            } else {
                AggregatorError::BadAnswer {
                    dependency: self.name,
                    message: e.to_string(),
                }
            }
        })?;
        lock(&self.latencies).record(started.elapsed());
        Ok(value)
    }

    fn timeout(&self, timeout: Duration) -> AggregatorError {
        AggregatorError::Timeout {
            dependency: self.name,
            timeout,
        }
    }

    fn classify_send_error(&self, error: MiddlewareError, timeout: Duration) -> AggregatorError {
        match &error {
            MiddlewareError::Reqwest(e) if e.is_timeout() => self.timeout(timeout),
            _ => AggregatorError::Unreachable {
                dependency: self.name,
                connect_failed: matches!(&error, MiddlewareError::Reqwest(e) if e.is_connect()),
                message: error_chain(&error),
            },
        }
    }

    /// 400 and 404 are the caller's mistake, passed through with the
    /// dependency's own message; anything else means the dependency failed.
    async fn classify_status(
        &self,
        status: StatusCode,
        response: reqwest::Response,
    ) -> AggregatorError {
        if status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND {
            let message = response
                .json::<serde_json::Value>()
                .await
                .ok()
                .and_then(|v| {
                    v.pointer("/error/message")
                        .and_then(|m| m.as_str())
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| format!("{} answered HTTP {status}", self.name));
            return AggregatorError::Rejected {
                dependency: self.name,
                status,
                message,
            };
        }
        AggregatorError::Failed {
            dependency: self.name,
            status,
        }
    }
}

/// reqwest's top-level message ("error sending request") hides the cause
/// ("connection refused"); the whole chain is what a reader needs.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroUsize;
    use std::sync::Arc;

    use axum::routing::get;
    use axum::Router;

    use super::*;

    /// A dependency that answers `{}` after `delay`.
    async fn slow_dependency(delay: Duration) -> Url {
        let router = Router::new().route(
            "/users/{id}",
            get(move || async move {
                tokio::time::sleep(delay).await;
                axum::Json(serde_json::json!({}))
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        format!("http://{addr}").parse().unwrap()
    }

    /// The wait for a bulkhead permit comes out of the call's timeout: a call
    /// queued behind one that holds the only permit for most of the timeout
    /// gives up within about the timeout — it used to wait the whole
    /// timeout and then attempt for another whole timeout.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_bulkhead_wait_comes_out_of_the_timeout() {
        // The dependency takes 2/3 of the timeout: the first call fits, the
        // queued one cannot wait for it and still get its answer in time.
        let timeout = Duration::from_millis(900);
        let answer_after = Duration::from_millis(600);
        let remedies = RemedyConfig {
            max_in_flight: NonZeroUsize::new(1),
            ..RemedyConfig::default()
        };
        let dependency = Arc::new(Downstream::new(
            "user-service",
            slow_dependency(answer_after).await,
            telemetry::traced_client().unwrap(),
            &remedies,
        ));
        let switches = Switches {
            bulkhead: true,
            ..Switches::default()
        };
        let call = |dependency: Arc<Downstream>| async move {
            let started = Instant::now();
            let result = dependency
                .get_json::<serde_json::Value>(&["users", "1"], "/users/{id}", &switches, timeout)
                .await;
            (result, started.elapsed())
        };
        let first = tokio::spawn(call(dependency.clone()));
        // The first call holds the permit before the second asks for it.
        while dependency.bulkhead.as_ref().unwrap().in_flight() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (queued, queued_took) = call(dependency.clone()).await;
        let (first, _) = first.await.unwrap();
        assert!(first.is_ok(), "the first call fits its timeout: {first:?}");
        assert!(
            matches!(
                queued,
                Err(AggregatorError::Timeout { timeout: t, .. }) if t == timeout
            ) || matches!(queued, Err(AggregatorError::BulkheadFull { .. })),
            "the queued call cannot get its answer in time: {queued:?}"
        );
        // Before: wait ≈ 600 ms, then an attempt of its own 900 ms that
        // succeeds at ≈ 1.2 s. Now it ends at its deadline, well before.
        assert!(
            queued_took < timeout + answer_after / 2,
            "the queued call took {queued_took:?}, timeout {timeout:?}"
        );
    }

    #[test]
    fn only_the_first_attempt_shares_its_timeout_with_the_wait() {
        let timeout = Duration::from_secs(2);
        let t = AttemptTimeouts::after_wait(timeout, Duration::from_millis(500));
        assert_eq!(t.for_attempt(0), Duration::from_millis(1500));
        assert_eq!(t.for_attempt(1), timeout);
        let used_up = AttemptTimeouts::after_wait(timeout, Duration::from_secs(3));
        assert_eq!(used_up.for_attempt(0), crate::resilience::MIN_DELAY);
    }
}
