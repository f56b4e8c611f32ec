//! `latency-lab up` end to end, as a person runs it: three service
//! processes, the demo traces printed as waterfalls, new traces followed
//! until Ctrl-C (SIGINT) stops everything, every trace saved as a Jaeger
//! JSON file that `trace --file` renders exactly as `up` printed it.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Stdio;

use crate::common::{LAB, WAIT};
use serde_json::Value;
use service_kit::child::{self, Signal};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{ChildStdout, Command};

/// The display every run here uses, so outputs can be compared verbatim.
pub(crate) const DISPLAY: [&str; 4] = ["--width", "100", "--color", "never"];

pub(crate) fn up_command(traces_dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(LAB);
    cmd.arg("up")
        .args(DISPLAY)
        .args(args)
        .env("LATENCY_LAB_AGGREGATOR", "127.0.0.1:0")
        .env("LATENCY_LAB_USER_SERVICE", "127.0.0.1:0")
        .env("LATENCY_LAB_ORDER_SERVICE", "127.0.0.1:0")
        .env("LATENCY_LAB_OTLP_GRPC", "127.0.0.1:0")
        .env("LATENCY_LAB_OTLP_HTTP", "127.0.0.1:0")
        .env("LATENCY_LAB_TRACES_DIR", traces_dir);
    cmd
}

/// `latency-lab up ARGS` on free ports (see [`up_command`]), saving traces
/// in `traces_dir`, in a process group of its own: the child, its stdout's
/// lines, and the guard that kills the group if the test panics.
pub(crate) fn spawn_up(
    traces_dir: &Path,
    args: &[&str],
) -> (
    tokio::process::Child,
    Lines<BufReader<ChildStdout>>,
    KillGroupOnPanic,
) {
    let mut up = up_command(traces_dir, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .expect("start latency-lab up");
    let guard = KillGroupOnPanic(up.id().expect("up is running"));
    let lines = BufReader::new(up.stdout.take().unwrap()).lines();
    (up, lines, guard)
}

/// Reads lines into `out` until one satisfies `done`; panics with what was
/// read when the output ends or `WAIT` passes first.
pub(crate) async fn read_until(
    lines: &mut Lines<BufReader<ChildStdout>>,
    out: &mut Vec<String>,
    what: &str,
    done: impl Fn(&str) -> bool,
) {
    let found = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.expect("read stdout") {
            let hit = done(&line);
            out.push(line);
            if hit {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        matches!(found, Ok(true)),
        "{what}: not seen (output {}):\n{}",
        if found.is_err() { "stalled" } else { "ended" },
        out.join("\n")
    );
}

/// If the test fails midway, kills `up` and every service it started (its
/// process group): a failure must be reported, not hang on orphans that
/// keep the test's output open.
pub(crate) struct KillGroupOnPanic(pub(crate) u32);

impl Drop for KillGroupOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = child::send_to_group(self.0, Signal::Kill);
        }
    }
}

/// One printed trace: its id, its text as `render` made it, and where it
/// was saved.
#[derive(Debug)]
struct Printed {
    trace_id: String,
    text: String,
    path: String,
}

/// Every trace block in the output: a `trace <id> (…)` line and the lines
/// after it up to `saved as PATH`.
fn printed_traces(lines: &[String]) -> Vec<Printed> {
    let mut traces = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(rest) = lines[i].strip_prefix("trace ") else {
            i += 1;
            continue;
        };
        let trace_id = rest.split(' ').next().unwrap().to_owned();
        let mut text = String::new();
        while i < lines.len() && !lines[i].starts_with("saved as ") {
            text.push_str(&lines[i]);
            text.push('\n');
            i += 1;
        }
        let Some(path) = lines.get(i).and_then(|l| l.strip_prefix("saved as ")) else {
            break; // the block is not complete yet
        };
        traces.push(Printed {
            trace_id,
            text,
            path: path.to_owned(),
        });
        i += 1;
    }
    traces
}

fn stopped_pids(lines: &[String]) -> Vec<u32> {
    lines
        .iter()
        .filter_map(|l| {
            l.strip_prefix("stopped ")?
                .split("(pid ")
                .nth(1)?
                .strip_suffix(')')?
                .parse()
                .ok()
        })
        .collect()
}

fn request_ms(lines: &[String], mode: &str) -> f64 {
    let prefix = format!("{mode} request: ");
    let line = lines
        .iter()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line"));
    line[prefix.len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn up_prints_saves_and_follows_traces_until_sigint_then_leaves_no_process() {
    let dir = tempfile::tempdir().unwrap();
    let (mut up, mut lines, _guard) = spawn_up(dir.path(), &[]);
    let mut out = Vec::new();

    // The demo: both traces, then the switch to following new traces.
    read_until(&mut lines, &mut out, "the follow mode", |l| {
        l.starts_with("waiting for requests")
    })
    .await;
    let demo = printed_traces(&out);
    assert_eq!(demo.len(), 2, "two demo traces:\n{}", out.join("\n"));
    for trace in &demo {
        assert!(
            trace.text.contains("(7 spans, 3 services, "),
            "{}",
            trace.text
        );
        for service in ["profile-aggregator", "user-service", "order-service"] {
            assert!(
                trace.text.contains(&format!(" {service} ")),
                "{service} in:\n{}",
                trace.text
            );
        }
    }
    assert!(
        request_ms(&out, "sequential") > request_ms(&out, "concurrent"),
        "{}",
        out.join("\n")
    );
    assert!(demo[0].text.contains("where the time went: "));
    assert!(demo[1]
        .text
        .contains("waiting on order-service (db.query SELECT orders)"));

    // A request of our own is printed once its trace is complete.
    let aggregator = out
        .iter()
        .filter_map(|l| l.trim().strip_prefix("profile-aggregator"))
        .find(|rest| rest.trim_start().starts_with("http://"))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the aggregator's URL is printed")
        .to_owned();
    let body =
        crate::common::get_json(&format!("{aggregator}/user-profile/7?mode=concurrent")).await;
    let own_id = body["trace_id"].as_str().unwrap().to_owned();
    read_until(&mut lines, &mut out, "our request's trace", |l| {
        l.starts_with(&format!("trace {own_id} "))
    })
    .await;
    read_until(&mut lines, &mut out, "its file", |l| {
        l.starts_with("saved as ")
    })
    .await;

    // Ctrl-C: every child stopped, a clean exit.
    let pid = up.id().expect("up is running");
    child::send(pid, Signal::Interrupt).expect("SIGINT to up");
    let (rest, status) = crate::common::rest_of_output_and_exit(&mut lines, &mut up, WAIT).await;
    out.extend(rest);
    let all = out.join("\n");
    assert!(status.success(), "{status}:\n{all}");
    let pids = stopped_pids(&out);
    assert_eq!(pids.len(), 3, "three services stopped:\n{all}");
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "service process {pid} outlived `up`"
        );
    }
    assert!(
        all.contains(&format!("3 traces saved in {}", dir.path().display())),
        "{all}"
    );

    // Every printed trace was saved, and renders from its file exactly as
    // printed: the JSON round trip loses nothing the waterfall shows.
    let printed = printed_traces(&out);
    assert_eq!(printed.len(), 3, "{all}");
    assert_eq!(printed[2].trace_id, own_id);
    let mut files: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut expected: Vec<String> = printed
        .iter()
        .map(|p| format!("{}.json", p.trace_id))
        .collect();
    expected.sort();
    assert_eq!(files, expected);
    for trace in &printed {
        assert_eq!(
            Path::new(&trace.path),
            dir.path().join(format!("{}.json", trace.trace_id))
        );
        let again = std::process::Command::new(LAB)
            .args(["trace", "--file", &trace.path])
            .args(DISPLAY)
            .output()
            .unwrap();
        assert!(
            again.status.success(),
            "{}",
            String::from_utf8_lossy(&again.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&again.stdout), trace.text);
        assert_jaeger_shape(Path::new(&trace.path), &trace.trace_id);
    }
}

/// The upload format of Jaeger's UI: `{"data": [trace]}` with `traceID`,
/// spans with `spanID`, `operationName`, `CHILD_OF` references, `startTime`
/// in µs since the epoch and `duration` in µs, and `processes` whose
/// `serviceName`s are the three services.
fn assert_jaeger_shape(path: &Path, trace_id: &str) {
    let json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let data = json["data"].as_array().expect("data is an array");
    assert_eq!(data.len(), 1);
    let trace = &data[0];
    assert_eq!(trace["traceID"], trace_id);
    let processes = trace["processes"].as_object().expect("processes");
    let services: BTreeSet<&str> = processes
        .values()
        .map(|p| p["serviceName"].as_str().unwrap())
        .collect();
    assert_eq!(
        services,
        BTreeSet::from(["order-service", "profile-aggregator", "user-service"])
    );
    let spans = trace["spans"].as_array().expect("spans");
    assert_eq!(spans.len(), 7);
    let ids: HashMap<&str, &Value> = spans
        .iter()
        .map(|s| (s["spanID"].as_str().unwrap(), s))
        .collect();
    let mut roots = 0;
    for span in spans {
        assert_eq!(span["traceID"], trace_id);
        assert_eq!(span["spanID"].as_str().unwrap().len(), 16);
        assert!(span["operationName"]
            .as_str()
            .is_some_and(|n| !n.is_empty()));
        assert!(processes.contains_key(span["processID"].as_str().unwrap()));
        // µs since the epoch: 2020 < start < 2100.
        let start = span["startTime"].as_u64().unwrap();
        assert!(
            (1_577_836_800_000_000..4_102_444_800_000_000).contains(&start),
            "{start}"
        );
        let duration = span["duration"].as_u64().unwrap();
        assert!((1..10_000_000).contains(&duration), "{duration} µs");
        let references = span["references"].as_array().unwrap();
        match references.as_slice() {
            [] => roots += 1,
            [parent] => {
                assert_eq!(parent["refType"], "CHILD_OF");
                assert_eq!(parent["traceID"], trace_id);
                let parent = ids[parent["spanID"].as_str().unwrap()];
                let parent_start = parent["startTime"].as_u64().unwrap();
                assert!(start >= parent_start, "a child starts within its parent");
            }
            more => panic!("one parent at most: {more:?}"),
        }
    }
    assert_eq!(roots, 1);
}

#[tokio::test]
async fn a_full_trace_store_drops_the_oldest_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let output = up_command(dir.path(), &["--demo-only", "--max-traces", "1"])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Both demo traces are still printed and saved: only memory is bounded.
    assert_eq!(stdout.matches("\nsaved as ").count(), 2, "{stdout}");
    assert!(
        stdout.contains("the trace store is full: 1 trace dropped so far, the oldest first (it keeps 1; see --max-traces)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("1 trace dropped from memory (the oldest first; --max-traces 1)"),
        "{stdout}"
    );
}
