//! `latency-lab trace`: the waterfall of a trace from a running Jaeger or a
//! Jaeger JSON file, and a clear one-line error (never a panic) for every
//! kind of bad input.
//!
//! The real-Jaeger test gets its binary from
//! `jaeger_harness::jaeger_for_tests()`: under `CI=true` a missing binary
//! fails it; elsewhere it reports "SKIPPED (not run)" and returns.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::{Command, Output};
use std::time::Duration;

use crate::common::LAB;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use jaeger_harness::{jaeger_for_tests, Jaeger};
use serde_json::Value;
use trace_view::TraceId;

/// `latency-lab` with the listen addresses moved to free ports and a
/// fixed, colourless display (what the assertions expect).
fn lab(args: &[&str]) -> Command {
    let mut cmd = Command::new(LAB);
    cmd.args(args)
        .env("LATENCY_LAB_AGGREGATOR", "127.0.0.1:0")
        .env("LATENCY_LAB_USER_SERVICE", "127.0.0.1:0")
        .env("LATENCY_LAB_ORDER_SERVICE", "127.0.0.1:0")
        .env("LATENCY_LAB_OTLP_GRPC", "127.0.0.1:0")
        .env("LATENCY_LAB_OTLP_HTTP", "127.0.0.1:0")
        .env_remove("NO_COLOR")
        .env_remove("COLUMNS");
    cmd
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Exit status 1 and exactly one line on stderr, `error: …` containing
/// `expected` — never a panic, never a multi-line debug dump.
fn assert_one_line_error(output: &Output, expected: &str) {
    let stderr = text(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "status {:?}, stderr:\n{stderr}",
        output.status
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line:\n{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(
        stderr.contains(expected),
        "expected {expected:?} in {stderr}"
    );
    assert!(output.stdout.is_empty(), "{}", text(&output.stdout));
}

/// A stand-in for Jaeger's query API that knows no trace (Jaeger answers
/// an unknown id with 404 and this body).
async fn jaeger_without_traces() -> String {
    let app = Router::new().route(
        "/api/traces/{id}",
        get(|| async {
            (
                StatusCode::NOT_FOUND,
                Json(serde_json::json!({
                    "data": null, "total": 0, "limit": 0, "offset": 0,
                    "errors": [{"code": 404, "msg": "trace not found"}]
                })),
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn an_unknown_trace_id_is_a_clear_error() {
    let url = jaeger_without_traces().await;
    let args = [
        "trace",
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "--jaeger",
        &url,
    ]
    .map(String::from);
    let output = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        lab(&args).output().unwrap()
    })
    .await
    .unwrap();
    assert_one_line_error(
        &output,
        &format!("trace 4bf92f3577b34da6a3ce929d0e0e4736 not found in Jaeger at {url}"),
    );
}

#[test]
fn an_unreachable_jaeger_is_a_clear_error() {
    let url = crate::common::closed_port_url();
    let output = lab(&["trace", "abc", "--jaeger", &url]).output().unwrap();
    assert_one_line_error(&output, &format!("cannot reach Jaeger at {url}"));
}

#[test]
fn bad_ids_and_urls_are_clear_errors() {
    let output = lab(&["trace", "not-hex", "--jaeger", "http://127.0.0.1:1"])
        .output()
        .unwrap();
    assert_one_line_error(&output, "invalid trace id \"not-hex\"");
    let output = lab(&["trace", "abc", "--jaeger", "localhost:16686"])
        .output()
        .unwrap();
    assert_one_line_error(&output, "invalid Jaeger URL \"localhost:16686\"");
    // Usage mistakes are clap's: exit 2 with its message.
    for args in [
        vec!["trace"],
        vec!["trace", "abc"],
        vec!["trace", "--jaeger", "http://127.0.0.1:1"],
        vec!["trace", "abc", "--file", "x.json"],
    ] {
        let output = lab(&args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(text(&output.stderr).contains("Usage:"), "{args:?}");
    }
}

#[test]
fn malformed_files_are_clear_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "garbage.json",
            "<html>not json</html>",
            "expected value at line 1",
        ),
        (
            "truncated.json",
            "{\"data\": [{\"traceID\": ",
            "EOF while parsing",
        ),
        (
            "empty.json",
            "{\"data\": []}",
            "the document holds no trace",
        ),
        (
            "wrong-shape.json",
            "{\"data\": [{\"spans\": 3}]}",
            "invalid type: integer `3`, expected a sequence",
        ),
        (
            "bad-process.json",
            r#"{"data": [{"traceID": "ab", "processes": {}, "spans": [{"traceID": "ab",
               "spanID": "01", "operationName": "x", "startTime": 1, "duration": 1,
               "processID": "p1"}]}]}"#,
            "processID \"p1\" is not in processes",
        ),
    ];
    for (name, content, detail) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let output = lab(&["trace", "--file", path.to_str().unwrap()])
            .output()
            .unwrap();
        assert_one_line_error(
            &output,
            &format!("cannot read the trace in {}", path.display()),
        );
        assert_one_line_error(&output, detail);
    }
    let missing = dir.path().join("missing.json");
    let output = lab(&["trace", "--file", missing.to_str().unwrap()])
        .output()
        .unwrap();
    assert_one_line_error(&output, &format!("cannot read {}", missing.display()));
}

/// The trace id from `up`'s `<mode> request: … ms, trace <id>` line.
fn demo_trace_id(stdout: &str, mode: &str) -> String {
    let prefix = format!("{mode} request: ");
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line in:\n{stdout}"));
    line.rsplit(' ').next().unwrap().to_owned()
}

fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

/// A demo request sent to a real Jaeger renders from Jaeger's API like the
/// lab's own; an id Jaeger does not have is a one-line error; and the JSON
/// the lab saves has the very shape Jaeger serves.
#[tokio::test]
async fn trace_from_a_real_jaeger() {
    let Some(bin) = jaeger_for_tests() else {
        return;
    };
    let jaeger = Jaeger::start(&bin).expect("start Jaeger");
    let endpoint = jaeger.otlp_grpc_endpoint();
    let query_url = jaeger.query_url();

    let up = {
        let endpoint = endpoint.clone();
        tokio::task::spawn_blocking(move || {
            lab(&[
                "up",
                "--demo-only",
                "--demo-modes",
                "concurrent",
                "--otlp-endpoint",
                &endpoint,
            ])
            .output()
            .unwrap()
        })
        .await
        .unwrap()
    };
    let stdout = text(&up.stdout);
    assert!(up.status.success(), "{stdout}\n{}", text(&up.stderr));
    let id = demo_trace_id(&stdout, "concurrent");
    assert!(
        stdout.contains(&format!("latency-lab trace {id} --jaeger")),
        "{stdout}"
    );

    // Jaeger indexes asynchronously: wait until it has all seven spans.
    let trace_id = TraceId::parse(&id).unwrap();
    jaeger
        .query()
        .unwrap()
        .wait_for_trace(trace_id, 7, Duration::from_secs(60))
        .await
        .expect("the demo trace reaches Jaeger");
    let raw = jaeger_answer(format!("{query_url}/api/traces/{trace_id}")).await["data"][0].clone();

    let output = {
        let (id, url) = (id.clone(), query_url.clone());
        tokio::task::spawn_blocking(move || {
            lab(&[
                "trace", &id, "--jaeger", &url, "--width", "100", "--color", "never",
            ])
            .output()
            .unwrap()
        })
        .await
        .unwrap()
    };
    let rendered = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        rendered.starts_with(&format!("trace {id} (7 spans, 3 services, ")),
        "{rendered}"
    );
    for row in [
        "● profile-aggregator GET /user-profile/{id}",
        "    profile-aggregator GET /users/{id}",
        "        user-service db.query SELECT users",
        "●       order-service db.query SELECT orders",
    ] {
        assert!(rendered.contains(row), "missing {row:?} in:\n{rendered}");
    }
    assert!(
        rendered.contains("waiting on order-service (db.query SELECT orders)"),
        "{rendered}"
    );

    let unknown = tokio::task::spawn_blocking(move || {
        lab(&[
            "trace",
            "00000000000000000000000000000001",
            "--jaeger",
            &query_url,
        ])
        .output()
        .unwrap()
    })
    .await
    .unwrap();
    assert_one_line_error(
        &unknown,
        &format!(
            "trace 00000000000000000000000000000001 not found in Jaeger at {}",
            jaeger.query_url()
        ),
    );

    // The same request through the embedded receiver: the saved file must
    // have the structure Jaeger itself serves, key for key.
    let dir = tempfile::tempdir().unwrap();
    let saved = {
        let dir = dir.path().to_owned();
        tokio::task::spawn_blocking(move || {
            lab(&["up", "--demo-only", "--demo-modes", "concurrent"])
                .env("LATENCY_LAB_TRACES_DIR", &dir)
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    };
    assert!(saved.status.success(), "{}", text(&saved.stderr));
    let own_id = demo_trace_id(&text(&saved.stdout), "concurrent");
    let ours: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join(format!("{own_id}.json"))).unwrap(),
    )
    .unwrap();
    let ours = &ours["data"][0];
    assert_same_shape(ours, &raw);
}

/// Jaeger's answer as it was sent, not as trace-view reads it: what the
/// shape comparison needs.
async fn jaeger_answer(url: String) -> Value {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let response = client.get(url).send().await.expect("Jaeger answers");
    response.json().await.expect("Jaeger answers with JSON")
}

/// Same keys on the trace, span, reference, process and tag objects, and
/// the same OpenTelemetry tags on spans of the same kind.
fn assert_same_shape(ours: &Value, jaegers: &Value) {
    assert_eq!(keys(ours), keys(jaegers), "trace object keys");
    let our_spans = ours["spans"].as_array().unwrap();
    let their_spans = jaegers["spans"].as_array().unwrap();
    assert_eq!(our_spans.len(), their_spans.len());
    let union = |spans: &[Value], field: &str| -> BTreeSet<String> {
        spans
            .iter()
            .flat_map(|s| s[field].as_array().cloned().unwrap_or_default())
            .flat_map(|v| keys(&v))
            .collect()
    };
    for field in ["references", "tags", "logs"] {
        assert_eq!(
            union(our_spans, field),
            union(their_spans, field),
            "keys of {field} entries"
        );
    }
    let span_keys = |spans: &[Value]| -> BTreeSet<String> { spans.iter().flat_map(keys).collect() };
    assert_eq!(span_keys(our_spans), span_keys(their_spans), "span keys");
    let process_keys = |t: &Value| -> BTreeSet<String> {
        t["processes"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(keys)
            .collect()
    };
    assert_eq!(process_keys(ours), process_keys(jaegers), "process keys");
    let services = |t: &Value| -> BTreeSet<String> {
        t["processes"]
            .as_object()
            .unwrap()
            .values()
            .map(|p| p["serviceName"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(services(ours), services(jaegers));
    for span in our_spans.iter().chain(their_spans) {
        assert!(
            span["startTime"]
                .as_u64()
                .is_some_and(|t| t > 1_500_000_000_000_000),
            "µs: {span}"
        );
        assert!(span["duration"].as_u64().is_some(), "{span}");
    }
    // Tags Jaeger derives from OpenTelemetry fields, per operation.
    let derived = |spans: &[Value], op: &str| -> BTreeSet<(String, String)> {
        spans
            .iter()
            .filter(|s| s["operationName"] == op)
            .flat_map(|s| s["tags"].as_array().cloned().unwrap_or_default())
            .filter(|t| {
                let key = t["key"].as_str().unwrap_or_default();
                key == "span.kind" || key.starts_with("otel.") || key == "error"
            })
            .map(|t| (t["key"].to_string(), t["value"].to_string()))
            .collect()
    };
    for op in [
        "GET /user-profile/{id}",
        "GET /users/{id}",
        "db.query SELECT orders",
    ] {
        assert_eq!(
            derived(our_spans, op),
            derived(their_spans, op),
            "OpenTelemetry tags of {op}"
        );
    }
}
