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

/// `up --no-demo EXTRA…` and the Python service pointed at its mocks and
/// its receiver; one request sent. Everything a test reads next.
struct Run {
    up: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    out: Vec<String>,
    python: tokio::process::Child,
    trace_id: String,
    dir: tempfile::TempDir,
    _guard: crate::up_waterfalls::KillGroupOnPanic,
}

impl Run {
    async fn start(python: PathBuf, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec!["--no-demo"];
        args.extend_from_slice(extra);
        let (up, mut lines, guard) = spawn_up(dir.path(), &args);
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
        Run {
            up,
            lines,
            out,
            python,
            trace_id,
            dir,
            _guard: guard,
        }
    }

    /// Reads on until the trace has been saved (once more).
    async fn until_saved(&mut self, what: &str) {
        let id = self.trace_id.clone();
        read_until(&mut self.lines, &mut self.out, what, |l| {
            l.starts_with("saved as ") && l.contains(&id)
        })
        .await;
    }

    /// Stops the Python service, then `up`; `up`'s last lines.
    async fn stop(mut self) -> String {
        child::send(self.python.id().unwrap(), Signal::Terminate).unwrap();
        self.python.wait().await.unwrap();
        child::send(self.up.id().unwrap(), Signal::Interrupt).expect("SIGINT to up");
        let (rest, status) =
            crate::common::rest_of_output_and_exit(&mut self.lines, &mut self.up, WAIT).await;
        let rest = rest.join("\n");
        assert!(status.success(), "{rest}");
        rest
    }

    /// The waterfall header lines printed for the trace.
    fn headers(&self) -> Vec<&String> {
        let prefix = format!("trace {} ", self.trace_id);
        self.out.iter().filter(|l| l.starts_with(&prefix)).collect()
    }
}

#[tokio::test]
async fn a_python_service_with_the_default_batch_delay_joins_the_suites_trace_whole() {
    let Some(python) = otel_python() else {
        return;
    };
    let mut run = Run::start(python, &[]).await;
    let trace_id = run.trace_id.clone();

    // Printed once, whole: 3 Python spans and the mocks' 4, one trace.
    run.until_saved("the trace's file").await;
    let text = run.out.join("\n");
    let headers = run.headers();
    assert_eq!(headers.len(), 1, "{text}");
    assert!(headers[0].contains("(7 spans, 3 services, "), "{text}");
    assert!(!text.contains("not whole yet"), "{text}");

    // The file: each mock's SERVER span is the child of a Python CLIENT span.
    let saved: Value = serde_json::from_slice(
        &std::fs::read(run.dir.path().join(format!("{trace_id}.json"))).unwrap(),
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

    let rest = run.stop().await;
    for lost in ["printed before a parent span came", "dropped", "came late"] {
        assert!(!rest.contains(lost), "{lost:?}: {rest}");
    }
}

/// The lesson's "change it": with `--trace-wait` shorter than the SDK's
/// batch delay, the mocks' half prints alone and says what it misses; when
/// the Python spans come, the whole trace prints again and its file is
/// rewritten with all seven spans.
#[tokio::test]
async fn with_a_short_trace_wait_the_half_prints_then_the_whole_trace_again() {
    let Some(python) = otel_python() else {
        return;
    };
    let mut run = Run::start(python, &["--trace-wait", "1s"]).await;
    run.until_saved("the first half").await;
    run.until_saved("the whole trace").await;
    let text = run.out.join("\n");
    let headers = run.headers();
    assert_eq!(headers.len(), 2, "{text}");
    assert!(headers[0].contains("(4 spans, 2 services, "), "{text}");
    assert!(headers[1].contains("(7 spans, 3 services, "), "{text}");
    assert!(
        text.contains("not whole yet: the root span and 2 parent spans its spans name did not come within --trace-wait"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "late spans: 3 more of trace {} (7 in all now), printed again:",
            run.trace_id
        )),
        "{text}"
    );
    let saved: Value = serde_json::from_slice(
        &std::fs::read(run.dir.path().join(format!("{}.json", run.trace_id))).unwrap(),
    )
    .unwrap();
    assert_eq!(saved["data"][0]["spans"].as_array().unwrap().len(), 7);
    let rest = run.stop().await;
    assert!(
        rest.contains("1 trace printed again because spans of them came late"),
        "{rest}"
    );
    assert!(
        rest.contains("1 trace printed before a parent span came (--trace-wait)"),
        "{rest}"
    );
}
