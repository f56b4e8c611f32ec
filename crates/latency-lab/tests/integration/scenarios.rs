//! `latency-lab scenario`: every scenario's claim holds and its control's
//! does not; the traces shipped in `docs/traces/` still have the shape their
//! scenarios produce; `--target` refuses what a running suite cannot do.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use trace_view::{jaeger_json, Trace};

use crate::common::{Options, Suite, LAB};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn scenario(args: &[&str]) -> Output {
    scenario_with(args, &[])
}

fn scenario_with(args: &[&str], env: &[(&str, PathBuf)]) -> Output {
    Command::new(LAB)
        .arg("scenario")
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(root())
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `latency-lab scenario --json`: the catalog, as the binary sees it.
fn catalog() -> Vec<serde_json::Value> {
    let output = scenario(&["--json"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    serde_json::from_slice::<Vec<serde_json::Value>>(&output.stdout).unwrap()
}

/// A trace's shape: per span its service, name, kind, attribute keys and
/// event names — what a lesson reads off it — sorted, without the values
/// (ids, times, ports) that differ on every run.
fn shape(trace: &Trace) -> Vec<String> {
    let mut spans: Vec<String> = trace
        .spans
        .iter()
        .map(|s| {
            let keys: Vec<&str> = s.attributes.keys().map(String::as_str).collect();
            // An event's name may carry a number that differs per run (an
            // error's message: "next probe in 4685 ms").
            let mut events: Vec<String> =
                s.events.iter().map(|e| without_digits(&e.name)).collect();
            events.sort_unstable();
            format!(
                "{} {} {:?} error={} attributes [{}] events [{}]",
                s.service,
                s.name,
                s.kind,
                s.is_error(),
                keys.join(" "),
                events.join(" ")
            )
        })
        .collect();
    spans.sort();
    spans
}

fn without_digits(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if !c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('#') {
            out.push('#');
        }
    }
    out
}

fn shapes(path: &Path) -> Vec<Vec<String>> {
    let mut traces: Vec<Vec<String>> = jaeger_json::read_file(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .iter()
        .map(shape)
        .collect();
    traces.sort();
    traces
}

/// Every scenario, then its control, one at a time (the load scenarios'
/// claims are about timing, so they do not share the machine with each
/// other). Each failure is collected, so one run names all of them.
#[test]
fn every_scenario_holds_and_its_control_does_not() {
    let saved = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let started = Instant::now();
    let catalog = catalog();
    assert!(catalog.len() >= 12, "{} scenarios", catalog.len());
    for entry in &catalog {
        let name = entry["name"].as_str().unwrap();
        // A scenario with its own collector and Jaeger needs the Jaeger
        // binary: as the end-to-end tests, skipped without one (a failure
        // under CI=true), and given the one found so it is not looked for twice.
        let mut env = Vec::new();
        if entry["collector"] == true {
            match jaeger_harness::jaeger_for_tests() {
                Some(bin) => env.push(("JAEGER_BIN", bin)),
                None => continue,
            }
        }
        let scenario = |args: &[&str]| scenario_with(args, &env);
        // The scenario, exactly as a lesson runs it, plus --save.
        let output = scenario(&[
            name,
            "--save",
            saved.path().to_str().unwrap(),
            "--color",
            "never",
        ]);
        let stdout = text(&output.stdout);
        if !output.status.success() || !stdout.contains("\nverdict: the claim holds\n") {
            failures.push(format!(
                "scenario {name}: the claim does not hold\n{stdout}\n{}",
                text(&output.stderr)
            ));
        }
        for file in entry["ships"].as_array().unwrap() {
            let file = file.as_str().unwrap();
            let produced = saved.path().join(file);
            let shipped = root().join("docs/traces").join(file);
            if !produced.exists() {
                failures.push(format!("scenario {name} saved no {file}"));
            } else if shapes(&produced) != shapes(&shipped) {
                failures.push(format!(
                    "docs/traces/{file} no longer has the shape scenario {name} produces (regenerate: latency-lab scenario --ship docs/traces)\nshipped:  {:#?}\nproduced: {:#?}",
                    shapes(&shipped),
                    shapes(&produced)
                ));
            }
        }
        // Its control, read as JSON.
        let output = scenario(&[name, "--control", "--json"]);
        let verdict: Option<serde_json::Value> = serde_json::from_slice(&output.stdout).ok();
        let holds = verdict.as_ref().and_then(|v| v["holds"].as_bool());
        if !output.status.success() || holds != Some(false) {
            failures.push(format!(
                "scenario {name} --control: expected the claim not to hold, got {holds:?}\n{}\n{}",
                text(&output.stdout),
                text(&output.stderr)
            ));
        }
        eprintln!(
            "scenario {name} and its control: {:?} so far",
            started.elapsed()
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_traces_in_docs_are_exactly_the_ones_the_scenarios_ship() {
    let shipped: Vec<String> = catalog()
        .iter()
        .flat_map(|e| e["ships"].as_array().unwrap().clone())
        .map(|f| f.as_str().unwrap().to_owned())
        .collect();
    let mut files: Vec<String> = std::fs::read_dir(root().join("docs/traces"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut expected = shipped.clone();
    expected.sort();
    assert_eq!(
        files, expected,
        "docs/traces against the scenarios' ship = true phases"
    );
}

#[test]
fn every_scenario_leads_a_lesson_and_every_lesson_names_real_scenarios() {
    let catalog = catalog();
    let names: Vec<&str> = catalog
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    for entry in &catalog {
        let name = entry["name"].as_str().unwrap();
        let lesson = root()
            .join("docs/lessons")
            .join(format!("{}.md", entry["lesson"].as_str().unwrap()));
        let text = std::fs::read_to_string(&lesson)
            .unwrap_or_else(|e| panic!("scenario {name}: {}: {e}", lesson.display()));
        let commands = crate::docs::sh_commands(&text);
        assert!(
            commands.contains(&format!("latency-lab scenario {name}")),
            "{} does not run `latency-lab scenario {name}` in a sh block",
            lesson.display()
        );
    }
    for file in std::fs::read_dir(root().join("docs/lessons")).unwrap() {
        let path = file.unwrap().path();
        for command in crate::docs::sh_commands(&std::fs::read_to_string(&path).unwrap()) {
            if let Some(rest) = command.strip_prefix("latency-lab scenario ") {
                assert!(
                    names.contains(&rest),
                    "{}: `{command}` is not `latency-lab scenario NAME` for a scenario ({names:?})",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn a_running_suite_refuses_in_one_line_what_it_cannot_do() {
    for (name, says) in [
        (
            "pool-contention",
            "error: scenario pool-contention needs start-up settings a running suite cannot take (ORDER_SERVICE_DB_POOL_SIZE=1): run it without --target",
        ),
        (
            "critical-path",
            "error: scenario critical-path reads the suite's spans, which a running suite sends to its own receiver, not here: give its Jaeger with --jaeger URL, or run it without --target",
        ),
        (
            "broken-trace",
            "error: scenario broken-trace counts traces that no answer names (orphaned calls), which only the receiver of a suite it starts sees: run it without --target",
        ),
        (
            "tail-sampling",
            "error: scenario tail-sampling runs its own collector and Jaeger for the suite it starts: run it without --target",
        ),
        (
            "percentile-to-trace",
            "error: scenario percentile-to-trace reads the suite's metrics, which a running suite sends to its own receiver, not here: run it without --target",
        ),
    ] {
        // Refused before anything is sent: the target need not even exist.
        let output = scenario(&[name, "--target", &crate::common::closed_port_url()]);
        assert_eq!(output.status.code(), Some(1));
        assert_eq!(text(&output.stderr), format!("{says}\n"));
        assert!(output.stdout.is_empty());
    }
    // A Jaeger lifts the refusal for spans, not for orphaned traces.
    let output = scenario(&[
        "broken-trace",
        "--target",
        &crate::common::closed_port_url(),
        "--jaeger",
        &crate::common::closed_port_url(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr)
            .starts_with("error: scenario broken-trace counts traces that no answer names"),
        "{}",
        text(&output.stderr)
    );
}

#[tokio::test]
async fn a_scenario_runs_against_a_running_suite_and_prints_json() {
    let suite = Suite::start(Options::default()).await;
    let output = scenario(&["fallback", "--target", &suite.aggregator.url, "--json"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let verdict: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(verdict["holds"], true);
    assert_eq!(verdict["target"], format!("{}/", suite.aggregator.url));
    assert_eq!(verdict["seed"], serde_json::Value::Null);
    assert_eq!(verdict["phases"][0]["answers"]["200"], 3);
    assert_eq!(verdict["figures"]["degraded.ok"]["value"], 1.0);
    assert_eq!(verdict["figures"]["degraded.ok"]["unit"], "fraction");
    // The requests were the running suite's: its receiver gets their spans.
    suite
        .receiver
        .store()
        .wait_for(crate::common::WAIT, |spans| {
            spans
                .iter()
                .filter(|s| s.name == "GET /user-profile/{id}")
                .count()
                >= 3
        })
        .await
        .expect("the running suite's spans of the scenario's requests");

    // Its control, against the same suite: no fallback, so 502s, and exit 0
    // because a control's claim must not hold.
    let output = scenario(&["fallback", "--control", "--target", &suite.aggregator.url]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("verdict: the claim does not hold, as the control must not"),
        "{stdout}"
    );
}

/// A running suite that exports to a real Jaeger (as `docker compose up`'s
/// does, through its collector): a scenario whose claim reads spans reads
/// its requests' traces back from that Jaeger.
#[tokio::test]
async fn with_jaeger_a_scenario_reads_a_running_suites_traces() {
    let Some(bin) = jaeger_harness::jaeger_for_tests() else {
        return;
    };
    let jaeger = jaeger_harness::Jaeger::start(&bin).expect("start Jaeger");
    let suite = Suite::start(Options {
        otlp_endpoint: Some(jaeger.otlp_grpc_endpoint()),
        ..Options::default()
    })
    .await;
    let output = scenario(&[
        "critical-path",
        "--target",
        &suite.aggregator.url,
        "--jaeger",
        &jaeger.query_url(),
        "--json",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let verdict: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(verdict["holds"], true, "{verdict:#}");
    // Three requests, three whole traces read back from Jaeger.
    assert_eq!(verdict["phases"][0]["traces"], 3, "{verdict:#}");
    let share = verdict["figures"]["slow_user.critical_share(user-service)"]["value"]
        .as_f64()
        .unwrap();
    assert!(share > 0.9, "{share}");

    // Its control, on the same suite: the user service at its usual speed.
    let output = scenario(&[
        "critical-path",
        "--control",
        "--target",
        &suite.aggregator.url,
        "--jaeger",
        &jaeger.query_url(),
        "--json",
    ]);
    let verdict: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(output.status.success(), "{verdict:#}");
    assert_eq!(verdict["holds"], false, "{verdict:#}");
}

#[test]
fn the_list_names_every_scenario_and_an_unknown_one_is_an_error() {
    let output = scenario(&[]);
    let stdout = text(&output.stdout);
    assert!(output.status.success());
    let listed: BTreeMap<&str, &str> = stdout.lines().filter_map(|l| l.split_once("  ")).collect();
    for entry in catalog() {
        assert!(
            listed.contains_key(entry["name"].as_str().unwrap()),
            "{entry} not listed in\n{stdout}"
        );
    }
    let output = scenario(&["retry-stomr"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr
            .starts_with("error: no scenario \"retry-stomr\": `latency-lab scenario` lists them (")
            && stderr.contains("retry-storm"),
        "{stderr}"
    );
}
