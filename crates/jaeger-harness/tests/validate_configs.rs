//! `jaeger validate` accepts the repository's configs; a broken one is rejected.

use std::path::{Path, PathBuf};
use std::process::Command;

use jaeger_harness::{
    jaeger_for_tests, otelcol_for_tests, repo_file, COLLECTOR_CONFIG, JAEGER_CONFIG,
    JAEGER_UI_CONFIG, TAIL_SAMPLING_OVERLAY,
};

/// Runs `jaeger <subcommand> --config ...` and returns (success, stdout, stderr).
fn run(
    bin: &Path,
    subcommand: &str,
    configs: &[PathBuf],
    env: &[(&str, &str)],
) -> (bool, String, String) {
    let mut command = Command::new(bin);
    command.arg(subcommand);
    for config in configs {
        command.arg("--config").arg(config);
    }
    command.envs(env.iter().copied());
    let output = command.output().expect("cannot run the jaeger binary");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn assert_valid(bin: &Path, configs: &[PathBuf], env: &[(&str, &str)]) {
    let (ok, stdout, stderr) = run(bin, "validate", configs, env);
    assert!(
        ok,
        "`jaeger validate` rejected {configs:?} with {env:?}:\n{stdout}\n{stderr}"
    );
}

#[test]
fn collector_config_is_valid() {
    let Some(bin) = jaeger_for_tests() else {
        return;
    };
    assert_valid(&bin, &[repo_file(COLLECTOR_CONFIG)], &[]);
}

#[test]
fn tail_sampling_overlay_is_valid_on_the_collector_config() {
    let Some(bin) = jaeger_for_tests() else {
        return;
    };
    let configs = [
        repo_file(COLLECTOR_CONFIG),
        repo_file(TAIL_SAMPLING_OVERLAY),
    ];
    assert_valid(&bin, &configs, &[]);
    // The knobs the tests turn, with non-default values.
    assert_valid(
        &bin,
        &configs,
        &[
            ("TAIL_SAMPLING_PERCENT", "0"),
            ("TAIL_SAMPLING_LATENCY_THRESHOLD_MS", "300"),
            ("TAIL_SAMPLING_DECISION_WAIT", "1s"),
        ],
    );
}

#[test]
fn jaeger_config_is_valid() {
    let Some(bin) = jaeger_for_tests() else {
        return;
    };
    assert_valid(&bin, &[repo_file(JAEGER_CONFIG)], &[]);
    let ui = repo_file(JAEGER_UI_CONFIG);
    assert_valid(
        &bin,
        &[repo_file(JAEGER_CONFIG)],
        &[("JAEGER_UI_CONFIG_FILE", ui.to_str().expect("UTF-8 path"))],
    );
}

#[test]
fn ui_config_is_a_json_object() {
    let text = std::fs::read_to_string(repo_file(JAEGER_UI_CONFIG)).expect("read ui config");
    let json: serde_json::Value = serde_json::from_str(&text).expect("ui-config.json is not JSON");
    assert!(json.is_object(), "ui-config.json must be a JSON object");
}

/// The check above can fail: validate does reject a wrong value and a component that the
/// contrib image has but the Jaeger binary lacks (or the other way round).
#[test]
fn validate_rejects_broken_configs() {
    let Some(bin) = jaeger_for_tests() else {
        return;
    };
    let configs = [
        repo_file(COLLECTOR_CONFIG),
        repo_file(TAIL_SAMPLING_OVERLAY),
    ];
    let (ok, _, _) = run(
        &bin,
        "validate",
        &configs,
        &[("TAIL_SAMPLING_PERCENT", "ten")],
    );
    assert!(!ok, "validate accepted TAIL_SAMPLING_PERCENT=ten");

    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "processors:\n  resource:\n    attributes: []\n").expect("write");
    let (ok, _, _) = run(&bin, "validate", &[repo_file(COLLECTOR_CONFIG), bad], &[]);
    assert!(
        !ok,
        "validate accepted a `resource` processor, which the Jaeger binary lacks"
    );
}

/// Lists are replaced, not merged, when configs are layered: the overlay must restate the
/// whole processor list, and the base file's receivers and exporters must survive.
#[test]
fn overlay_puts_tail_sampling_into_the_traces_pipeline() {
    let Some(bin) = jaeger_for_tests() else {
        return;
    };
    let configs = [
        repo_file(COLLECTOR_CONFIG),
        repo_file(TAIL_SAMPLING_OVERLAY),
    ];
    let (ok, stdout, stderr) = run(&bin, "print-config", &configs, &[]);
    assert!(ok, "print-config failed:\n{stderr}");
    let merged: serde_norway::Value =
        serde_norway::from_str(&stdout).expect("print-config output is YAML");
    let pipeline = &merged["service"]["pipelines"]["traces"];
    let names = |key: &str| -> Vec<String> {
        pipeline[key]
            .as_sequence()
            .unwrap_or_else(|| panic!("no {key} list in merged pipeline: {pipeline:?}"))
            .iter()
            .map(|v| v.as_str().expect("string").to_owned())
            .collect()
    };
    assert_eq!(
        names("processors"),
        ["memory_limiter", "tail_sampling", "batch"]
    );
    assert_eq!(names("receivers"), ["otlp"]);
    assert!(names("exporters").iter().any(|e| e == "otlp/jaeger"));
}

/// Span metrics are computed from every span: the tail-sampling overlay changes only the
/// `traces` pipeline, while `traces/spanmetrics` (same receiver) feeds the connector, whose
/// output joins the services' OTLP metrics on the way to the Prometheus exporter.
#[test]
fn tail_sampling_leaves_the_span_metrics_seeing_every_span() {
    let Some(bin) = jaeger_for_tests() else {
        return;
    };
    let configs = [
        repo_file(COLLECTOR_CONFIG),
        repo_file(TAIL_SAMPLING_OVERLAY),
    ];
    let (ok, stdout, stderr) = run(&bin, "print-config", &configs, &[]);
    assert!(ok, "print-config failed:\n{stderr}");
    let merged: serde_norway::Value =
        serde_norway::from_str(&stdout).expect("print-config output is YAML");
    let names = |pipeline: &str, key: &str| -> Vec<String> {
        merged["service"]["pipelines"][pipeline][key]
            .as_sequence()
            .unwrap_or_else(|| panic!("no {pipeline}.{key} in {:?}", merged["service"]))
            .iter()
            .map(|v| v.as_str().expect("string").to_owned())
            .collect()
    };
    assert_eq!(names("traces/spanmetrics", "receivers"), ["otlp"]);
    assert_eq!(
        names("traces/spanmetrics", "processors"),
        ["memory_limiter"]
    );
    assert_eq!(names("traces/spanmetrics", "exporters"), ["spanmetrics"]);
    assert_eq!(names("metrics", "receivers"), ["otlp", "spanmetrics"]);
    assert_eq!(names("metrics", "exporters"), ["prometheus"]);
    assert!(names("traces", "processors").contains(&"tail_sampling".to_owned()));
    assert!(!names("traces", "exporters").contains(&"spanmetrics".to_owned()));
}

/// The environment a service of `docker-compose.yml` sets (its `environment:` mapping).
fn compose_environment(service: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo_file("docker-compose.yml")).expect("compose file");
    let compose: serde_norway::Value = serde_norway::from_str(&text).expect("compose YAML");
    let env = compose["services"][service]["environment"]
        .as_mapping()
        .unwrap_or_else(|| panic!("{service} has no environment mapping"));
    env.iter()
        .map(|(k, v)| {
            let value = match v {
                serde_norway::Value::String(s) => s.clone(),
                other => serde_norway::to_string(other)
                    .expect("scalar")
                    .trim()
                    .to_owned(),
            };
            (k.as_str().expect("name").to_owned(), value)
        })
        .collect()
}

/// The Jaeger roles of the compose `scale` profile: their configs (deploy/configs/), with the
/// environment compose gives them, are accepted by the same Jaeger release the images run.
#[test]
fn scale_profile_jaeger_configs_are_valid_with_the_compose_environment() {
    let Some(bin) = jaeger_for_tests() else {
        return;
    };
    for (service, config) in [
        (
            "jaeger-kafka-collector",
            "deploy/configs/jaeger-kafka-collector.yaml",
        ),
        ("jaeger-ingester", "deploy/configs/jaeger-ingester.yaml"),
    ] {
        let env = compose_environment(service);
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_valid(&bin, &[repo_file(config)], &pairs);
    }
    // And validate does read those variables: a broker list that is not a list is refused.
    let (ok, _, _) = run(
        &bin,
        "validate",
        &[repo_file("deploy/configs/jaeger-ingester.yaml")],
        &[("KAFKA_BROKERS", "{not: a list}")],
    );
    assert!(!ok, "validate accepted a mapping as the broker list");
}

/// The collector tiers of the compose `scale` profile: front.yaml and sampler.yaml with the
/// environment compose gives them, accepted by the collector built from deploy/collector/ (the
/// contrib image's components at the same release); a sampler list that is not a list is not.
#[test]
fn scale_profile_collector_configs_are_valid_with_the_compose_environment() {
    let Some(bin) = otelcol_for_tests() else {
        return;
    };
    for (service, config) in [
        ("otel-front", "deploy/configs/front.yaml"),
        ("sampler-1", "deploy/configs/sampler.yaml"),
        ("sampler-2", "deploy/configs/sampler.yaml"),
    ] {
        let env = compose_environment(service);
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_valid(&bin, &[repo_file(config)], &pairs);
    }
    let (ok, _, _) = run(
        &bin,
        "validate",
        &[repo_file("deploy/configs/front.yaml")],
        &[("SAMPLER_ENDPOINTS", "{not: a list}")],
    );
    assert!(!ok, "validate accepted a mapping as the sampler list");
}
