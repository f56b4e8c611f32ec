//! Bring your own service: a real OpenTelemetry Python service
//! (`examples/python-profile`, the SDK and its OTLP/HTTP exporter from PyPI)
//! with the SDK's **default** batch delay of 5 s, calling the mocks of a
//! running `latency-lab up`. The mocks' spans reach the lab seconds before
//! the Python spans that are their parents; the lab waits for them and
//! prints one whole trace — the Python spans and ours, the right parents —
//! and counts nothing as lost or cut short.

use std::path::PathBuf;
use std::process::Stdio;

use serde_json::Value;
use service_kit::child::{self, Signal};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::common::WAIT;
use crate::up_waterfalls::{read_until, spawn_up};

/// The Python with the OpenTelemetry SDK installed: `LATENCY_LAB_OTEL_PYTHON`,
/// else the virtual environment `.ci/run` makes in `target/otel-python`.
/// Without one: skipped, or a failure under `CI=true`.
fn otel_python() -> Option<PathBuf> {
    let python = match std::env::var_os("LATENCY_LAB_OTEL_PYTHON") {
        Some(path) => PathBuf::from(path),
        None => jaeger_harness::workspace_root().join("target/otel-python/bin/python"),
    };
    if python.is_file() {
        return Some(python);
    }
    let reason = format!(
        "no Python with the OpenTelemetry SDK at {} (`.ci/run` makes it: python3 -m venv target/otel-python && target/otel-python/bin/pip install -r examples/python-profile/requirements.txt), or set LATENCY_LAB_OTEL_PYTHON",
        python.display()
    );
    assert!(!jaeger_harness::running_in_ci(), "CI=true and {reason}");
    eprintln!("{}", jaeger_harness::skipped_line(&reason));
    None
}

/// The URL printed after `name` in up's banner.
fn banner_url(out: &[String], name: &str) -> String {
    out.iter()
        .filter_map(|l| l.trim().strip_prefix(name))
        .find_map(|rest| {
            rest.split_whitespace()
                .next()
                .filter(|u| u.starts_with("http://"))
        })
        .unwrap_or_else(|| panic!("no {name} URL in:\n{}", out.join("\n")))
        .to_owned()
}

#[tokio::test]
async fn a_python_service_with_the_default_batch_delay_joins_the_suites_trace_whole() {
    let Some(python) = otel_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (mut up, mut lines, _guard) = spawn_up(dir.path(), &["--no-demo"]);
    let mut out = Vec::new();
    read_until(&mut lines, &mut out, "the follow mode", |l| {
        l.starts_with("waiting for requests")
    })
    .await;

    let app = jaeger_harness::workspace_root().join("examples/python-profile/app.py");
    let mut python = tokio::process::Command::new(python)
        .arg(app)
        .env("OTEL_SERVICE_NAME", "python-profile")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", banner_url(&out, "OTLP/HTTP"))
        .env("USER_SERVICE_URL", banner_url(&out, "user-service"))
        .env("ORDER_SERVICE_URL", banner_url(&out, "order-service"))
        .env("PORT", "0")
        // The SDK's defaults, whatever this shell has set.
        .env_remove("OTEL_BSP_SCHEDULE_DELAY")
        .env_remove("OTEL_EXPORTER_OTLP_PROTOCOL")
        .env_remove("OTEL_TRACES_EXPORTER")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the Python service");
    let mut py_lines = BufReader::new(python.stdout.take().unwrap()).lines();
    let mut py_out = Vec::new();
    read_until(&mut py_lines, &mut py_out, "the Python service", |l| {
        l.starts_with("listening on ")
    })
    .await;
    let url = py_out.last().unwrap()["listening on ".len()..].to_owned();
    let body = crate::common::get_json(&format!("{url}/profile/42")).await;
    let trace_id = body["trace_id"].as_str().unwrap().to_owned();
    assert_eq!(body["user"]["id"], 42, "{body}");

    // Printed once, whole: 3 Python spans and the mocks' 4, one trace.
    read_until(&mut lines, &mut out, "the trace's file", |l| {
        l.starts_with("saved as ") && l.contains(&trace_id)
    })
    .await;
    let text = out.join("\n");
    let header = out
        .iter()
        .find(|l| l.starts_with(&format!("trace {trace_id} ")))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        header.contains("(7 spans, 3 services, "),
        "{header}\n{text}"
    );
    assert!(!text.contains("not whole yet"), "{text}");

    // The file: each mock's SERVER span is the child of a Python CLIENT span.
    let saved: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join(format!("{trace_id}.json"))).unwrap(),
    )
    .unwrap();
    let data = &saved["data"][0];
    let service_of = |span: &Value| {
        data["processes"][span["processID"].as_str().unwrap()]["serviceName"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let spans = data["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 7);
    let parent_of = |span: &Value| {
        let parent = span["references"]
            .as_array()
            .and_then(|r| r.first())
            .map(|r| r["spanID"].as_str().unwrap().to_owned())?;
        spans.iter().find(|s| s["spanID"] == parent.as_str())
    };
    for service in ["user-service", "order-service"] {
        let server = spans
            .iter()
            .find(|s| {
                service_of(s) == service
                    && s["tags"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|t| t["key"] == "span.kind" && t["value"] == "server")
            })
            .unwrap_or_else(|| panic!("{service}'s server span in {saved:#}"));
        let parent = parent_of(server).expect("its parent is in the trace");
        assert_eq!(service_of(parent), "python-profile", "{saved:#}");
        assert_eq!(parent["operationName"], "GET");
        let root = parent_of(parent).expect("the client's parent is in the trace");
        assert_eq!(root["operationName"], "GET /profile/{id}");
        assert!(
            parent_of(root).is_none(),
            "the Python server span is the root"
        );
    }

    child::send(python.id().unwrap(), Signal::Terminate).unwrap();
    python.wait().await.unwrap();
    child::send(up.id().unwrap(), Signal::Interrupt).expect("SIGINT to up");
    let (rest, status) = crate::common::rest_of_output_and_exit(&mut lines, &mut up, WAIT).await;
    let rest = rest.join("\n");
    assert!(status.success(), "{rest}");
    for lost in ["printed before a parent span came", "dropped", "came late"] {
        assert!(!rest.contains(lost), "{lost:?}: {rest}");
    }
}
