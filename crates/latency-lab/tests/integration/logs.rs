//! Logs: JSON lines carry the OpenTelemetry ids of the request they belong
//! to, so a log search can jump to the trace; health probes are not traced.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::common::{traceresponse_ids, Options, Suite, LAB};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_trace_and_span_ids() {
    let dead = crate::common::closed_port_url();
    let mut child = Command::new(LAB)
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
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_owned();

    let response = reqwest::get(format!("{url}/user-profile/1")).await.unwrap();
    assert_eq!(response.status(), 502);
    let (trace_id, span_id) = traceresponse_ids(&response);

    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "SIGINT is a clean stop too");
    let stderr = String::from_utf8_lossy(&output.stderr);
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
