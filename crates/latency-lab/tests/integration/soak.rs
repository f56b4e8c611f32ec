//! `scripts/soak.sh` in a short variant: it starts the suite, drives it,
//! samples the services' memory and prints the summary the README quotes;
//! and its gate fails the run when memory grows past the allowed share.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use crate::common::LAB;

/// Runs the script with `env` (the binary under test, no build), at most
/// `limit`; a run past it is stopped (SIGTERM: the script stops the suite).
async fn soak(env: &[(&str, &str)], limit: Duration) -> Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let child = tokio::process::Command::new("bash")
        .arg("scripts/soak.sh")
        .current_dir(root)
        .env("LATENCY_LAB_BIN", LAB)
        .envs(env.iter().copied())
        .kill_on_drop(true)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    match tokio::time::timeout(limit, child.wait_with_output()).await {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            panic!("the soak script ran past {limit:?}");
        }
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_soak_reports_errors_p99_and_memory() {
    let output = soak(
        &[
            ("DURATION", "5s"),
            ("RATE", "50"),
            ("WARMUP", "2s"),
            ("SAMPLES", "5"),
        ],
        Duration::from_secs(90),
    )
    .await;
    let text = text(&output);
    assert!(output.status.success(), "{text}");
    // The load's own report comes first, then the summary.
    assert!(text.contains("load: open loop, asked 50 /s"), "{text}");
    let summary = text
        .split_once("soak summary: 5s at 50/s")
        .unwrap_or_else(|| panic!("no summary in {text}"))
        .1;
    // 5 s at 50/s: about 250 requests, every one answered.
    let requests: u64 = summary
        .lines()
        .find_map(|l| l.trim().strip_prefix("requests"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no request count in {text}"));
    assert!((200..=260).contains(&requests), "{requests}: {text}");
    assert!(summary.lines().any(|l| l.trim() == "errors    0"), "{text}");
    assert!(
        summary
            .lines()
            .any(|l| l.trim().starts_with("p99") && l.contains(" ms")),
        "{text}"
    );
    for service in ["profile-aggregator", "user-service", "order-service"] {
        let row = summary
            .lines()
            .find(|l| l.trim_start().starts_with(service) && !l.contains("kB"))
            .unwrap_or_else(|| panic!("no RSS row for {service}: {text}"));
        let numbers: Vec<f64> = row
            .split_whitespace()
            .skip(1)
            .map(|n| n.parse().unwrap())
            .collect();
        // start, after warm-up, peak, end (kB), end/warm-up.
        assert_eq!(numbers.len(), 5, "{row}");
        assert!(numbers[..4].iter().all(|kb| *kb > 1000.0), "{row}");
        assert!(numbers[4] <= 1.10, "{row}");
    }
    assert!(text.contains("soak: OK"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_gate_fails_the_run() {
    // Allowed growth -100 %: any memory at all at the end is too much.
    let output = soak(
        &[
            ("DURATION", "1s"),
            ("RATE", "10"),
            ("WARMUP", "1s"),
            ("MAX_GROWTH", "-100"),
        ],
        Duration::from_secs(60),
    )
    .await;
    let text = text(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("grew more than -100 %"), "{text}");
    assert!(text.contains("soak: FAILED"), "{text}");
}
