//! `latency-lab explain` end to end: the real suite with a spike injected
//! into one dependency, every trace saved as `up` saves them, and explain
//! naming the spiked query as what owns the tail's critical path.

use std::process::Command;

use trace_view::{jaeger_json, Trace};

use crate::common::{Options, Suite, LAB};

/// Runs `latency-lab ARGS`, which must succeed.
fn lab_ok(args: &[&str]) -> std::process::Output {
    let output = Command::new(LAB).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// 300 concurrent requests, the order service answering in 100 ms, 1 s
/// more in 3 % of its queries (about 9 spikes: the p99 group, the 3
/// slowest, is all spikes unless fewer than 3 come). The order service's
/// draws are seeded, so how many spike is the same on every run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_names_the_spiked_query_as_the_tails_critical_path() {
    let suite = Suite::start(Options {
        user_latency: "20ms",
        order_latency: "100ms+spike(p=0.03,1s)",
        receiver_max_traces: 10_000,
        extra_env: vec![("order-service", "ORDER_SERVICE_SEED", "3")],
        ..Options::default()
    })
    .await;
    let mut ids = Vec::new();
    for batch in 0..30 {
        let mut requests = tokio::task::JoinSet::new();
        for i in 0..10 {
            let client = suite.client.clone();
            let url = format!(
                "{}/user-profile/{}?mode=concurrent",
                suite.aggregator.url,
                batch * 10 + i + 1
            );
            requests.spawn(async move { client.get(url).send().await.unwrap() });
        }
        while let Some(response) = requests.join_next().await {
            let response = response.unwrap();
            assert_eq!(response.status(), 200);
            let (trace_id, _) = crate::common::traceresponse_ids(&response);
            ids.push(trace_id);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    for id in &ids {
        let spans = suite.trace(id, 7).await;
        let trace = Trace::from_collected(&spans).unwrap();
        jaeger_json::save(dir.path(), &trace).unwrap();
    }

    let output = lab_ok(&["explain", dir.path().to_str().unwrap(), "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        report["endpoint"],
        "profile-aggregator GET /user-profile/{id}"
    );
    assert_eq!(report["traces"], 300);
    let top = &report["tail"]["operations"][0];
    assert_eq!(
        top["operation"], "order-service db.query SELECT orders",
        "{report:#}"
    );
    // A spiked request spends about 1.1 s of its 1.1 s in that query: its
    // share of the tail's path is the spike's, near all of it.
    let tail_share = top["share"].as_f64().unwrap();
    assert!(tail_share > 0.9, "{tail_share}");
    // In the typical requests the same query holds the path too (100 ms
    // against the users call's 20 ms), but each takes a tenth as long.
    let typical_query = report["typical"]["operations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["operation"] == "order-service db.query SELECT orders")
        .unwrap();
    let ratio = top["exclusive_p50_ms"].as_f64().unwrap()
        / typical_query["exclusive_p50_ms"].as_f64().unwrap();
    assert!(
        ratio > 5.0,
        "tail query {top} against typical {typical_query}"
    );
    // Halving that query halves the spike: the tail's estimate is well under
    // today's, and stays above the half of it (the model never over-promises).
    let now = report["what_if"]["tail_ms"]["now"].as_f64().unwrap();
    let estimate = report["what_if"]["tail_ms"]["estimate"].as_f64().unwrap();
    assert!(estimate < 0.7 * now && estimate > 0.45 * now, "{report:#}");

    // The text report says it in a sentence, and draws both groups.
    let out = tempfile::tempdir().unwrap();
    let output = Command::new(LAB)
        .args([
            "explain",
            dir.path().to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    for group in ["typical", "tail"] {
        let svg = std::fs::read_to_string(out.path().join(format!("{group}.svg"))).unwrap();
        // inferno writes flamegraph.pl's DOCTYPE line.
        let options = roxmltree::ParsingOptions {
            allow_dtd: true,
            ..roxmltree::ParsingOptions::default()
        };
        let doc = roxmltree::Document::parse_with_options(&svg, options)
            .expect("the flame graph is well-formed SVG");
        let frames: Vec<&str> = doc
            .descendants()
            .filter(|n| n.has_tag_name("title"))
            .filter_map(|n| n.text())
            .collect();
        assert!(
            frames
                .iter()
                .any(|f| f.starts_with("order-service db.query SELECT orders (")),
            "{group}: {frames:?}"
        );
    }
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("of the critical path is order-service db.query SELECT orders (at p50: "),
        "{text}"
    );
}

#[test]
fn explain_without_traces_or_with_a_wrong_endpoint_says_so_in_one_line() {
    let empty = tempfile::tempdir().unwrap();
    let output = Command::new(LAB)
        .args(["explain", empty.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("error: no trace in "), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/traces/fan-out.sequential.json");
    let output = Command::new(LAB)
        .args([
            "explain",
            shipped.to_str().unwrap(),
            "--endpoint",
            "nope GET /",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("error: no trace of the endpoint \"nope GET /\""),
        "{stderr}"
    );
}

/// The other two sources: a Jaeger search, and the traces a load run's
/// requests.csv names, read from Jaeger by id.
#[tokio::test]
async fn explain_reads_a_jaeger_search_and_a_load_runs_traces() {
    let Some(bin) = jaeger_harness::jaeger_for_tests() else {
        return;
    };
    let jaeger = jaeger_harness::Jaeger::start(&bin).expect("start Jaeger");
    let suite = Suite::start(Options {
        user_latency: "10ms",
        order_latency: "20ms",
        otlp_endpoint: Some(jaeger.otlp_grpc_endpoint()),
        ..Options::default()
    })
    .await;
    let out = tempfile::tempdir().unwrap();
    let url = format!("{}/user-profile/42?mode=concurrent", suite.aggregator.url);
    lab_ok(&[
        "load",
        &url,
        "--rate",
        "40",
        "--requests",
        "40",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    let csv = out.path().join("requests.csv");
    let explain = |args: &[&str]| {
        // Spans reach Jaeger a moment after the answers: ask until every
        // requested trace is there.
        for _ in 0..30 {
            let output = Command::new(LAB)
                .arg("explain")
                .args(["--jaeger", &jaeger.query_url(), "--json"])
                .args(args)
                .output()
                .unwrap();
            if let Ok(report) = serde_json::from_slice::<serde_json::Value>(&output.stdout) {
                if report["traces"].as_u64() >= Some(40) {
                    return report;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        panic!("explain {args:?} never saw the 40 traces");
    };
    let report = explain(&["--requests", csv.to_str().unwrap()]);
    assert_eq!(report["traces"], 40, "{report:#}");
    assert_eq!(
        report["endpoint"],
        "profile-aggregator GET /user-profile/{id}"
    );
    let report = explain(&[
        "--service",
        "profile-aggregator",
        "--operation",
        "GET /user-profile/{id}",
        "--since",
        "5m",
    ]);
    assert_eq!(
        report["endpoint"],
        "profile-aggregator GET /user-profile/{id}"
    );
    assert_eq!(
        report["tail"]["operations"][0]["operation"], "order-service db.query SELECT orders",
        "{report:#}"
    );
}
