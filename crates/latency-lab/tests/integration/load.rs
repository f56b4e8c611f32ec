//! `latency-lab load` and `up --load`: a bounded load, its latency
//! distribution, and the trace of the slowest request.

use std::process::{Command, Stdio};

use service_kit::child::ServiceCommand;

use crate::common::{LAB, WAIT};

fn p50_ms(stdout: &str, title: &str) -> f64 {
    let mut lines = stdout
        .lines()
        .skip_while(|l| !l.starts_with(&format!("load: {title}")));
    let latency = lines
        .find(|l| l.trim_start().starts_with("latency"))
        .unwrap_or_else(|| panic!("no latency line for {title}:\n{stdout}"));
    let p50 = latency.split("p50 ").nth(1).unwrap();
    let mut parts = p50.split_whitespace();
    let value: f64 = parts.next().unwrap().parse().unwrap();
    match parts.next().unwrap() {
        "ms" => value,
        "s" => value * 1000.0,
        "µs" => value / 1000.0,
        unit => panic!("unit {unit}"),
    }
}

#[test]
fn up_load_measures_each_mode_and_shows_the_slowest_trace() {
    let traces = std::env::temp_dir().join(format!("latency-lab-load-{}", std::process::id()));
    let output = Command::new(LAB)
        .args([
            "up",
            "--demo-only",
            "--load",
            "24",
            "--load-concurrency",
            "3",
            "--color",
            "never",
        ])
        .args(["--user-latency", "50ms", "--order-latency", "100ms"])
        .env("LATENCY_LAB_AGGREGATOR", "127.0.0.1:0")
        .env("LATENCY_LAB_USER_SERVICE", "127.0.0.1:0")
        .env("LATENCY_LAB_ORDER_SERVICE", "127.0.0.1:0")
        .env("LATENCY_LAB_OTLP_GRPC", "127.0.0.1:0")
        .env("LATENCY_LAB_OTLP_HTTP", "127.0.0.1:0")
        .env("LATENCY_LAB_TRACES_DIR", &traces)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&traces);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for mode in ["sequential", "concurrent"] {
        assert!(
            stdout.contains(&format!("load: {mode}, 3 in flight — 24 requests")),
            "{stdout}"
        );
    }
    assert_eq!(stdout.matches("answers  200 ×24").count(), 2, "{stdout}");
    assert_eq!(
        stdout.matches("the slowest request (").count(),
        2,
        "{stdout}"
    );
    // Two demo traces, then the slowest request of each load: four waterfalls,
    // and not one per load request.
    assert_eq!(
        stdout.matches("(7 spans, 3 services").count(),
        4,
        "{stdout}"
    );
    let (seq, con) = (p50_ms(&stdout, "sequential"), p50_ms(&stdout, "concurrent"));
    assert!(
        seq >= 150.0,
        "sequential p50 {seq} ms < the sum of the delays"
    );
    assert!(con >= 100.0, "concurrent p50 {con} ms < the slower delay");
    assert!(
        seq > con,
        "sequential p50 {seq} ms should exceed concurrent {con} ms"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_reports_a_distribution_and_fails_when_nothing_answers() {
    let service = ServiceCommand::new("user-service", LAB)
        .args([
            "serve",
            "user-service",
            "--listen",
            "127.0.0.1:0",
            "--latency",
            "uniform(5ms,15ms)",
        ])
        .env("OTEL_SDK_DISABLED", "true")
        .stderr(Stdio::null())
        .ready_within(WAIT)
        .start()
        .await
        .unwrap();
    let url = service.url();

    let output = Command::new(LAB)
        .args([
            "load",
            &format!("{url}/users/7"),
            "--requests",
            "40",
            "--concurrency",
            "4",
        ])
        .args(["--header", "baggage: latency.user=20ms"])
        .output()
        .unwrap();
    let _ = service.stop(WAIT).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("answers  200 ×40"), "{stdout}");
    // The baggage header reached the service: every lookup took 20 ms.
    let p50 = p50_ms(&stdout, "GET");
    assert!(
        p50 >= 20.0,
        "p50 {p50} ms: the baggage override was not applied\n{stdout}"
    );
    assert!(stdout.contains("slowest"), "{stdout}");

    let dead_url = format!("{}/users/1", crate::common::closed_port_url());
    let output = Command::new(LAB)
        .args(["load", &dead_url, "--requests", "5"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stdout.contains("connect ×5"), "{stdout}");
    assert!(
        stderr.contains("error: no request to") && !stderr.contains("panicked"),
        "{stderr}"
    );

    let output = Command::new(LAB)
        .args(["load", "ftp://x/"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "a bad URL is a usage error");
}
