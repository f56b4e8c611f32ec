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

    // A 4 KB User-Agent: the SERVER span's fields come with the ERROR line,
    // each cut short.
    let response = reqwest::Client::new()
        .get(format!("{url}/user-profile/1"))
        .header("user-agent", "U".repeat(4000))
        .send()
        .await
        .unwrap();
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
    assert_eq!(error["span"]["name"], "HTTP request", "{error}");
    assert_eq!(error["span"]["url.path"], "/user-profile/1", "{error}");
    let agent = error["span"]["user_agent.original"].as_str().unwrap();
    assert!(
        agent.ends_with("…(4000 bytes)") && agent.len() < 200,
        "{error}"
    );
    assert!(stderr.lines().all(|l| l.len() < 2048), "{stderr:.3000}");
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

/// A client cannot write the logs: an 8 KB malformed `baggage` on every
/// request gives one short WARN line (the first 64 characters and the
/// length), not one line per request, under the default filter; the
/// requests are answered as before (the malformed entries ignored, a
/// malformed override still a 400). A long `User-Agent` is cut too, where
/// the SERVER span's fields are printed with a line logged in a request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_baggage_is_logged_short_and_rarely() {
    const REQUESTS: usize = 40;
    let mut child = ServiceCommand::new("user-service", LAB)
        .args(["serve", "user-service", "--listen", "127.0.0.1:0"])
        .args(["--latency", "1ms", "--error-rate", "1"])
        .env("OTEL_SDK_DISABLED", "true")
        .env_remove("RUST_LOG")
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
    let url = format!("{}/users/1", child.url());
    let client = reqwest::Client::new();
    // A valid entry, then 8 KB without `=`.
    let baggage = format!("fail.user=0,fail.user~{}", "x".repeat(8000));
    let started = std::time::Instant::now();
    for _ in 0..REQUESTS {
        let response = client
            .get(&url)
            .header("baggage", &baggage)
            .header("user-agent", "U".repeat(4000))
            .send()
            .await
            .unwrap();
        // `fail.user=0` is still obeyed over `--error-rate 1`: the valid
        // entry kept, the malformed one dropped.
        assert_eq!(response.status(), 200);
    }
    // The service's own warning for an injected failure, inside the
    // request's span, with the 4 KB User-Agent among the span's fields.
    let failed = client
        .get(&url)
        .header("user-agent", "U".repeat(4000))
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 503);
    let refused = client
        .get(&url)
        .header("baggage", "latency.user=soon")
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused.status(),
        400,
        "a malformed override is refused as before"
    );
    let elapsed = started.elapsed();

    let stopped = child.stop_with(Signal::Terminate, WAIT).await.unwrap();
    assert!(stopped.status.success() && !stopped.killed);
    let stderr = logs.await.unwrap().unwrap();
    for line in stderr.lines() {
        assert!(
            line.len() < 2048,
            "a {} byte log line: {line:.300}",
            line.len()
        );
    }
    let baggage_lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.to_ascii_lowercase().contains("baggage"))
        .collect();
    // One line per 10 s at most: the first, and one more per 10 s the
    // test took on a slow machine.
    let allowed = 1 + (elapsed.as_secs() / 10) as usize;
    assert!(
        (1..=allowed).contains(&baggage_lines.len()),
        "{} baggage lines for {REQUESTS} requests in {elapsed:?}:\n{}",
        baggage_lines.len(),
        baggage_lines.join("\n")
    );
    let first = baggage_lines[0];
    assert!(first.contains("WARN"), "{first}");
    let excerpt = format!("{}…({} bytes)", &baggage[..64], baggage.len());
    assert!(first.contains(&excerpt), "{first}");
    let failure = stderr
        .lines()
        .find(|l| l.contains("injected failure"))
        .unwrap_or_else(|| panic!("no line for the injected failure in {stderr:.2000}"));
    assert!(failure.contains("…(4000 bytes)"), "{failure:.400}");
}
