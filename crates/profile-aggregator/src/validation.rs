//! `POST /verify-tracecontext`: the endpoint the official W3C Trace Context
//! test harness drives (the `test/` folder of the w3c/trace-context
//! repository).
//!
//! The harness sends a request with crafted `traceparent`/`tracestate` lines
//! and a JSON body `[{"url": "...", "arguments": [...]}, ...]`. For each
//! element, in order, the service POSTs `arguments` as a JSON body to `url`,
//! and answers once every call has finished; the harness then judges the
//! headers those calls carried. Each call goes through the same traced
//! client and global propagator as the profile fan-out, as a CLIENT span
//! under the request's SERVER span, so the harness tests exactly what every
//! other hop of the suite does.
//!
//! Because it POSTs wherever its caller says, the endpoint only exists when
//! the aggregator is started with `--tracecontext-validation`, refuses URLs
//! outside loopback unless `--tracecontext-validation-allow-remote` is given,
//! checks every URL before making the first call, and follows no redirect
//! and no proxy (so a loopback URL cannot lead anywhere else).

use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use telemetry::HttpClient;
use url::{Host, Url};

use crate::downstream::error_chain;
use crate::{AggregatorError, TraceContextValidation};

/// The route, as the harness documentation calls its endpoint.
pub(crate) const ROUTE: &str = "/verify-tracecontext";
/// The harness asks for at most three calls; anything far above is abuse.
const MAX_CALLS: usize = 32;
/// Per call; the harness itself gives each test 5 s by default.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// One element of the harness's request body.
#[derive(Debug, Deserialize)]
struct Call {
    url: String,
    /// Sent as the JSON body of the call; missing or `null` sends `[]`, as
    /// the harness's own callback handler does.
    #[serde(default)]
    arguments: Option<serde_json::Value>,
}

/// The answer: every call made, in order, with the status it got.
#[derive(Debug, Serialize)]
struct Report {
    calls: Vec<CallReport>,
}

#[derive(Debug, Serialize)]
struct CallReport {
    url: String,
    status: u16,
}

#[derive(Clone)]
struct ValidationState {
    client: HttpClient,
    policy: TraceContextValidation,
}

pub(crate) fn routes(policy: TraceContextValidation) -> Result<Router, AggregatorError> {
    let client = telemetry::traced_client_with(|builder| {
        builder
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
    })?;
    Ok(Router::new()
        .route(ROUTE, post(verify))
        .with_state(ValidationState { client, policy }))
}

async fn verify(
    State(state): State<ValidationState>,
    body: Result<Json<Vec<Call>>, JsonRejection>,
) -> Result<Json<Report>, AggregatorError> {
    let Json(calls) = body.map_err(|e| AggregatorError::BadRequest(e.body_text()))?;
    if calls.len() > MAX_CALLS {
        return Err(AggregatorError::BadRequest(format!(
            "{} calls requested: at most {MAX_CALLS} per request",
            calls.len()
        )));
    }
    // Every URL is checked before the first call: one refusal, no call.
    let targets = calls
        .iter()
        .map(|call| check_url(&call.url, state.policy))
        .collect::<Result<Vec<Url>, String>>()
        .map_err(AggregatorError::BadRequest)?;

    let total = calls.len();
    let mut done = Vec::with_capacity(total);
    let mut failures = Vec::new();
    for (call, url) in calls.into_iter().zip(targets) {
        let body = call.arguments.unwrap_or_else(|| serde_json::json!([]));
        match send(&state.client, url.clone(), &body).await {
            Ok(status) => {
                if !status.is_success() {
                    failures.push(format!("{url} answered HTTP {status}"));
                }
                done.push(CallReport {
                    url: url.to_string(),
                    status: status.as_u16(),
                });
            }
            Err(message) => failures.push(format!("{url}: {message}")),
        }
    }
    if !failures.is_empty() {
        return Err(AggregatorError::ValidationCalls {
            failed: failures.len(),
            total,
            details: failures.join("; "),
        });
    }
    Ok(Json(Report { calls: done }))
}

/// One call, waited for to the end of its answer.
async fn send(
    client: &HttpClient,
    url: Url,
    body: &serde_json::Value,
) -> Result<StatusCode, String> {
    let response = client
        .post(url)
        .timeout(CALL_TIMEOUT)
        .json(body)
        .send()
        .await
        .map_err(|e| error_chain(&e))?;
    let status = response.status();
    response.bytes().await.map_err(|e| error_chain(&e))?;
    Ok(status)
}

/// The URL to call, or why not. The same parsed `Url` is checked and
/// called, so no second parser can read the host differently.
fn check_url(raw: &str, policy: TraceContextValidation) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("{raw:?} is not an absolute URL: {e}"))?;
    if url.scheme() != "http" {
        return Err(format!(
            "refusing to call {raw:?}: only http:// URLs are supported"
        ));
    }
    let Some(host) = url.host() else {
        return Err(format!("refusing to call {raw:?}: the URL has no host"));
    };
    if policy == TraceContextValidation::AnyHost || is_loopback(&host) {
        return Ok(url);
    }
    Err(format!(
        "refusing to call {url}: {host} is not a loopback host (127.0.0.0/8, ::1, localhost); \
         start the aggregator with --tracecontext-validation-allow-remote to allow other hosts"
    ))
}

fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_http_urls_unless_allowed() {
        use TraceContextValidation::{AnyHost, LoopbackOnly};
        // (url, allowed with LoopbackOnly, allowed with AnyHost)
        let cases = [
            ("http://127.0.0.1:7777/callback/a.0", true, true),
            ("http://127.1.2.3/", true, true),
            ("http://127.1/", true, true),
            ("http://2130706433/", true, true),
            ("http://[::1]:7777/x", true, true),
            ("http://[::ffff:127.0.0.1]/x", true, true),
            ("http://localhost:7777/x", true, true),
            ("http://LOCALHOST/x", true, true),
            ("http://10.0.0.1/x", false, true),
            ("http://169.254.169.254/latest/meta-data", false, true),
            ("http://0.0.0.0/x", false, true),
            ("http://[::]/x", false, true),
            ("http://example.com/x", false, true),
            ("http://localhost.example.com/x", false, true),
            ("http://127.0.0.1.example.com/x", false, true),
            ("http://user@10.0.0.1/x", false, true),
            ("https://127.0.0.1/x", false, false),
            ("file:///etc/passwd", false, false),
            ("/relative", false, false),
            ("", false, false),
        ];
        for (url, loopback, any) in cases {
            assert_eq!(check_url(url, LoopbackOnly).is_ok(), loopback, "{url}");
            assert_eq!(check_url(url, AnyHost).is_ok(), any, "{url}");
        }
    }

    #[test]
    fn refusal_says_why_and_how_to_allow() {
        let message =
            check_url("http://10.1.2.3:80/x", TraceContextValidation::LoopbackOnly).unwrap_err();
        assert!(
            message.contains("10.1.2.3 is not a loopback host"),
            "{message}"
        );
        assert!(
            message.contains("--tracecontext-validation-allow-remote"),
            "{message}"
        );
    }
}
