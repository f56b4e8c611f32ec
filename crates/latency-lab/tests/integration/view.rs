//! `latency-lab view`: the receiver alone, for any OpenTelemetry app. Spans
//! arrive here as an SDK with the default 5 s batch delay sends them: one
//! service's batch at a time, seconds apart, callees before callers. None
//! is dropped: a trace prints once whole, and again when spans come late.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use service_kit::child::{self, Signal};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::common::{LAB, WAIT};
use crate::up_waterfalls::{read_until, KillGroupOnPanic, DISPLAY};

/// One span: `(span id, parent, name)`, all of `service`.
type S = (&'static str, Option<&'static str>, &'static str);

/// Posts `spans` of trace `trace_id`, recorded by `service`, as OTLP/JSON —
/// what an SDK's HTTP exporter sends with `OTEL_EXPORTER_OTLP_PROTOCOL=http/json`.
async fn export(http: &str, trace_id: &str, service: &str, spans: &[S]) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let spans: Vec<Value> = spans
        .iter()
        .enumerate()
        .map(|(i, (id, parent, name))| {
            json!({
                "traceId": trace_id,
                "spanId": format!("{id:0>16}"),
                "parentSpanId": parent.map(|p| format!("{p:0>16}")).unwrap_or_default(),
                "name": name,
                "kind": 2,
                "startTimeUnixNano": (now + i as u64 * 1_000_000).to_string(),
                "endTimeUnixNano": (now + 50_000_000 - i as u64 * 1_000_000).to_string(),
            })
        })
        .collect();
    let body = json!({ "resourceSpans": [{
        "resource": { "attributes": [
            { "key": "service.name", "value": { "stringValue": service } }
        ]},
        "scopeSpans": [{ "scope": { "name": "test" }, "spans": spans }]
    }]});
    let response = reqwest::Client::new()
        .post(format!("{http}/v1/traces"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// The spans saved in `dir` for `trace_id`.
fn saved_spans(dir: &Path, trace_id: &str) -> usize {
    let file = dir.join(format!("{trace_id}.json"));
    let json: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    json["data"][0]["spans"].as_array().unwrap().len()
}

/// A running `latency-lab view` on free ports, saving into `traces`, with
/// `timing` (`--trace-quiet`, `--trace-wait`): the child, its pid (killed
/// if the test panics), its stdout and the OTLP/HTTP endpoint it printed.
struct Viewer {
    child: tokio::process::Child,
    pid: u32,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    out: Vec<String>,
    http: String,
    _guard: KillGroupOnPanic,
}

impl Viewer {
    async fn start(traces: &Path, quiet: &str, wait: &str) -> Self {
        Self::start_with(traces, quiet, wait, &[]).await
    }

    async fn start_with(traces: &Path, quiet: &str, wait: &str, extra: &[&str]) -> Self {
        let mut child = Command::new(LAB)
            .arg("view")
            .args(DISPLAY)
            .args(["--otlp-grpc", "127.0.0.1:0", "--otlp-http", "127.0.0.1:0"])
            .args(["--trace-quiet", quiet, "--trace-wait", wait])
            .args(extra)
            .arg("--traces-dir")
            .arg(traces)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let pid = child.id().unwrap();
        let guard = KillGroupOnPanic(pid);
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut out = Vec::new();
        read_until(&mut lines, &mut out, "the OTLP/HTTP line", |l| {
            l.trim_start().starts_with("OTLP/HTTP")
        })
        .await;
        let http = out
            .last()
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_owned();
        Viewer {
            child,
            pid,
            lines,
            out,
            http,
            _guard: guard,
        }
    }

    /// Reads on until trace `id` has been saved (again).
    async fn until_saved(&mut self, what: &str, id: &str) {
        read_until(&mut self.lines, &mut self.out, what, |l| {
            l.starts_with("saved as ") && l.contains(id)
        })
        .await;
    }

    /// Ctrl-C, and everything printed up to the exit, which must be clean.
    async fn stop(mut self) -> Vec<String> {
        child::send(self.pid, Signal::Interrupt).expect("SIGINT to view");
        let (rest, status) =
            crate::common::rest_of_output_and_exit(&mut self.lines, &mut self.child, WAIT).await;
        assert!(status.success(), "{status}");
        self.out.extend(rest);
        std::mem::take(&mut self.out)
    }
}

#[tokio::test]
async fn view_prints_a_trace_once_whole_and_again_when_spans_come_late() {
    let traces = tempfile::tempdir().unwrap();
    let mut view = Viewer::start(traces.path(), "500ms", "8s").await;
    let http = view.http.clone();

    // A trace in three batches, 2 s apart (past the quiet period each
    // time): the order service's spans first, naming a client span that has
    // not come; then the app's client span, naming a root that has not come;
    // then the root.
    let whole = "0af7651916cd43dd8448eb211c80319c";
    export(
        &http,
        whole,
        "order-service",
        &[
            ("3", Some("2"), "GET /orders"),
            ("4", Some("3"), "db.query"),
        ],
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    export(&http, whole, "flask-app", &[("2", Some("1"), "GET")]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    export(&http, whole, "flask-app", &[("1", None, "GET /profile")]).await;
    view.until_saved("the whole trace", whole).await;
    assert_eq!(saved_spans(traces.path(), whole), 4);

    // A trace printed whole, then a span of it 1.5 s later (an exporter
    // that flushed one more span).
    let late = "4bf92f3577b34da6a3ce929d0e0e4736";
    export(
        &http,
        late,
        "flask-app",
        &[("a", None, "GET /profile"), ("b", Some("a"), "GET")],
    )
    .await;
    view.until_saved("the first print", late).await;
    assert_eq!(saved_spans(traces.path(), late), 2);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    export(&http, late, "flask-app", &[("c", Some("a"), "cache.get")]).await;
    view.until_saved("the amended print", late).await;
    assert_eq!(saved_spans(traces.path(), late), 3);

    let out = view.stop().await;
    let text = out.join("\n");
    let headers = |id: &str| {
        out.iter()
            .filter(|l| l.starts_with(&format!("trace {id} ")))
            .count()
    };
    assert_eq!(headers(whole), 1, "printed once, whole:\n{text}");
    assert_eq!(headers(late), 2, "printed, then amended:\n{text}");
    assert!(
        text.contains(&format!(
            "late spans: 1 more of trace {late} (3 in all now), printed again:"
        )),
        "{text}"
    );
    assert!(!text.contains("not whole yet"), "{text}");
    assert!(text.contains("2 traces saved in "), "{text}");
    assert!(
        text.contains("1 trace printed again because spans of them came late"),
        "{text}"
    );
}

/// A trace whose caller never exports (its root never comes) still prints,
/// once `--trace-wait` has passed, and says what it is missing.
#[tokio::test]
async fn view_prints_a_trace_without_its_root_after_the_longest_wait_and_says_so() {
    let traces = tempfile::tempdir().unwrap();
    let mut view = Viewer::start(traces.path(), "200ms", "2s").await;
    let http = view.http.clone();
    let orphan = "5bf92f3577b34da6a3ce929d0e0e4736";
    export(
        &http,
        orphan,
        "order-service",
        &[("3", Some("2"), "GET /orders")],
    )
    .await;
    view.until_saved("the cut-short print", orphan).await;
    let text = view.out.join("\n");
    assert!(
        text.contains("not whole yet: the root span and 1 parent span its spans name did not come within --trace-wait (if they come, the trace is printed again)"),
        "{text}"
    );
    let rest = view.stop().await;
    let rest = rest.join("\n");
    assert!(
        rest.contains("1 trace printed before a parent span came (--trace-wait)"),
        "{rest}"
    );
}

/// `view --forward UPSTREAM`, one trace of two spans sent to it and printed.
async fn forward_one_trace(traces: &Path, upstream: &str, id: &str) -> Viewer {
    let mut view = Viewer::start_with(traces, "200ms", "2s", &["--forward", upstream]).await;
    let http = view.http.clone();
    export(
        &http,
        id,
        "any-app",
        &[("a", None, "GET /"), ("b", Some("a"), "SELECT")],
    )
    .await;
    view.until_saved("the forwarded trace", id).await;
    view
}

/// `--forward`: what `view` receives goes on to a second receiver (here the
/// lab's own, in the test; a collector or Jaeger in use), and the exit says
/// how many exports were accepted there.
#[tokio::test]
async fn view_forwards_what_it_receives_to_an_upstream_receiver() {
    let upstream = otlp_receiver::start(otlp_receiver::ReceiverConfig::default())
        .await
        .unwrap();
    let traces = tempfile::tempdir().unwrap();
    let id = "6bf92f3577b34da6a3ce929d0e0e4736";
    let view = forward_one_trace(traces.path(), &upstream.http_endpoint(), id).await;
    let spans = upstream
        .store()
        .wait_for_trace(id, 2, WAIT)
        .await
        .expect("the upstream receiver got the trace");
    assert!(spans.iter().all(|s| s.service_name == "any-app"));
    let out = view.stop().await.join("\n");
    assert!(
        out.contains("everything received is forwarded to http://127.0.0.1:"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "forwarded to {}: 1 export accepted, 0 failed, 0 dropped (queue full)",
            upstream.http_endpoint()
        )),
        "{out}"
    );
}

/// In front of the full stack: `view --forward` to a real Jaeger's OTLP/HTTP
/// port, the trace readable from Jaeger's query API with its service and
/// parent links, as well as printed here.
#[tokio::test]
async fn view_forwards_to_a_real_jaeger() {
    let Some(bin) = jaeger_harness::jaeger_for_tests() else {
        return;
    };
    let jaeger = jaeger_harness::Jaeger::start(&bin).expect("start Jaeger");
    let traces = tempfile::tempdir().unwrap();
    let id = "9bf92f3577b34da6a3ce929d0e0e4736";
    let view = forward_one_trace(traces.path(), &jaeger.otlp_http_endpoint(), id).await;
    let trace = jaeger
        .query()
        .unwrap()
        .wait_for_trace(trace_view::TraceId::parse(id).unwrap(), 2, WAIT)
        .await
        .expect("Jaeger has the forwarded trace");
    assert!(trace.spans.iter().all(|s| s.service == "any-app"));
    let child = trace.spans.iter().find(|s| s.name == "SELECT").unwrap();
    assert_eq!(child.parent_id.as_deref(), Some("000000000000000a"));
    let out = view.stop().await.join("\n");
    assert!(out.contains("1 export accepted, 0 failed"), "{out}");
}

/// `view` on a terminal, driven as a person would: a pseudo-terminal, keys
/// in, the screen read back through a terminal emulator (vt100).
mod interactive {
    use std::io::{Read, Write};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use portable_pty::{native_pty_system, CommandBuilder, PtySize};

    use super::export;
    use crate::common::{LAB, WAIT};

    const ROWS: u16 = 40;
    const COLS: u16 = 160;

    struct Screen {
        parser: Arc<Mutex<vt100::Parser>>,
        keys: Box<dyn Write + Send>,
        child: Box<dyn portable_pty::Child + Send + Sync>,
    }

    impl Screen {
        fn start(dir: &std::path::Path) -> Self {
            let pair = native_pty_system()
                .openpty(PtySize {
                    rows: ROWS,
                    cols: COLS,
                    pixel_width: 0,
                    pixel_height: 0,
                })
                .unwrap();
            let mut cmd = CommandBuilder::new(LAB);
            cmd.args([
                "view",
                "--otlp-grpc",
                "127.0.0.1:0",
                "--otlp-http",
                "127.0.0.1:0",
                "--trace-quiet",
                "200ms",
                "--jaeger-url",
                "http://jaeger.example:16686",
                "--traces-dir",
            ]);
            cmd.arg(dir.join("traces"));
            cmd.cwd(dir);
            cmd.env("TERM", "xterm-256color");
            // No desktop opener: `o` then names the URL.
            cmd.env("PATH", "/nonexistent");
            let child = pair.slave.spawn_command(cmd).unwrap();
            drop(pair.slave);
            let mut reader = pair.master.try_clone_reader().unwrap();
            let keys = pair.master.take_writer().unwrap();
            let parser = Arc::new(Mutex::new(vt100::Parser::new(
                std::num::NonZeroU16::new(ROWS).unwrap(),
                std::num::NonZeroU16::new(COLS).unwrap(),
                0,
            )));
            let feed = parser.clone();
            std::thread::spawn(move || {
                // The master must outlive the reads.
                let _master = pair.master;
                let mut buf = [0u8; 8192];
                while let Ok(n) = reader.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    feed.lock().unwrap().process(&buf[..n]);
                }
            });
            Screen {
                parser,
                keys,
                child,
            }
        }

        fn contents(&self) -> String {
            self.parser.lock().unwrap().screen().contents()
        }

        /// Waits until the screen shows `what`; the screen when it does.
        async fn until(&self, what: &str) -> String {
            let deadline = Instant::now() + WAIT;
            loop {
                let screen = self.contents();
                if screen.contains(what) {
                    return screen;
                }
                assert!(
                    Instant::now() < deadline,
                    "{what:?} never showed; the screen:\n{screen}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }

        fn press(&mut self, keys: &str) {
            self.keys.write_all(keys.as_bytes()).unwrap();
            self.keys.flush().unwrap();
        }
    }

    #[tokio::test]
    async fn the_list_opens_a_trace_with_its_critical_path_and_a_spans_attributes() {
        let dir = tempfile::tempdir().unwrap();
        let mut screen = Screen::start(dir.path());
        let banner = screen.until("(OTEL_EXPORTER_OTLP_ENDPOINT)").await;
        let http = banner
            .split("HTTP ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap()
            .to_owned();
        let fast = "7bf92f3577b34da6a3ce929d0e0e4736";
        let slow = "8bf92f3577b34da6a3ce929d0e0e4736";
        export(
            &http,
            fast,
            "cart-service",
            &[("a", None, "GET /cart"), ("b", Some("a"), "SELECT cart")],
        )
        .await;
        export(
            &http,
            slow,
            "checkout-service",
            &[
                ("c", None, "POST /checkout"),
                ("d", Some("c"), "charge card"),
                ("e", Some("c"), "send mail"),
            ],
        )
        .await;
        let list = screen.until("checkout-service POST /checkout").await;
        assert!(list.contains("cart-service GET /cart"), "{list}");
        assert!(list.contains("2 of 2 traces · newest first"), "{list}");

        // Only one service: the other trace leaves the list.
        screen.press("f");
        let filtered = screen.until("service: cart-service").await;
        assert!(filtered.contains("1 of 2 traces"), "{filtered}");
        assert!(!filtered.contains("POST /checkout"), "{filtered}");
        screen.press("f");
        screen.until("service: checkout-service").await;
        screen.press("f");
        screen.until("service: any").await;

        // Enter opens the newest: its waterfall and critical path.
        screen.press("\r");
        let trace = screen.until(&format!("trace {slow} (3 spans")).await;
        assert!(trace.contains("critical path"), "{trace}");
        assert!(
            trace.contains("checkout-service POST /checkout ·"),
            "{trace}"
        );
        // Down to the next span: its details below.
        screen.press("\x1b[B");
        let span = screen.until("checkout-service charge card ·").await;
        assert!(span.contains("starts at +"), "{span}");
        // `w` saves it here; `o` names its page in Jaeger.
        screen.press("w");
        screen.until(&format!("saved as ./{slow}.json")).await;
        assert!(dir.path().join(format!("{slow}.json")).is_file());
        screen.press("o");
        screen
            .until(&format!("http://jaeger.example:16686/trace/{slow}"))
            .await;
        // Back, then quit: the terminal is given back and the exit is clean.
        screen.press("b");
        screen.until("2 of 2 traces").await;
        screen.press("q");
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = screen.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "view did not exit on q");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(status.success(), "{status:?}");
        assert!(dir.path().join(format!("traces/{fast}.json")).is_file());
    }
}

/// A `--forward` that cannot be used stops `view` and `up` at once, in one
/// line naming the flag; so does `--forward` with `up --otlp-endpoint`
/// (no embedded receiver to forward from).
#[test]
fn a_forward_that_cannot_work_is_one_line_naming_it() {
    for (args, says) in [
        (
            vec!["view", "--plain", "--forward", "https://collector:4318"],
            "error: --forward: cannot forward to \"https://collector:4318\": give an OTLP/HTTP base URL such as http://localhost:4318 (plain http: no TLS is built in)",
        ),
        (
            vec!["up", "--forward", "http://localhost:4318", "--otlp-endpoint", "http://localhost:4317"],
            "error: --forward sends on what the embedded receiver gets, and --otlp-endpoint http://localhost:4317 replaces that receiver: give one of them",
        ),
    ] {
        let output = std::process::Command::new(LAB)
            .args(&args)
            .env("LATENCY_LAB_OTLP_GRPC", "127.0.0.1:0")
            .env("LATENCY_LAB_OTLP_HTTP", "127.0.0.1:0")
            .env("LATENCY_LAB_TRACES_DIR", std::env::temp_dir())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.trim_end(), says, "{args:?}");
    }
}
