//! Every command in a ```` ```sh ```` block of `docs/` runs and succeeds, so
//! the lessons never rot. `latency-lab …` lines run the binary under test;
//! the listen addresses are moved to free ports through the environment so
//! the commands run exactly as written without clashing with anything.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::LAB;

fn docs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs")
}

fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            markdown_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
}

/// `latency-lab WORDS…` as a lesson runs it, on free ports, from the
/// checkout's root (paths in the lessons are relative to it), saving
/// traces in `traces`.
pub(crate) fn run_lesson_words(words: &[&str], traces: &Path) -> std::process::Output {
    Command::new(LAB)
        .current_dir(docs_dir().join(".."))
        .args(words)
        .env("LATENCY_LAB_AGGREGATOR", "127.0.0.1:0")
        .env("LATENCY_LAB_USER_SERVICE", "127.0.0.1:0")
        .env("LATENCY_LAB_ORDER_SERVICE", "127.0.0.1:0")
        .env("LATENCY_LAB_OTLP_GRPC", "127.0.0.1:0")
        .env("LATENCY_LAB_OTLP_HTTP", "127.0.0.1:0")
        .env("LATENCY_LAB_TRACES_DIR", traces)
        .output()
        .unwrap()
}

/// The lines of every ```` ```sh ```` block.
pub(crate) fn sh_commands(markdown: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut in_sh = false;
    for line in markdown.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            in_sh = !in_sh && trimmed == "```sh";
            continue;
        }
        if in_sh && !trimmed.is_empty() && !trimmed.starts_with('#') {
            commands.push(trimmed.to_owned());
        }
    }
    commands
}

#[test]
fn every_lesson_command_runs() {
    let mut files = Vec::new();
    markdown_files(&docs_dir(), &mut files);
    files.sort();
    let mut ran = 0;
    // `up` saves every trace; keep the lessons' traces out of the checkout.
    let traces = tempfile::tempdir().unwrap();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for command in sh_commands(&text) {
            // Single quotes keep shell syntax such as `(` out of the shell
            // (`--order-latency '200ms+spike(p=0.1,1s)'`); no word has spaces.
            let words: Vec<&str> = command
                .split_whitespace()
                .map(|w| w.trim_matches('\''))
                .collect();
            assert_eq!(
                words[0],
                "latency-lab",
                "{}: only latency-lab commands belong in sh blocks (use ```text for others): {command}",
                file.display()
            );
            // `latency-lab scenario NAME` — every one, with its control and
            // exactly these words plus `--save`, runs in
            // `scenarios::every_scenario_holds_and_its_control_does_not`,
            // which fails when its verdict does not hold (and
            // `scenarios::every_scenario_leads_a_lesson…` checks the name):
            // running them twice would add minutes to CI for nothing.
            if words.len() == 3 && words[1] == "scenario" {
                continue;
            }
            let runs_forever =
                words.len() == 1 || (words[1] == "up" && !words.contains(&"--demo-only"));
            assert!(
                !runs_forever,
                "{}: `{command}` runs until Ctrl-C; put it in a ```text block or add --demo-only",
                file.display()
            );
            let output = run_lesson_words(&words[1..], traces.path());
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(
                output.status.success(),
                "{}: `{command}` failed:\n{stdout}\n{}",
                file.display(),
                String::from_utf8_lossy(&output.stderr)
            );
            // A waterfall (`trace …`), or explain's report over traces.
            assert!(
                stdout.contains("trace ") || stdout.contains(" traces of "),
                "`{command}` printed no trace:\n{stdout}"
            );
            ran += 1;
        }
    }
    assert!(ran >= 4, "expected the lessons' commands, ran {ran}");
}

/// The workspace's crates and, for each, the workspace crates it depends on
/// (normal dependencies only), read from the manifests by `cargo metadata`.
fn workspace_crates() -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let metadata = crate::common::cargo_metadata(&["--no-deps", "--offline"]);
    let packages = metadata["packages"].as_array().unwrap();
    let names: std::collections::BTreeSet<String> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    packages
        .iter()
        .map(|p| {
            let uses = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].is_null())
                .map(|d| d["name"].as_str().unwrap().to_owned())
                .filter(|d| names.contains(d))
                .collect();
            (p["name"].as_str().unwrap().to_owned(), uses)
        })
        .collect()
}

/// The rows of the first markdown table after `heading`, as cells.
fn table_rows(markdown: &str, heading: &str) -> Vec<Vec<String>> {
    let after = &markdown[markdown.find(heading).expect(heading)..];
    after
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_owned())
                .collect()
        })
        .collect()
}

#[test]
fn architecture_lists_every_crate_and_its_dependencies() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let crates = workspace_crates();
    let architecture = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let rows = table_rows(&architecture, "## The crates");
    let documented: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> = rows
        .iter()
        .map(|cells| {
            let name = cells[0].trim_matches('`').to_owned();
            let uses = cells[2]
                .split(", ")
                .filter(|u| *u != "—")
                .map(str::to_owned)
                .collect();
            (name, uses)
        })
        .collect();
    assert_eq!(
        documented, crates,
        "ARCHITECTURE.md's crate table (name → uses) differs from the manifests"
    );

    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let layout: std::collections::BTreeSet<String> = table_rows(&readme, "## Repository layout")
        .iter()
        .map(|cells| {
            cells[0]
                .trim_matches('`')
                .trim_start_matches("crates/")
                .to_owned()
        })
        .collect();
    let names: std::collections::BTreeSet<String> = crates.keys().cloned().collect();
    assert_eq!(
        layout, names,
        "README's layout table differs from the crates"
    );
}
