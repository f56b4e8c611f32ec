//! promtool accepts `prometheus/prometheus.yml` and `prometheus/alerts.yml`, and the unit tests in
//! `prometheus/alerts_test.yml` pass: each alert fires on a synthetic series and stays silent on
//! a healthy one. Under `CI=true` a missing promtool fails these tests; elsewhere they print
//! `SKIPPED (not run): …` with what to install.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use jaeger_harness::{
    prometheus_config_for, prometheus_for_tests, repo_file, COLLECTOR_SCRAPE_JOB,
    PROMETHEUS_ALERTS, PROMETHEUS_ALERTS_TEST, PROMETHEUS_CONFIG,
};

/// Runs `promtool <args>` and returns (success, stdout + stderr).
fn promtool(promtool: &Path, args: &[&Path]) -> (bool, String) {
    let output = Command::new(promtool)
        .args(args)
        .output()
        .expect("cannot run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn assert_promtool(tool: &Path, args: &[&Path]) -> String {
    let (ok, text) = promtool(tool, args);
    assert!(ok, "`promtool {args:?}` failed:\n{text}");
    text
}

#[test]
fn scrape_config_is_valid_and_loads_the_rules() {
    let Some(tools) = prometheus_for_tests() else {
        return;
    };
    let config = repo_file(PROMETHEUS_CONFIG);
    let text = assert_promtool(
        &tools.promtool,
        &[Path::new("check"), Path::new("config"), &config],
    );
    assert!(text.contains("1 rule files found"), "{text}");
}

#[test]
fn the_tests_copy_of_the_scrape_config_is_valid_too() {
    let Some(tools) = prometheus_for_tests() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    let target = "127.0.0.1:18889".parse().unwrap();
    let text = prometheus_config_for(target, Duration::from_secs(1)).unwrap();
    assert!(text.contains("127.0.0.1:18889"), "{text}");
    assert!(text.contains(COLLECTOR_SCRAPE_JOB), "{text}");
    assert!(!text.contains("otel-collector:8889"), "{text}");
    std::fs::write(&config, text).unwrap();
    std::fs::copy(repo_file(PROMETHEUS_ALERTS), dir.path().join("alerts.yml")).unwrap();
    assert_promtool(
        &tools.promtool,
        &[Path::new("check"), Path::new("config"), &config],
    );
}

#[test]
fn alert_rules_are_valid() {
    let Some(tools) = prometheus_for_tests() else {
        return;
    };
    let rules = repo_file(PROMETHEUS_ALERTS);
    let text = assert_promtool(
        &tools.promtool,
        &[Path::new("check"), Path::new("rules"), &rules],
    );
    assert!(text.contains("SUCCESS"), "{text}");
}

#[test]
fn every_alert_fires_on_a_bad_series_and_not_on_a_healthy_one() {
    let Some(tools) = prometheus_for_tests() else {
        return;
    };
    let tests = repo_file(PROMETHEUS_ALERTS_TEST);
    let text = assert_promtool(
        &tools.promtool,
        &[Path::new("test"), Path::new("rules"), &tests],
    );
    assert!(text.contains("SUCCESS"), "{text}");

    // Every alert of alerts.yml has a firing case in the unit tests.
    let rules: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(repo_file(PROMETHEUS_ALERTS)).unwrap())
            .unwrap();
    let unit_tests = std::fs::read_to_string(&tests).unwrap();
    let alerts: Vec<&str> = rules["groups"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_sequence().unwrap())
        .filter_map(|r| r["alert"].as_str())
        .collect();
    assert_eq!(
        alerts,
        [
            "AggregatorLatencySLOBurnRate",
            "AggregatorP99LatencyHigh",
            "AggregatorErrorRatioHigh",
            "OrderPoolSaturated"
        ]
    );
    for alert in alerts {
        assert!(
            unit_tests.contains(&format!("fires {alert}")),
            "no test named `… fires {alert}` in {PROMETHEUS_ALERTS_TEST}"
        );
        let annotations = rules["groups"]
            .as_sequence()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_sequence().unwrap())
            .find(|r| r["alert"].as_str() == Some(alert))
            .unwrap()["annotations"]["description"]
            .as_str()
            .unwrap_or_default();
        assert!(
            annotations.starts_with("First look at") && annotations.contains("/search?service="),
            "{alert}: the description should say what to look at first, with a Jaeger search \
             link: {annotations}"
        );
    }
}

/// The checks above can fail: a rule test that expects the wrong thing is reported.
#[test]
fn a_wrong_expectation_fails_the_rule_tests() {
    let Some(tools) = prometheus_for_tests() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(repo_file(PROMETHEUS_ALERTS), dir.path().join("alerts.yml")).unwrap();
    let wrong = dir.path().join("wrong_test.yml");
    std::fs::write(
        &wrong,
        r#"rule_files: [alerts.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'traces_span_metrics_calls_total{service_name="profile-aggregator", span_kind="SPAN_KIND_SERVER", span_name="GET /user-profile/{id}", status_code="STATUS_CODE_UNSET"}'
        values: '0+60x20'
    alert_rule_test:
      - eval_time: 10m
        alertname: AggregatorErrorRatioHigh
        exp_alerts:
          - exp_labels: {severity: page, service: profile-aggregator}
"#,
    )
    .unwrap();
    let (ok, text) = promtool(
        &tools.promtool,
        &[Path::new("test"), Path::new("rules"), &wrong],
    );
    assert!(
        !ok,
        "a healthy series fired AggregatorErrorRatioHigh?\n{text}"
    );
}
