//! Logs: JSON lines carry the OpenTelemetry ids of the request they belong
//! to, so a log search can jump to the trace; health probes are not traced.

use std::process::Stdio;

use service_kit::child::{ServiceCommand, Signal};
use tokio::io::AsyncReadExt;

use crate::common::{traceresponse_ids, Options, Suite, LAB, WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_trace_and_span_ids() {
    let dead = crate::common::closed_port_url();
    let mut child = ServiceCommand::new("profile-aggregator", LAB)
        .args([
            "serve",
            "profile-aggregator",
            "--listen",
            "127.0.0.1:0",
            "--user-service-url",
            &dead,
        ])
        .args(["--log-format", "json"])
        .env("OTEL_SDK_DISABLED", "true")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .ready_within(WAIT)
        .start()
        .await
        .unwrap();
    let mut logs = child.take_stderr().unwrap();
    let logs = tokio::spawn(async move {
        let mut text = String::new();
        logs.read_to_string(&mut text).await.map(|_| text)
    });
    let url = child.url();

    let response = reqwest::get(format!("{url}/user-profile/1")).await.unwrap();
    assert_eq!(response.status(), 502);
    let (trace_id, span_id) = traceresponse_ids(&response);

    let stopped = child.stop_with(Signal::Interrupt, WAIT).await.unwrap();
    assert!(
        stopped.status.success() && !stopped.killed,
        "SIGINT is a clean stop too"
    );
    let stderr = logs.await.unwrap().unwrap();
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let error = lines
        .iter()
        .find(|l| l["level"] == "ERROR")
        .unwrap_or_else(|| panic!("no ERROR line in {stderr}"));
    assert_eq!(error["trace_id"], trace_id.as_str(), "{error}");
    assert_eq!(error["span_id"], span_id.as_str(), "{error}");
    assert!(
        error["fields"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("user-service"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_probes_answer_and_leave_no_trace() {
    let suite = Suite::start(Options::default()).await;
    for service in [
        Some(&suite.aggregator),
        suite.users.as_ref(),
        suite.orders.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        let response = reqwest::get(format!("{}/healthz", service.url))
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", service.name);
        assert!(response.headers().get("traceresponse").is_none());
    }
    let response = suite.profile("1", "concurrent", &[]).await;
    let (trace_id, _) = traceresponse_ids(&response);
    let receiver = suite.stop_services().await;
    let spans = receiver.store().spans();
    assert!(
        spans.iter().all(|s| s.trace_id == trace_id),
        "only the profile request was traced"
    );
    assert!(!spans
        .iter()
        .any(|s| s.attr_str("url.path") == Some("/healthz")));
}
