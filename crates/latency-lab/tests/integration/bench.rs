//! `cargo xtask bench --quick` through the function it calls, on the
//! binary under test: the benchmark works end to end (table, ratios,
//! verdicts, every span counted), not what its numbers are.

use std::time::{Duration, Instant};

use clap::Parser as _;
use xtask::bench::BenchArgs;

use crate::common::LAB;

const LESSON: &str = "10-the-cost-of-observing.md";

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
            && text.contains("CPU/req, metrics off ÷ SDK disabled, saturating")
            && text.contains("p99.9 (total), tracing on ÷ SDK disabled, fixed rate"),
        "{text}"
    );
    // Every ratio with the range of its rounds (one round here: lo = hi).
    let ratio_lines = text
        .lines()
        .skip_while(|l| !l.starts_with("medians of per-round ratios:"))
        .skip(1)
        .take_while(|l| !l.is_empty());
    for line in ratio_lines {
        assert!(line.contains("   rounds ") && line.ends_with('×'), "{line}");
    }
    let verdicts: Vec<&str> = text
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with("PASS") || l.starts_with("MISS"))
        .collect();
    assert_eq!(verdicts.len(), 6, "one verdict per target:\n{text}");
    assert!(text.contains("mocks on time at p50"), "{text}");
    // Spans were counted: 7 per request with tracing on (lesson 10 says
    // so), none with the SDK disabled or sampling off (whether all
    // arrived is the verdict's business).
    assert_eq!(report.spans_per_request, 7, "{text}");
    for (_, config, spans) in &report.spans {
        if xtask::bench::configs::ALL[*config].exports_spans {
            assert!(spans.received > 0 && spans.expected > 0, "{text}");
        } else {
            assert_eq!(spans.received, 0, "{text}");
        }
    }
}

/// `--aggregator-only`: the configurations reach the aggregator alone, so
/// the mocks still export their spans when the aggregator's SDK is
/// disabled (in the default mode that session receives none, as the test
/// above checks). With the aggregator's sampling off they record nothing
/// either way: its `traceparent` says not sampled, and they follow it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_aggregator_only_the_mocks_trace_in_every_configuration() {
    let args =
        BenchArgs::try_parse_from(["bench", "--quick", "--aggregator-only", "--lab", LAB]).unwrap();
    let report = tokio::time::timeout(Duration::from_secs(120), xtask::bench::run(&args))
        .await
        .expect("the quick benchmark finishes")
        .unwrap();
    let text = report.to_string();
    assert!(
        text.lines()
            .next()
            .is_some_and(|l| l.contains("applied to the aggregator only")),
        "{text}"
    );
    assert_eq!(report.spans_per_request, 7, "{text}");
    for (_, config, spans) in &report.spans {
        let config = xtask::bench::configs::ALL[*config];
        let mocks_record = config.name != "sampling off";
        assert_eq!(
            spans.received > 0,
            mocks_record,
            "{}: spans arrive unless the aggregator's traces are unsampled:\n{text}",
            config.name
        );
    }
    // The mocks count their spans where the aggregator does not: the check
    // must not take their count for everyone's.
    assert!(report.spans_complete(), "every span arrived:\n{text}");
}

/// `cargo xtask bench --instructions --quick` through the function it
/// calls: every configuration counted under callgrind (`.ci/run` installs
/// valgrind), a count per request, spans from the exporting ones only.
/// Not the ordering of the configurations: over 20 requests of a debug
/// build, the runs' own spread (timer wake-ups, batching) is larger than
/// what export costs; the README's release measurement gives the ratios.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quick_instruction_count_counts_every_configuration() {
    // Without valgrind: under CI=true a failure, elsewhere one line.
    if let Err(e) = xtask::bench::instructions::valgrind() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{e}");
        eprintln!("{}", jaeger_harness::skipped_line(&e.to_string()));
        return;
    }
    let args =
        BenchArgs::try_parse_from(["bench", "--instructions", "--quick", "--lab", LAB]).unwrap();
    let started = Instant::now();
    let report = tokio::time::timeout(
        Duration::from_secs(600),
        xtask::bench::run_instructions(&args),
    )
    .await
    .expect("the quick instruction count finishes")
    .unwrap();
    let text = report.to_string();
    eprintln!("{text}\n(took {:?})", started.elapsed());

    assert_eq!(
        report.counts.len(),
        xtask::bench::configs::ALL.len(),
        "{text}"
    );
    for count in &report.counts {
        // No request of the aggregator costs fewer than 10,000 instructions.
        assert!(
            count.requests > 0 && count.per_request() > 10_000.0,
            "{}: {count:?}",
            count.config.name
        );
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(count.config.name) && l.contains(" k ")),
            "no row for {}:\n{text}",
            count.config.name
        );
        // Only the configurations that export send spans.
        assert_eq!(count.spans > 0, count.config.exports_spans, "{text}");
    }
    let verdicts = text
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with("PASS") || l.starts_with("MISS"))
        .count();
    assert_eq!(verdicts, 2, "export and metrics:\n{text}");
}

/// Lesson 10's command: one concurrent request makes 7 spans across the
/// three services, and each service's duration histogram has its sample.
#[test]
fn lesson_10_one_request_makes_seven_spans_in_three_services() {
    let lesson = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../docs/lessons")
            .join(LESSON),
    )
    .unwrap();
    let commands = crate::docs::sh_commands(&lesson);
    assert_eq!(commands.len(), 1, "{commands:?}");
    let words: Vec<&str> = commands[0].split_whitespace().skip(1).collect();
    let traces = tempfile::tempdir().unwrap();
    let output = crate::docs::run_lesson_words(&words, traces.path());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        lesson.contains("**7 spans across\nthe three services**")
            && stdout.contains("(7 spans, 3 services,"),
        "{stdout}"
    );
    // The latency table at exit: one request per service's endpoint.
    let table = stdout
        .split("endpoints (at exit)")
        .nth(1)
        .unwrap_or_else(|| panic!("no endpoint table:\n{stdout}"));
    for service in ["profile-aggregator", "user-service", "order-service"] {
        let row = table
            .lines()
            .find(|l| l.trim_start().starts_with(service))
            .unwrap_or_else(|| panic!("no row for {service}:\n{table}"));
        assert_eq!(row.split_whitespace().nth(3), Some("1"), "{row}");
    }
}
