//! The command lines: `--help` everywhere, bad flags rejected with a clear
//! message, and `latency-lab up --demo-only` as a user would run it.

use std::process::Command;

use crate::common::LAB;

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["up", "--help"],
        vec!["trace", "--help"],
        vec!["serve", "user-service", "--help"],
        vec!["serve", "order-service", "--help"],
        vec!["serve", "profile-aggregator", "--help"],
    ] {
        let output = Command::new(LAB).args(&args).output().unwrap();
        assert!(output.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(text.contains("Usage:"), "{args:?}: {text}");
    }
    let output = Command::new(LAB)
        .args(["serve", "profile-aggregator", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--user-service-url",
        "--order-service-url",
        "--mode",
        "--user-timeout",
        "--order-timeout",
        "--listen",
        "--log-format",
    ] {
        assert!(text.contains(flag), "aggregator --help lacks {flag}");
    }
    // Every service states its server's bounds, each with its variable.
    for service in ["user-service", "order-service", "profile-aggregator"] {
        let output = Command::new(LAB)
            .args(["serve", service, "--help"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(text.contains("Server limits:"), "{service}: {text}");
        for (flag, env) in [
            ("--header-read-timeout", "SERVER_HEADER_READ_TIMEOUT"),
            ("--idle-timeout", "SERVER_IDLE_TIMEOUT"),
            ("--max-connections", "SERVER_MAX_CONNECTIONS"),
            ("--request-timeout", "SERVER_REQUEST_TIMEOUT"),
            ("--shutdown-grace", "SERVER_SHUTDOWN_GRACE"),
            ("--max-uri-bytes", "SERVER_MAX_URI_BYTES"),
            ("--max-header-bytes", "SERVER_MAX_HEADER_BYTES"),
        ] {
            assert!(text.contains(flag), "{service} --help lacks {flag}");
            assert!(text.contains(&format!("[env: {env}=")), "{service}: {env}");
        }
    }
}

#[test]
fn bad_flags_are_rejected_clearly() {
    for (args, expect) in [
        (vec!["serve", "user-service", "--latency", "fast"], "100ms"),
        (
            vec!["serve", "profile-aggregator", "--mode", "parallel"],
            "sequential",
        ),
        (
            vec![
                "serve",
                "profile-aggregator",
                "--user-service-url",
                "ftp://x",
            ],
            "http://",
        ),
        (
            vec!["serve", "profile-aggregator", "--order-timeout", "1ns"],
            "'--order-timeout <ORDER_TIMEOUT>': \"1ns\": a timeout must be at least 1ms and at most 1m",
        ),
        (
            vec!["serve", "profile-aggregator", "--user-timeout", "2h"],
            "--user-timeout",
        ),
        (
            vec!["serve", "profile-aggregator", "--hedge-after", "50us"],
            "at least 1ms and at most 1m",
        ),
        (
            vec!["serve", "order-service", "--listen", "nowhere"],
            "--listen",
        ),
        (
            vec!["serve", "order-service", "--log-format", "xml"],
            "json",
        ),
    ] {
        let output = Command::new(LAB).args(&args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
    }
}

#[test]
fn port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = Command::new(LAB)
        .args(["serve", "user-service", "--listen", &addr])
        .env("OTEL_SDK_DISABLED", "true")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
    // One line, the cause once, and the way forward.
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert_eq!(stderr.matches("in use").count(), 1, "{stderr}");
    assert!(stderr.contains("--listen ADDR"), "{stderr}");
}

#[test]
fn up_demo_only_prints_both_traces_and_leaves_no_process_behind() {
    let traces = tempfile::tempdir().unwrap();
    let output = Command::new(LAB)
        .env("LATENCY_LAB_TRACES_DIR", traces.path())
        .args([
            "up",
            "--demo-only",
            "--aggregator",
            "127.0.0.1:0",
            "--user-service",
            "127.0.0.1:0",
            "--order-service",
            "127.0.0.1:0",
            "--otlp-grpc",
            "127.0.0.1:0",
            "--otlp-http",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "sequential request",
        "concurrent request",
        "profile-aggregator GET /user-profile/{id}",
        "user-service db.query SELECT users",
        "order-service db.query SELECT orders",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    let sequential_ms = total_ms(&stdout, "sequential request: ");
    let concurrent_ms = total_ms(&stdout, "concurrent request: ");
    assert!(sequential_ms > concurrent_ms, "{stdout}");
    assert_eq!(
        stdout.matches("(7 spans, 3 services, ").count(),
        2,
        "{stdout}"
    );

    let pids: Vec<&str> = stdout
        .lines()
        .filter_map(|l| {
            l.strip_prefix("stopped ")?
                .split("(pid ")
                .nth(1)?
                .strip_suffix(')')
        })
        .collect();
    assert_eq!(pids.len(), 3, "three services stopped: {stdout}");
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "service process {pid} outlived `up`"
        );
    }
    // Front to back: the aggregator first, while the mocks still answer.
    let stopped: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("stopped ")?.split(' ').next())
        .collect();
    assert_eq!(
        stopped,
        ["profile-aggregator", "order-service", "user-service"],
        "{stdout}"
    );
}

fn total_ms(stdout: &str, prefix: &str) -> f64 {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(prefix))
        .expect(prefix);
    line[prefix.len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}
