//! The SERVER span of every incoming request.
//!
//! One axum middleware, applied with `Router::layer`, so each route gets a
//! span named after its *template* (`GET /users/{id}`, not `GET /users/42`):
//! span names stay low-cardinality and group well in Jaeger's operation list.
//!
//! The same middleware records `http.server.request.duration` (seconds, from
//! the request's arrival to its response) by `http.request.method`,
//! `http.route` (the template, never the path), `http.response.status_code`,
//! `url.scheme` and, for a 5xx, `error.type` (the status code, as the HTTP
//! semantic conventions say) — the per-endpoint p50/p99 of every service.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use http::Method;
use opentelemetry::metrics::Histogram;
use opentelemetry::KeyValue;
use opentelemetry_semantic_conventions::attribute as semconv;
use tracing::field::Empty;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{metrics, propagation};

pub use crate::propagation::TRACERESPONSE;

/// Axum middleware: `router.layer(axum::middleware::from_fn(telemetry::server::trace_request))`.
///
/// The remote parent is extracted from the headers and attached *before* the
/// span is first entered; span name and kind are fixed at creation, because
/// tracing-opentelemetry ignores them when recorded later.
pub async fn trace_request(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let mut attributes = metric_attributes(&req);
    let span = server_span(&req);
    let parent = propagation::extract(req.headers());
    // The span's `trace_state` is what the SDK could hold of the list; the
    // whole list, when that is less, goes beside it (see the constant).
    if let Some(list) = propagation::tracestate_beyond_sdk(&parent) {
        span.set_attribute(propagation::TRACESTATE_RECEIVED_ATTRIBUTE, list);
    }
    if let Err(e) = span.set_parent(parent) {
        tracing::debug!(error = %e, "could not attach the remote parent");
    }

    let mut response = next.run(req).instrument(span.clone()).await;

    let status = response.status();
    span.record(
        semconv::HTTP_RESPONSE_STATUS_CODE,
        i64::from(status.as_u16()),
    );
    // Server spans: 5xx is an error of ours, 4xx is the caller's mistake and
    // leaves the status unset (HTTP semantic conventions).
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
        span.record(semconv::ERROR_TYPE, status.as_str());
    }
    // `traceresponse`, through the response side of the same propagation
    // set-up that extracted the parent above.
    propagation::inject_response(&span.context(), response.headers_mut());

    attributes.push(KeyValue::new(
        semconv::HTTP_RESPONSE_STATUS_CODE,
        i64::from(status.as_u16()),
    ));
    if status.is_server_error() {
        attributes.push(KeyValue::new(
            semconv::ERROR_TYPE,
            status.as_str().to_owned(),
        ));
    }
    request_duration().record(started.elapsed().as_secs_f64(), &attributes);
    response
}

/// `http.server.request.duration`, created on first use: after
/// [`crate::init`] installed the meter provider.
fn request_duration() -> &'static Histogram<f64> {
    static HISTOGRAM: OnceLock<Histogram<f64>> = OnceLock::new();
    HISTOGRAM.get_or_init(|| {
        metrics::duration_histogram(
            &metrics::meter(),
            "http.server.request.duration",
            "Duration of HTTP server requests.",
        )
    })
}

/// The attributes known before the handler runs. Only those the semantic
/// conventions list for this metric, and none of high cardinality: the
/// route template, not the path; no client address, no query.
fn metric_attributes(req: &Request) -> Vec<KeyValue> {
    let mut attributes = vec![
        KeyValue::new(semconv::HTTP_REQUEST_METHOD, semconv_method(req.method())),
        KeyValue::new(semconv::URL_SCHEME, "http"),
    ];
    if let Some(route) = req.extensions().get::<MatchedPath>() {
        attributes.push(KeyValue::new(
            semconv::HTTP_ROUTE,
            route.as_str().to_owned(),
        ));
    }
    attributes
}

fn server_span(req: &Request) -> tracing::Span {
    let method = semconv_method(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let name = match &route {
        Some(route) => format!("{method} {route}"),
        None => method.to_owned(),
    };
    let (host, port) = server_address(req);
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string());
    let user_agent = req
        .headers()
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok());

    let span = tracing::info_span!(
        "HTTP request",
        otel.name = %name,
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = method,
        http.request.method_original = Empty,
        http.route = Empty,
        http.response.status_code = Empty,
        url.path = req.uri().path(),
        url.query = Empty,
        url.scheme = "http",
        server.address = Empty,
        server.port = Empty,
        client.address = Empty,
        user_agent.original = Empty,
        network.protocol.version = protocol_version(req),
        error.type = Empty,
    );
    if method == "_OTHER" {
        span.record("http.request.method_original", req.method().as_str());
    }
    if let Some(route) = &route {
        span.record(semconv::HTTP_ROUTE, route.as_str());
    }
    if let Some(query) = req.uri().query() {
        span.record(semconv::URL_QUERY, query);
    }
    if let Some(host) = host {
        span.record(semconv::SERVER_ADDRESS, host.as_str());
    }
    if let Some(port) = port {
        span.record(semconv::SERVER_PORT, i64::from(port));
    }
    if let Some(client) = client {
        span.record(semconv::CLIENT_ADDRESS, client.as_str());
    }
    if let Some(ua) = user_agent {
        span.record(semconv::USER_AGENT_ORIGINAL, ua);
    }
    span
}

/// Methods outside the registry are reported as `_OTHER`, so a client sending
/// random verbs cannot explode the span-name cardinality.
fn semconv_method(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "_OTHER",
    }
}

fn protocol_version(req: &Request) -> &'static str {
    match req.version() {
        http::Version::HTTP_09 => "0.9",
        http::Version::HTTP_10 => "1.0",
        http::Version::HTTP_2 => "2",
        http::Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

/// `server.address`/`server.port` as the client addressed us (the `Host`
/// header), which is what a reader of the trace recognises.
fn server_address(req: &Request) -> (Option<String>, Option<u16>) {
    let authority = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.parse::<http::uri::Authority>().ok())
        .or_else(|| req.uri().authority().cloned());
    match authority {
        Some(a) => (Some(a.host().to_owned()), a.port_u16()),
        None => (None, None),
    }
}
