//! `latency-lab up`'s per-endpoint latency table: computed from the
//! `http.server.request.duration` histograms the services export to the
//! embedded receiver, printed at exit (after the services flushed) and on
//! SIGUSR1, the worst p99 naming a saved trace from its bucket.

use std::path::Path;

use serde_json::Value;
use service_kit::child::{self, Signal};

use crate::common::WAIT;
use crate::up_waterfalls::{read_until, spawn_up, up_command};

const NO_METRICS: &str = "no http.server.request.duration metric arrived";

/// The lines of the table titled `endpoints (<when>)`, up to its blank line.
pub(crate) fn table<'a>(stdout: &'a str, when: &str) -> Vec<&'a str> {
    let title = format!("endpoints ({when}): ");
    let Some(start) = stdout.find(&title) else {
        panic!("no {title:?} table:\n{stdout}");
    };
    stdout[start..]
        .lines()
        .take_while(|line| !line.is_empty())
        .collect()
}

#[tokio::test]
async fn the_exit_table_counts_every_request_from_the_exported_histograms() {
    let dir = tempfile::tempdir().unwrap();
    let load = 6;
    let output = up_command(
        dir.path(),
        &[
            "--demo-only",
            "--demo-modes",
            "concurrent",
            "--load",
            &load.to_string(),
            "--load-concurrency",
            "2",
            "--user-latency",
            "20ms",
            "--order-latency",
            "40ms",
        ],
    )
    .output()
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines = table(&stdout, "at exit");
    assert!(
        !lines[0].contains(NO_METRICS),
        "the services exported no metrics: not one http.server.request.duration point reached up's receiver\n{stdout}"
    );

    // Title, header, one row per service endpoint, the footer, the trace.
    let header: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        header,
        ["service", "method", "route", "requests", "rate", "errors", "p50", "p90", "p99", "max"],
        "{stdout}"
    );
    let row = |service: &str| -> Vec<&str> {
        lines
            .iter()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|cells| cells.first() == Some(&service))
            .unwrap_or_else(|| panic!("no {service} row:\n{stdout}"))
    };
    let aggregator = row("profile-aggregator");
    assert_eq!(&aggregator[1..3], ["GET", "/user-profile/{id}"], "{stdout}");
    // One demo request and the load, each counted once by the aggregator.
    assert_eq!(aggregator[3], (1 + load).to_string(), "{stdout}");
    assert!(aggregator[4].ends_with("/s"), "{stdout}");
    assert_eq!(aggregator[5], "0.0%", "{stdout}");
    // p50 … max: four durations, each a number and a unit.
    let durations = &aggregator[6..];
    assert_eq!(durations.len(), 8, "{stdout}");
    for pair in durations.chunks(2) {
        assert!(pair[0].parse::<f64>().is_ok(), "{stdout}");
        assert!(["µs", "ms", "s"].contains(&pair[1]), "{stdout}");
    }
    for service in ["user-service", "order-service"] {
        let cells = row(service);
        assert_eq!(cells[1], "GET", "{stdout}");
    }
    let footer = lines
        .iter()
        .find(|l| l.trim_start().starts_with("from histogram buckets:"))
        .unwrap_or_else(|| panic!("no footer:\n{stdout}"));
    assert!(
        footer.contains("p99 ≤ its bucket's upper bound"),
        "{stdout}"
    );

    // The worst p99 is the aggregator's (it waits on both others), and names
    // a trace of that bucket, saved where it says.
    let worst = lines
        .iter()
        .find(|l| l.trim_start().starts_with("worst p99: "))
        .unwrap_or_else(|| panic!("no worst p99 line:\n{stdout}"));
    assert!(
        worst.contains("profile-aggregator GET /user-profile/{id}"),
        "{stdout}"
    );
    let trace_id = worst
        .split("trace ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no trace id in {worst:?}:\n{stdout}"));
    let path = worst
        .rsplit("saved as ")
        .next()
        .unwrap_or_else(|| panic!("no path in {worst:?}"));
    assert_eq!(
        Path::new(path),
        dir.path().join(format!("{trace_id}.json")),
        "{stdout}"
    );
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(saved["data"][0]["traceID"], trace_id);
}

#[tokio::test]
async fn sigusr1_prints_the_table_while_following() {
    let dir = tempfile::tempdir().unwrap();
    let (mut up, mut lines, _guard) = spawn_up(dir.path(), &["--no-demo"]);
    let pid = up.id().expect("up is running");
    let mut out = Vec::new();
    read_until(&mut lines, &mut out, "the follow mode", |l| {
        l.starts_with("waiting for requests")
    })
    .await;

    let kill = std::process::Command::new("kill")
        .args(["-USR1", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(kill.success());
    // Whether or not metrics arrived yet, the table (or the line saying
    // there is none) answers the signal, and `up` keeps running.
    read_until(&mut lines, &mut out, "the table on SIGUSR1", |l| {
        l.starts_with("endpoints (on SIGUSR1): ")
    })
    .await;

    child::send(pid, Signal::Interrupt).expect("SIGINT to up");
    read_until(&mut lines, &mut out, "the table at exit", |l| {
        l.starts_with("endpoints (at exit): ")
    })
    .await;
    let status = tokio::time::timeout(WAIT, up.wait())
        .await
        .expect("up exits after SIGINT")
        .unwrap();
    assert!(status.success(), "{status}:\n{}", out.join("\n"));
}

#[test]
fn stats_every_refuses_less_than_a_second() {
    let output = std::process::Command::new(crate::common::LAB)
        .args(["up", "--stats-every", "10ms"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("at least 1s"), "{stderr}");
}
