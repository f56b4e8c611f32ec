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

/// What the load run injects: the user service answers in 150 ms, the order
/// service in 100 ms, 200 ms more in 2 % of its queries (`latency.orders` in
/// the requests' baggage); the aggregator calls them one after the other.
const USERS_MS: f64 = 150.0;
const ORDERS_MS: f64 = 100.0;
const SPIKE_MS: f64 = 200.0;
const SPIKED_ORDERS: &str = "baggage: latency.orders=100ms+spike(p%3D0.02%2C200ms)";

/// A `latency-lab load` run of 500 requests (about 10 spikes: the p99
/// group, the 5 slowest, is all spikes unless fewer than 5 come; the order
/// service's draws are seeded, so how many spike is the same on every run),
/// each request's trace saved as `up --traces-dir` saves them, and explain
/// over the traces the run's requests.csv names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_names_the_spiked_query_as_the_tails_critical_path() {
    let suite = Suite::start(Options {
        user_latency: "150ms",
        order_latency: "100ms",
        receiver_max_traces: 10_000,
        extra_env: vec![("order-service", "ORDER_SERVICE_SEED", "3")],
        ..Options::default()
    })
    .await;
    let run = tempfile::tempdir().unwrap();
    let url = format!("{}/user-profile/7?mode=sequential", suite.aggregator.url);
    let out = run.path().to_owned();
    tokio::task::spawn_blocking(move || {
        lab_ok(&[
            "load",
            &url,
            "--rate",
            "100",
            "--requests",
            "500",
            "--header",
            SPIKED_ORDERS,
            "--out",
            out.to_str().unwrap(),
        ])
    })
    .await
    .unwrap();
    let csv = run.path().join("requests.csv");
    let mut reader = csv::Reader::from_path(&csv).unwrap();
    let ids: Vec<String> = reader
        .deserialize::<std::collections::HashMap<String, String>>()
        .map(|row| row.unwrap()["trace_id"].clone())
        .collect();
    assert_eq!(ids.len(), 500);
    let dir = tempfile::tempdir().unwrap();
    let mut spiked = std::collections::HashSet::new();
    for id in &ids {
        let spans = suite.trace(id, 7).await;
        let trace = Trace::from_collected(&spans).unwrap();
        if trace.spans.iter().any(|s| {
            s.attributes
                .get("latency_lab.spiked")
                .map(|v| v.to_string())
                == Some("true".into())
        }) {
            spiked.insert(id.clone());
        }
        jaeger_json::save(dir.path(), &trace).unwrap();
    }
    // A trace of another endpoint in the folder, which --requests leaves out.
    let other = suite
        .client
        .get(format!("{}/user-profile/8", suite.aggregator.url))
        .send()
        .await
        .unwrap();
    let (other_id, _) = crate::common::traceresponse_ids(&other);
    let other = Trace::from_collected(&suite.trace(&other_id, 7).await).unwrap();
    jaeger_json::save(dir.path(), &other).unwrap();
    assert!(
        (5..=25).contains(&spiked.len()),
        "{} of 500 spiked: the seed no longer gives a tail of spikes",
        spiked.len()
    );

    let output = lab_ok(&[
        "explain",
        dir.path().to_str().unwrap(),
        "--requests",
        csv.to_str().unwrap(),
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        report["endpoint"],
        "profile-aggregator GET /user-profile/{id}"
    );
    assert_eq!(report["traces"], 500, "{report:#}");
    let top = &report["tail"]["operations"][0];
    assert_eq!(
        top["operation"], "order-service db.query SELECT orders",
        "{report:#}"
    );
    // The tail is the spiked requests: 150 ms of users, then 300 ms of
    // orders. The query's share of their critical path is what was
    // injected, 300 of 450 ms (the rest is the user query and the hops).
    let injected = (ORDERS_MS + SPIKE_MS) / (USERS_MS + ORDERS_MS + SPIKE_MS);
    let tail_share = top["share"].as_f64().unwrap();
    assert!(
        (tail_share - injected).abs() <= 0.10,
        "tail share {tail_share} against the injected {injected}: {report:#}"
    );
    // In the typical requests it is 100 of 250 ms.
    let typical_query = report["typical"]["operations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["operation"] == "order-service db.query SELECT orders")
        .unwrap();
    let typical_share = typical_query["share"].as_f64().unwrap();
    let injected_typical = ORDERS_MS / (USERS_MS + ORDERS_MS);
    assert!(
        (typical_share - injected_typical).abs() <= 0.10,
        "typical share {typical_share} against {injected_typical}: {report:#}"
    );
    let ratio = top["exclusive_p50_ms"].as_f64().unwrap()
        / typical_query["exclusive_p50_ms"].as_f64().unwrap();
    assert!(
        ratio > 2.0,
        "tail query {top} against typical {typical_query}"
    );
    // Halving that query takes 150 of the tail's 450 ms: an estimate of
    // about two thirds of today's p99 (the model never promises more than
    // the query's own time).
    let now = report["what_if"]["tail_ms"]["now"].as_f64().unwrap();
    let estimate = report["what_if"]["tail_ms"]["estimate"].as_f64().unwrap();
    assert!(estimate < 0.75 * now && estimate > 0.6 * now, "{report:#}");

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
        let frames = frame_labels(&svg);
        assert!(
            frames
                .keys()
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

/// The frame labels of a flame graph: each frame's `<text>`, by its
/// `<title>` (the operation and its time).
fn frame_labels(svg: &str) -> std::collections::BTreeMap<String, String> {
    // inferno writes flamegraph.pl's DOCTYPE line.
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(svg, options)
        .unwrap_or_else(|e| panic!("not well-formed SVG ({e}): {svg}"));
    assert!(
        !doc.descendants().any(|n| n.has_tag_name("parsererror")),
        "the browser could not read it: {svg}"
    );
    doc.descendants()
        .filter(|n| n.has_tag_name("g"))
        .filter_map(|g| {
            let title = g.children().find(|c| c.has_tag_name("title"))?.text()?;
            let text = g.children().find(|c| c.has_tag_name("text"))?;
            Some((title.to_owned(), text.text().unwrap_or("").to_owned()))
        })
        .collect()
}

/// `--out`'s flame graph in a real browser: it parses as SVG there, and its
/// script (hover, zoom, labels fitted to each frame's width) runs: the
/// labels the browser shows are the script's, not the file's.
#[test]
fn the_flame_graph_opens_in_a_browser_and_its_script_runs() {
    let Some(chromium) = jaeger_harness::chromium_for_tests() else {
        return;
    };
    let traces = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/traces");
    let out = tempfile::tempdir().unwrap();
    lab_ok(&[
        "explain",
        traces.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
    ]);
    let file = out.path().join("tail.svg");
    let written = frame_labels(&std::fs::read_to_string(&file).unwrap());
    let shown = jaeger_harness::dump_dom(&chromium, &file, std::time::Duration::from_secs(90))
        .unwrap_or_else(|e| panic!("{e}"));
    let shown = frame_labels(&shown);
    assert_eq!(
        shown.keys().collect::<Vec<_>>(),
        written.keys().collect::<Vec<_>>(),
        "the browser holds the same frames"
    );
    assert!(
        shown
            .keys()
            .any(|t| t.starts_with("order-service db.query SELECT orders (")),
        "{shown:?}"
    );
    assert_ne!(shown, written, "the flame graph's script did not run");
}
