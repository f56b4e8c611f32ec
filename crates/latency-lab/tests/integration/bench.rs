//! `cargo xtask bench --quick` through the function it calls, on the
//! binary under test: the benchmark works end to end (table, ratios,
//! verdicts, every span counted), not what its numbers are.

use std::time::{Duration, Instant};

use clap::Parser as _;
use xtask::bench::BenchArgs;

use crate::common::LAB;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quick_benchmark_prints_the_table_the_ratios_and_a_verdict_per_target() {
    let args = BenchArgs::try_parse_from(["bench", "--quick", "--lab", LAB]).unwrap();
    let started = Instant::now();
    let report = tokio::time::timeout(Duration::from_secs(120), xtask::bench::run(&args))
        .await
        .expect("the quick benchmark finishes")
        .unwrap();
    let text = report.to_string();
    eprintln!("{text}\n(took {:?})", started.elapsed());

    assert_eq!(report.rounds, 1, "--quick is one round");
    assert!(text.contains("medians over rounds"), "{text}");
    for config in ["tracing on", "SDK disabled", "sampling off", "metrics off"] {
        for load in ["fixed", "saturating"] {
            assert!(
                text.lines()
                    .any(|l| l.trim_start().starts_with(config) && l.contains(load)),
                "no row for {config}, {load}:\n{text}"
            );
        }
    }
    assert!(text.contains("medians of per-round ratios:"), "{text}");
    assert!(
        text.contains("CPU/req, tracing on ÷ SDK disabled, saturating")
            && text.contains("p99.9 (total), tracing on ÷ SDK disabled, fixed rate"),
        "{text}"
    );
    let verdicts: Vec<&str> = text
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with("PASS") || l.starts_with("MISS"))
        .collect();
    assert_eq!(verdicts.len(), 5, "one verdict per target:\n{text}");
    assert!(text.contains("info  mocks' p50 minus configured"), "{text}");
    // Spans were counted: some with tracing on, none with the SDK disabled
    // or sampling off (whether all arrived is the verdict's business).
    assert!(report.spans_per_request > 0, "{text}");
    for (_, config, spans) in &report.spans {
        if xtask::bench::configs::ALL[*config].exports_spans {
            assert!(spans.received > 0 && spans.expected > 0, "{text}");
        } else {
            assert_eq!(spans.received, 0, "{text}");
        }
    }
}
