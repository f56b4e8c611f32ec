//! The outgoing HTTP client: reqwest + reqwest-middleware + reqwest-tracing.
//!
//! reqwest-tracing injects the current context through the global propagator
//! (`traceparent`, `tracestate`, `baggage`) and opens a span per request; we
//! supply our own span *backend* so the CLIENT span follows the current HTTP
//! semantic conventions exactly (integer `server.port`, `url.template`,
//! `error.type`), which the stock backend does not.
//!
//! The backend also records `http.client.request.duration` (seconds, until
//! the response headers arrive), one sample per attempt — a retry or a hedge
//! is a request of its own — by `http.request.method`, `server.address`,
//! `server.port`, `url.template` (opt-in in the conventions; here a handful
//! of route templates, never the URL with its ids),
//! `http.response.status_code` and `error.type` (the status code for 4xx/5xx;
//! `timeout`, `connect_error`, … for a call without an answer; `cancelled`
//! for an attempt dropped before it ended, such as the losing leg of a
//! hedge).

use std::borrow::Cow;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use http::Extensions;
use opentelemetry::metrics::Histogram;
use opentelemetry::KeyValue;
use opentelemetry_semantic_conventions::attribute as semconv;
use reqwest::{Request, Response};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use reqwest_tracing::{ReqwestOtelSpanBackend, TracingMiddleware};
use tracing::field::Empty;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{metrics, TelemetryError};

/// The client every service uses for its downstream calls.
pub type HttpClient = ClientWithMiddleware;

/// Request extension naming the route template a request targets, e.g.
/// `/users/{id}`: the span is then named `GET /users/{id}` and carries
/// `url.template`, while `url.full` keeps the concrete URL.
#[derive(Debug, Clone)]
pub struct UrlTemplate(pub Cow<'static, str>);

/// Request extension: this request resends an earlier one (a retry), `n`
/// being 1 for the first resend. Recorded as `http.request.resend_count`;
/// absent (or 0) on a first attempt, where the semantic conventions want
/// the attribute left out.
#[derive(Debug, Clone, Copy)]
pub struct ResendCount(pub u32);

/// Request extension: extra attributes for the CLIENT span, set as it opens
/// (the aggregator marks hedged attempts with `hedge = true`).
#[derive(Debug, Clone, Default)]
pub struct SpanAttributes(pub Vec<opentelemetry::KeyValue>);

/// Request extension: receives a handle on the CLIENT span as it opens, so
/// the caller can still annotate the span after dropping the request future
/// (the aggregator marks a cancelled hedge this way). A handle keeps the
/// span open: [`ClientSpanSlot::take`] it once the call has returned.
#[derive(Debug, Clone, Default)]
pub struct ClientSpanSlot(Arc<Mutex<Option<Span>>>);

impl ClientSpanSlot {
    /// The span of the call in flight, if any; the slot is empty afterwards.
    pub fn take(&self) -> Option<Span> {
        self.0.lock().map(|mut s| s.take()).unwrap_or_default()
    }

    /// A handle on the span of the call in flight, leaving it in the slot.
    pub fn current(&self) -> Option<Span> {
        self.0.lock().ok().and_then(|s| s.clone())
    }

    fn put(&self, span: &Span) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(span.clone());
        }
    }
}

/// The client's idle keep-alive pool: how many idle connections it keeps
/// per host, and for how long.
///
/// reqwest's own defaults keep every idle connection (no cap) for 90 s: after
/// a burst of 1000 concurrent calls the aggregator held about 1000 sockets,
/// and so did the service it had called. Bounded, a burst leaves at most
/// `max_idle_per_host` connections behind, and those close after
/// `idle_timeout` without use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Idle connections kept per host; 0 keeps none (a new connection per
    /// call).
    pub max_idle_per_host: usize,
    /// An idle connection unused this long is closed.
    pub idle_timeout: Duration,
}

impl PoolConfig {
    /// Enough for the suite's steady loads to reuse their connections (300
    /// requests a second at 200 ms keep about 60 busy per host), few enough
    /// that a burst's leftovers are a handful of sockets.
    pub const DEFAULT_MAX_IDLE_PER_HOST: usize = 64;
    /// Shorter than a server's usual keep-alive timeout, so the client, not
    /// the server, is the one that closes an idle connection: a connection
    /// the server closes just as the client reuses it fails that call.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(5);
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            max_idle_per_host: Self::DEFAULT_MAX_IDLE_PER_HOST,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
        }
    }
}

/// Builds the traced client with the default [`PoolConfig`]. Connection
/// pooling is reqwest's: one client per service, shared by every request,
/// so keep-alive connections are reused.
pub fn traced_client() -> Result<HttpClient, TelemetryError> {
    traced_client_with(|builder| builder)
}

/// [`traced_client`] with another idle pool (the aggregator's
/// `--pool-max-idle-per-host` and `--pool-idle-timeout`).
pub fn traced_client_with_pool(pool: PoolConfig) -> Result<HttpClient, TelemetryError> {
    build(pool, |builder| builder)
}

/// [`traced_client`] with extra reqwest settings, for a caller that needs a
/// stricter client (the aggregator's W3C validation endpoint turns redirects
/// and proxies off, so a loopback URL cannot lead anywhere else).
pub fn traced_client_with(
    configure: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
) -> Result<HttpClient, TelemetryError> {
    build(PoolConfig::default(), configure)
}

fn build(
    pool: PoolConfig,
    configure: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
) -> Result<HttpClient, TelemetryError> {
    let client = configure(
        reqwest::Client::builder()
            .user_agent(concat!("latency-lab/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(pool.max_idle_per_host)
            .pool_idle_timeout(pool.idle_timeout),
    )
    .build()?;
    Ok(ClientBuilder::new(client)
        .with(TracingMiddleware::<SemconvSpanBackend>::new())
        .build())
}

/// CLIENT spans per the HTTP semantic conventions.
pub struct SemconvSpanBackend;

impl ReqwestOtelSpanBackend for SemconvSpanBackend {
    fn on_request_start(req: &Request, ext: &mut Extensions) -> Span {
        let method = req.method().as_str();
        let template = ext.get::<UrlTemplate>().map(|t| t.0.clone());
        let name = match &template {
            Some(t) => format!("{method} {t}"),
            None => reqwest_tracing::default_span_name(req, ext).into_owned(),
        };
        let url = req.url();
        let span = tracing::info_span!(
            "HTTP request",
            otel.name = %name,
            otel.kind = "client",
            otel.status_code = Empty,
            http.request.method = method,
            http.request.resend_count = Empty,
            http.response.status_code = Empty,
            url.full = %redact_credentials(url),
            url.template = Empty,
            server.address = url.host_str().unwrap_or(""),
            server.port = url.port_or_known_default().map(i64::from).unwrap_or(0),
            error.type = Empty,
            error.message = Empty,
        );
        if let Some(t) = template {
            span.record(semconv::URL_TEMPLATE, t.as_ref());
        }
        if let Some(&ResendCount(n @ 1..)) = ext.get::<ResendCount>() {
            span.record(semconv::HTTP_REQUEST_RESEND_COUNT, i64::from(n));
        }
        if let Some(SpanAttributes(attributes)) = ext.get::<SpanAttributes>() {
            for kv in attributes {
                span.set_attribute(kv.key.clone(), kv.value.clone());
            }
        }
        if let Some(slot) = ext.get::<ClientSpanSlot>() {
            slot.put(&span);
        }
        ext.insert(AttemptTimer::start(req, ext.get::<UrlTemplate>()));
        span
    }

    fn on_request_end(
        span: &Span,
        outcome: &reqwest_middleware::Result<Response>,
        ext: &mut Extensions,
    ) {
        if let Some(timer) = ext.remove::<AttemptTimer>() {
            timer.finish(outcome);
        }
        match outcome {
            Ok(response) => {
                let status = response.status();
                span.record(
                    semconv::HTTP_RESPONSE_STATUS_CODE,
                    i64::from(status.as_u16()),
                );
                // Client spans: any 4xx or 5xx means the call did not do what
                // the caller asked.
                if status.is_client_error() || status.is_server_error() {
                    span.record("otel.status_code", "ERROR");
                    span.record(semconv::ERROR_TYPE, status.as_str());
                }
            }
            Err(error) => {
                span.record("otel.status_code", "ERROR");
                span.record(semconv::ERROR_TYPE, error_type(error));
                span.record("error.message", error.to_string().as_str());
            }
        }
    }
}

/// `http.client.request.duration`, created on first use: after
/// [`crate::init`] installed the meter provider.
fn request_duration() -> &'static Histogram<f64> {
    static HISTOGRAM: OnceLock<Histogram<f64>> = OnceLock::new();
    HISTOGRAM.get_or_init(|| {
        metrics::duration_histogram(
            &metrics::meter(),
            "http.client.request.duration",
            "Duration of HTTP client requests.",
        )
    })
}

/// Request extension set as an attempt starts: its start time and the
/// attributes known then. Finished with the outcome when the attempt ends;
/// dropped unfinished (the request future was dropped: a cancelled hedge
/// leg, a caller that gave up), it still records, as `error.type =
/// cancelled`, so every attempt is one sample.
#[derive(Clone)]
struct AttemptTimer(Arc<Mutex<Option<PendingAttempt>>>);

struct PendingAttempt {
    started: Instant,
    attributes: Vec<KeyValue>,
    recorded: bool,
}

impl AttemptTimer {
    fn start(req: &Request, template: Option<&UrlTemplate>) -> Self {
        let url = req.url();
        let mut attributes = vec![
            KeyValue::new(
                semconv::HTTP_REQUEST_METHOD,
                req.method().as_str().to_owned(),
            ),
            KeyValue::new(
                semconv::SERVER_ADDRESS,
                url.host_str().unwrap_or_default().to_owned(),
            ),
            KeyValue::new(
                semconv::SERVER_PORT,
                url.port_or_known_default().map(i64::from).unwrap_or(0),
            ),
        ];
        if let Some(UrlTemplate(t)) = template {
            attributes.push(KeyValue::new(semconv::URL_TEMPLATE, t.to_string()));
        }
        Self(Arc::new(Mutex::new(Some(PendingAttempt {
            started: Instant::now(),
            attributes,
            recorded: false,
        }))))
    }

    fn finish(self, outcome: &reqwest_middleware::Result<Response>) {
        let Some(mut pending) = self.0.lock().ok().and_then(|mut p| p.take()) else {
            return;
        };
        match outcome {
            Ok(response) => {
                let status = response.status();
                pending.attributes.push(KeyValue::new(
                    semconv::HTTP_RESPONSE_STATUS_CODE,
                    i64::from(status.as_u16()),
                ));
                if status.is_client_error() || status.is_server_error() {
                    pending.attributes.push(KeyValue::new(
                        semconv::ERROR_TYPE,
                        status.as_str().to_owned(),
                    ));
                }
            }
            Err(error) => pending
                .attributes
                .push(KeyValue::new(semconv::ERROR_TYPE, error_type(error))),
        }
        pending.record();
    }
}

impl PendingAttempt {
    fn record(&mut self) {
        self.recorded = true;
        request_duration().record(self.started.elapsed().as_secs_f64(), &self.attributes);
    }
}

impl Drop for PendingAttempt {
    fn drop(&mut self) {
        // Not recorded yet: the attempt was dropped mid-flight.
        if !self.recorded {
            self.attributes
                .push(KeyValue::new(semconv::ERROR_TYPE, "cancelled"));
            self.record();
        }
    }
}

/// A low-cardinality name for a failed call, for `error.type`.
pub fn error_type(error: &reqwest_middleware::Error) -> &'static str {
    match error {
        reqwest_middleware::Error::Reqwest(e) if e.is_timeout() => "timeout",
        reqwest_middleware::Error::Reqwest(e) if e.is_connect() => "connect_error",
        reqwest_middleware::Error::Reqwest(e) if e.is_body() || e.is_decode() => "response_error",
        reqwest_middleware::Error::Reqwest(_) => "request_error",
        reqwest_middleware::Error::Middleware(_) => "middleware_error",
    }
}

/// `url.full` must not leak credentials (semantic conventions: replace them
/// with `REDACTED`).
fn redact_credentials(url: &reqwest::Url) -> Cow<'_, str> {
    if url.username().is_empty() && url.password().is_none() {
        return Cow::Borrowed(url.as_str());
    }
    let mut url = url.clone();
    let _ = url.set_username("REDACTED");
    let _ = url.set_password(Some("REDACTED"));
    Cow::Owned(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_redacted() {
        let url: reqwest::Url = "http://alice:secret@example.test:81/x?y=1".parse().unwrap();
        assert_eq!(
            redact_credentials(&url),
            "http://REDACTED:REDACTED@example.test:81/x?y=1"
        );
        let url: reqwest::Url = "http://example.test/x".parse().unwrap();
        assert_eq!(redact_credentials(&url), "http://example.test/x");
    }
}
