//! The first five minutes on a new machine: every promise the README makes
//! holds, and every common obstacle is one line with the way forward.
//!
//! * The Rust version the README and `Cargo.toml` promise is the one the
//!   locked dependency graph needs.
//! * A taken port (by flag, variable or default), an `--otlp-endpoint`
//!   nobody listens on, a file that is not a Jaeger trace, a terminal
//!   without colour or too narrow: each run with the real binary.
//!
//! (Go missing or too old for the Jaeger tests is checked in jaeger-harness,
//! through `jaeger_binary_in`, which takes `PATH` as input.)

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use crate::common::LAB;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// ---------------------------------------------------------------------------
// The Rust version promise.

/// `1.89` or `1.89.0` as (1, 89, 0).
fn version(text: &str) -> (u64, u64, u64) {
    let mut parts = text.trim().split('.').map(|p| p.parse::<u64>().unwrap());
    let major = parts.next().unwrap();
    (major, parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// This toolchain's host triple (`rustc -vV`).
fn host_triple() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let output = Command::new(rustc).arg("-vV").output().unwrap();
    text(&output.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names the host")
        .to_owned()
}

/// The packages the workspace builds on this platform (dependencies of
/// every kind, reachable from the members), with their `rust-version`, as
/// `Cargo.lock` pins them.
fn locked_packages() -> (serde_json::Value, Vec<(String, String, Option<String>)>) {
    let metadata =
        crate::common::cargo_metadata(&["--locked", "--filter-platform", &host_triple()]);
    let nodes: std::collections::HashMap<&str, &serde_json::Value> = metadata["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n))
        .collect();
    let mut reachable = std::collections::BTreeSet::new();
    let mut todo: Vec<&str> = metadata["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    while let Some(id) = todo.pop() {
        if reachable.insert(id.to_owned()) {
            for dep in nodes[id]["deps"].as_array().unwrap() {
                todo.push(dep["pkg"].as_str().unwrap());
            }
        }
    }
    let packages = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| reachable.contains(p["id"].as_str().unwrap()))
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["version"].as_str().unwrap().to_owned(),
                p["rust_version"].as_str().map(str::to_owned),
            )
        })
        .collect();
    (metadata, packages)
}

/// `Cargo.toml`'s `rust-version` is the oldest toolchain the lock accepts
/// (no locked package asks for more), and the README promises exactly it.
#[test]
fn the_promised_rust_version_is_what_the_lock_needs() {
    let (metadata, packages) = locked_packages();
    let declared = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "latency-lab")
        .and_then(|p| p["rust_version"].as_str())
        .expect("the workspace declares rust-version")
        .to_owned();
    let too_new: Vec<String> = packages
        .iter()
        .filter_map(|(name, v, rust)| {
            let rust = rust.as_deref()?;
            (version(rust) > version(&declared)).then(|| format!("{name} {v} needs Rust {rust}"))
        })
        .collect();
    assert!(
        too_new.is_empty(),
        "Cargo.toml promises Rust {declared}, but the lock pins: {}. Raise `rust-version` in \
         Cargo.toml and the README, or pin older versions (cargo update -p NAME --precise V)",
        too_new.join(", ")
    );
    assert!(
        packages.len() > 100,
        "the whole graph was read: {}",
        packages.len()
    );

    // The README states it once, as `Rust X.Y or later`, and says where it comes from.
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let promised: Vec<&str> = readme
        .match_indices("Rust ")
        .filter_map(|(i, _)| {
            let rest = &readme[i + "Rust ".len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(rest.len());
            let number = rest[..end].trim_end_matches('.');
            (number.contains('.') && number.starts_with(|c: char| c.is_ascii_digit()))
                .then_some(number)
        })
        .collect();
    assert_eq!(
        promised,
        vec![declared.as_str()],
        "the README must promise `Rust {declared} or later` once (Cargo.toml's rust-version)"
    );
    assert!(
        readme.contains(&format!("Rust {declared} or later")) && readme.contains("`rust-version`"),
        "the README says `Rust {declared} or later` and that it is Cargo.toml's `rust-version`"
    );
}

// ---------------------------------------------------------------------------
// Ports taken.

/// `latency-lab up --demo-only` with every address on a free port unless
/// the test says otherwise, whatever the caller's environment holds.
fn up(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(LAB);
    cmd.arg("up").arg("--demo-only").args(args);
    for var in [
        "LATENCY_LAB_AGGREGATOR",
        "LATENCY_LAB_USER_SERVICE",
        "LATENCY_LAB_ORDER_SERVICE",
        "LATENCY_LAB_OTLP_GRPC",
        "LATENCY_LAB_OTLP_HTTP",
    ] {
        cmd.env(var, "127.0.0.1:0");
    }
    cmd.env_remove("NO_COLOR").env_remove("COLUMNS");
    for (var, value) in env {
        cmd.env(var, value);
    }
    cmd
}

/// Exit 1 with one line, `error: …`, holding every part; nothing started.
fn assert_one_line_error(output: &Output, parts: &[&str]) {
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line:\n{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    for part in parts {
        assert!(stderr.contains(part), "{part:?} in {stderr}");
    }
    // The cause once, in our words.
    assert!(!stderr.contains("os error"), "{stderr}");
    assert!(
        !text(&output.stdout).contains("latency-lab is up"),
        "nothing starts: {}",
        text(&output.stdout)
    );
}

/// (flag, variable, says `--otlp-endpoint`) for each of `up`'s five ports.
const PORTS: [(&str, &str, bool); 5] = [
    ("--aggregator", "LATENCY_LAB_AGGREGATOR", false),
    ("--user-service", "LATENCY_LAB_USER_SERVICE", false),
    ("--order-service", "LATENCY_LAB_ORDER_SERVICE", false),
    ("--otlp-grpc", "LATENCY_LAB_OTLP_GRPC", true),
    ("--otlp-http", "LATENCY_LAB_OTLP_HTTP", true),
];

#[test]
fn a_chosen_port_that_is_taken_is_one_line_naming_flag_and_variable() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let port = taken.local_addr().unwrap().port();
    for (flag, var, otlp) in PORTS {
        let expected = [
            format!("port {port} is already in use"),
            format!("{flag} ADDR"),
            format!("{var}=ADDR"),
        ];
        let mut expected: Vec<&str> = expected.iter().map(String::as_str).collect();
        if otlp {
            expected.push("--otlp-endpoint");
        }
        let by_flag = up(&[flag, &addr], &[]).output().unwrap();
        assert_one_line_error(&by_flag, &expected);
        let by_variable = up(&[], &[(var, &addr)]).output().unwrap();
        assert_one_line_error(&by_variable, &expected);
    }
}

/// Tests that take the default ports themselves run one at a time.
static DEFAULT_PORTS: Mutex<()> = Mutex::new(());

/// Holds `port` on loopback for the test — or finds it already taken by
/// someone else, which is the situation under test just the same.
fn occupy(port: u16) -> Option<TcpListener> {
    match TcpListener::bind(("127.0.0.1", port)) {
        Ok(listener) => Some(listener),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => None,
        Err(e) => panic!("cannot bind 127.0.0.1:{port}: {e}"),
    }
}

/// With 8080, 5001 and 5002 taken and no address chosen, `up` says so in
/// one line each and runs on free ports (the URLs it prints show them).
#[test]
fn taken_default_service_ports_move_to_free_ones() {
    let _one_at_a_time = DEFAULT_PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let _held: Vec<_> = [8080, 5001, 5002].into_iter().map(occupy).collect();
    let traces = tempfile::tempdir().unwrap();
    let mut cmd = up(&["--demo-modes", "concurrent"], &[]);
    cmd.env_remove("LATENCY_LAB_AGGREGATOR")
        .env_remove("LATENCY_LAB_USER_SERVICE")
        .env_remove("LATENCY_LAB_ORDER_SERVICE")
        .env("LATENCY_LAB_TRACES_DIR", traces.path());
    let output = cmd.output().unwrap();
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    for (port, flag, var) in [
        (8080, "--aggregator", "LATENCY_LAB_AGGREGATOR"),
        (5001, "--user-service", "LATENCY_LAB_USER_SERVICE"),
        (5002, "--order-service", "LATENCY_LAB_ORDER_SERVICE"),
    ] {
        let notes: Vec<&str> = stdout
            .lines()
            .filter(|l| l.starts_with(&format!("port {port} is taken")))
            .collect();
        assert_eq!(notes.len(), 1, "one line for {port}:\n{stdout}");
        assert!(
            notes[0].contains(flag) && notes[0].contains(var),
            "{}",
            notes[0]
        );
        assert!(
            !stdout.contains(&format!("127.0.0.1:{port}")),
            "not on {port}:\n{stdout}"
        );
    }
    assert!(stdout.contains("(7 spans, 3 services, "), "{stdout}");
}

/// 4317 and 4318 are where every SDK sends: never moved silently.
#[test]
fn a_taken_default_otlp_port_stops_up_with_the_way_forward() {
    let _one_at_a_time = DEFAULT_PORTS.lock().unwrap_or_else(|e| e.into_inner());
    for (port, flag, var) in [
        (4317, "--otlp-grpc", "LATENCY_LAB_OTLP_GRPC"),
        (4318, "--otlp-http", "LATENCY_LAB_OTLP_HTTP"),
    ] {
        let _held = occupy(port);
        let mut cmd = up(&[], &[]);
        cmd.env_remove(var);
        let output = cmd.output().unwrap();
        assert_one_line_error(
            &output,
            &[
                &format!("port {port} is already in use"),
                &format!("{flag} ADDR"),
                &format!("{var}=ADDR"),
                "--otlp-endpoint",
            ],
        );
    }
}

#[test]
fn an_otlp_endpoint_nobody_listens_on_stops_up_naming_it() {
    let endpoint = crate::common::closed_port_url();
    let output = up(&["--otlp-endpoint", &endpoint], &[]).output().unwrap();
    assert_one_line_error(
        &output,
        &[
            &format!("cannot reach the OTLP endpoint {endpoint} (--otlp-endpoint)"),
            "nothing listens there",
            "leave --otlp-endpoint out",
        ],
    );
}

// ---------------------------------------------------------------------------
// The terminal, and `trace --file`.

fn trace_file(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(LAB);
    cmd.current_dir(workspace_root())
        .args(["trace", "--file", "docs/traces/fan-out.sequential.json"])
        .args(args)
        .env_remove("NO_COLOR")
        .env_remove("COLUMNS");
    for (var, value) in env {
        cmd.env(var, value);
    }
    cmd.output().unwrap()
}

const ESC: char = '\u{1b}';

/// Not a terminal, or `NO_COLOR` set: no ANSI escape at all (no-color.org);
/// `--color always` still colours, as an explicit flag should.
#[test]
fn no_colour_without_a_terminal_or_with_no_color() {
    for (args, env) in [
        (vec![], vec![]),
        (vec!["--color", "auto"], vec![("NO_COLOR", "1")]),
        (vec!["--color", "never"], vec![]),
    ] {
        let output = trace_file(&args, &env);
        assert!(output.status.success(), "{}", text(&output.stderr));
        let stdout = text(&output.stdout);
        assert!(stdout.contains("trace "), "{stdout}");
        assert!(!stdout.contains(ESC), "{args:?} {env:?}: {stdout:?}");
        assert!(output.stderr.is_empty(), "{}", text(&output.stderr));
    }
    let output = trace_file(&["--color", "always"], &[("NO_COLOR", "1")]);
    assert!(text(&output.stdout).contains(ESC));
}

/// Narrower than a waterfall can be drawn: one line on stderr saying how
/// wide it needs and what to do; the waterfall is drawn at that width.
#[test]
fn a_narrow_terminal_is_said_once_with_the_width_needed() {
    let output = trace_file(&[], &[("COLUMNS", "40")]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    for part in ["needs at least", "COLUMNS=40", "--width"] {
        assert!(stderr.contains(part), "{part:?} in {stderr}");
    }
    let needed: usize = stderr
        .split("needs at least ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the width needed, as a number");
    let stdout = text(&output.stdout);
    // The header and every span row fit; the title (with its 32-digit
    // trace id) and the closing prose lines are text, not cut.
    let lines: Vec<&str> = stdout.lines().collect();
    let widest = lines[1..lines.len() - 2]
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap();
    assert!(widest <= needed, "{widest} > {needed}:\n{stdout}");
    // Wide enough, or a width chosen: nothing said.
    assert!(trace_file(&[], &[("COLUMNS", "200")]).stderr.is_empty());
    assert!(trace_file(&["--width", "120"], &[("COLUMNS", "40")])
        .stderr
        .is_empty());
}

/// `up` prints many waterfalls but says it once.
#[test]
fn up_says_a_narrow_terminal_once() {
    let traces = tempfile::tempdir().unwrap();
    let traces = traces.path().to_str().unwrap();
    let output = up(
        &[],
        &[("COLUMNS", "40"), ("LATENCY_LAB_TRACES_DIR", traces)],
    )
    .output()
    .unwrap();
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    assert_eq!(stdout.matches("(7 spans, 3 services, ").count(), 2);
    assert_eq!(
        text(&output.stderr).matches("needs at least").count(),
        1,
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn a_file_that_is_not_a_jaeger_trace_says_what_was_expected() {
    let dir = tempfile::tempdir().unwrap();
    for (name, content, found) in [
        (
            "otlp.json",
            r#"{"resourceSpans": [{"scopeSpans": []}]}"#,
            "found OTLP JSON (resourceSpans)",
        ),
        ("list.json", "[1, 2, 3]", "found an array"),
        ("page.html", "<html></html>", "expected value at line 1"),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let output = Command::new(LAB)
            .args(["trace", "--file", path.to_str().unwrap()])
            .output()
            .unwrap();
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        for part in [
            &format!("cannot read the trace in {}", path.display()),
            "not a Jaeger JSON trace (expected {\"data\": [...]} as Jaeger's UI downloads it)",
            found,
        ] {
            assert!(stderr.contains(part), "{part:?} in {stderr}");
        }
    }
}
