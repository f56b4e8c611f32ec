//! Test harness: the real service binaries as child processes, exporting to
//! an in-process OTLP receiver.
//!
//! Each service runs in its own process with its own tracer provider, so the
//! spans really carry that service's `service.name` — exactly as in
//! production, and unlike three services squeezed into one process behind
//! one global `tracing` subscriber.

#![allow(dead_code)] // not every helper is used by every scenario

pub mod fault_stub;
pub mod stub;

use std::collections::HashMap;
use std::time::Duration;

use otlp_receiver::{CollectedSpan, ReceiverConfig, RunningReceiver, SpanKind};
use service_kit::child::{ServiceChild, ServiceCommand};

pub const LAB: &str = env!("CARGO_BIN_EXE_latency-lab");

/// Generous: the CI machine is shared and has two cores.
pub const WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Grpc,
    HttpProtobuf,
}

/// How to start the suite.
#[derive(Debug, Clone)]
pub struct Options {
    pub protocol: Protocol,
    pub user_latency: &'static str,
    pub order_latency: &'static str,
    pub user_timeout: &'static str,
    pub order_timeout: &'static str,
    /// `OTEL_BSP_SCHEDULE_DELAY` in ms for every service.
    pub schedule_delay_ms: u64,
    /// Replace the real user/order service with this base URL (a stub or a
    /// dead port); the real one is then not started.
    pub user_url: Option<String>,
    pub order_url: Option<String>,
    /// Export to this OTLP endpoint (a collector) instead of the in-process
    /// receiver; `protocol` still picks gRPC or HTTP/protobuf.
    pub otlp_endpoint: Option<String>,
    /// Extra environment for one service, by name.
    pub extra_env: Vec<(&'static str, &'static str, &'static str)>,
    /// Extra flags for the aggregator, after the fixed ones (e.g. `--retry`).
    pub aggregator_args: Vec<String>,
    /// Traces the in-process receiver keeps (a load test needs more).
    pub receiver_max_traces: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            protocol: Protocol::Grpc,
            user_latency: "100ms",
            order_latency: "200ms",
            user_timeout: "10s",
            order_timeout: "10s",
            schedule_delay_ms: 100,
            user_url: None,
            order_url: None,
            extra_env: Vec::new(),
            otlp_endpoint: None,
            aggregator_args: Vec::new(),
            receiver_max_traces: ReceiverConfig::default().max_traces,
        }
    }
}

/// A service process; killed when dropped, so a failing test leaves no orphan.
pub struct ServiceProcess {
    pub name: &'static str,
    pub url: String,
    child: ServiceChild,
}

impl ServiceProcess {
    /// Starts `latency-lab serve <name> --listen 127.0.0.1:0 <args>` and waits
    /// for the line announcing the bound address.
    pub async fn start(name: &'static str, args: &[&str], env: &[(&str, String)]) -> Self {
        let mut command = ServiceCommand::new(name, LAB)
            .args(["serve", name, "--listen", "127.0.0.1:0"])
            .args(args)
            .ready_within(WAIT);
        // The tests set telemetry's variables themselves: none leaks in
        // from the shell that runs them.
        for (key, _) in std::env::vars() {
            if key.starts_with("OTEL_") || key.starts_with("LATENCY_LAB_SPAN_") {
                command = command.env_remove(key);
            }
        }
        command = command.env("RUST_LOG", "warn");
        for (k, v) in env {
            command = command.env(k, v);
        }
        let child = command.start().await.unwrap_or_else(|e| panic!("{e}"));
        Self {
            name,
            url: child.url(),
            child,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// SIGTERM, then wait for a clean exit.
    pub async fn terminate(self) -> std::process::ExitStatus {
        let stopped = self
            .child
            .stop(WAIT)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!stopped.killed, "{} did not exit after SIGTERM", self.name);
        stopped.status
    }
}

pub struct Suite {
    pub receiver: RunningReceiver,
    pub aggregator: ServiceProcess,
    pub users: Option<ServiceProcess>,
    pub orders: Option<ServiceProcess>,
    pub client: reqwest::Client,
}

impl Suite {
    pub async fn start(options: Options) -> Self {
        let receiver = otlp_receiver::start(ReceiverConfig {
            max_traces: options.receiver_max_traces,
            ..ReceiverConfig::default()
        })
        .await
        .expect("start OTLP receiver");
        let base_env = otel_env(&receiver, &options);
        let env_for = |service: &str| {
            let mut env = base_env.clone();
            for (name, key, value) in &options.extra_env {
                if *name == service {
                    env.push((*key, (*value).to_owned()));
                }
            }
            env
        };

        let users = match &options.user_url {
            Some(_) => None,
            None => Some(
                ServiceProcess::start(
                    "user-service",
                    &["--latency", options.user_latency],
                    &env_for("user-service"),
                )
                .await,
            ),
        };
        let orders = match &options.order_url {
            Some(_) => None,
            None => Some(
                ServiceProcess::start(
                    "order-service",
                    &["--latency", options.order_latency],
                    &env_for("order-service"),
                )
                .await,
            ),
        };
        let user_url = options
            .user_url
            .clone()
            .unwrap_or_else(|| users.as_ref().unwrap().url.clone());
        let order_url = options
            .order_url
            .clone()
            .unwrap_or_else(|| orders.as_ref().unwrap().url.clone());
        let mut aggregator_args = vec![
            "--user-service-url",
            &user_url,
            "--order-service-url",
            &order_url,
            "--user-timeout",
            options.user_timeout,
            "--order-timeout",
            options.order_timeout,
        ];
        aggregator_args.extend(options.aggregator_args.iter().map(String::as_str));
        let aggregator = ServiceProcess::start(
            "profile-aggregator",
            &aggregator_args,
            &env_for("profile-aggregator"),
        )
        .await;
        Self {
            receiver,
            aggregator,
            users,
            orders,
            client: reqwest::Client::new(),
        }
    }

    /// `GET /user-profile/{id}?mode=…` with optional extra headers.
    pub async fn profile(
        &self,
        id: &str,
        mode: &str,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self.client.get(format!(
            "{}/user-profile/{id}?mode={mode}",
            self.aggregator.url
        ));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        request.send().await.expect("aggregator answers")
    }

    /// Waits until the trace has at least `n` spans.
    pub async fn trace(&self, trace_id: &str, n: usize) -> Vec<CollectedSpan> {
        self.receiver
            .store()
            .wait_for_trace(trace_id, n, WAIT)
            .await
            .unwrap_or_else(|e| panic!("trace {trace_id}: {e}"))
    }
}

impl Suite {
    /// SIGTERMs every service (each flushes its spans) and returns the
    /// receiver, which now holds everything that was ever exported.
    pub async fn stop_services(self) -> RunningReceiver {
        for process in [Some(self.aggregator), self.users, self.orders]
            .into_iter()
            .flatten()
        {
            let name = process.name;
            let status = process.terminate().await;
            assert!(
                status.success(),
                "{name} exits cleanly on SIGTERM: {status}"
            );
        }
        self.receiver
    }

    /// Waits until the spans of the trace satisfy `pred`.
    pub async fn trace_where(
        &self,
        trace_id: &str,
        pred: impl Fn(&[CollectedSpan]) -> bool,
    ) -> Vec<CollectedSpan> {
        let id = trace_id.to_lowercase();
        let spans = self
            .receiver
            .store()
            .wait_for(WAIT, |all| {
                let trace: Vec<CollectedSpan> =
                    all.iter().filter(|s| s.trace_id == id).cloned().collect();
                pred(&trace)
            })
            .await
            .unwrap_or_else(|e| panic!("trace {trace_id}: {e}"));
        spans.into_iter().filter(|s| s.trace_id == id).collect()
    }
}

pub fn otel_env(receiver: &RunningReceiver, options: &Options) -> Vec<(&'static str, String)> {
    let (protocol, endpoint) = match options.protocol {
        Protocol::Grpc => ("grpc", receiver.grpc_endpoint()),
        Protocol::HttpProtobuf => ("http/protobuf", receiver.http_endpoint()),
    };
    let endpoint = options.otlp_endpoint.clone().unwrap_or(endpoint);
    vec![
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.to_owned()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        (
            "OTEL_BSP_SCHEDULE_DELAY",
            options.schedule_delay_ms.to_string(),
        ),
    ]
}

/// The trace id of a response, from its `traceresponse` header.
pub fn traceresponse_ids(response: &reqwest::Response) -> (String, String) {
    let value = response
        .headers()
        .get("traceresponse")
        .expect("traceresponse header")
        .to_str()
        .unwrap()
        .to_owned();
    let parts: Vec<&str> = value.split('-').collect();
    assert_eq!(parts.len(), 4, "traceresponse {value:?}");
    (parts[1].to_owned(), parts[2].to_owned())
}

/// Finds the one span matching service, kind and name.
pub fn one<'a>(
    spans: &'a [CollectedSpan],
    service: &str,
    kind: SpanKind,
    name: &str,
) -> &'a CollectedSpan {
    let found: Vec<&CollectedSpan> = spans
        .iter()
        .filter(|s| s.service_name == service && s.kind == kind && s.name == name)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one {kind:?} span {name:?} of {service}, got {}: {:#?}",
        found.len(),
        summary(spans)
    );
    found[0]
}

/// `service kind name parent` lines, for assertion messages.
pub fn summary(spans: &[CollectedSpan]) -> Vec<String> {
    spans
        .iter()
        .map(|s| {
            format!(
                "{} {:?} {:?} trace={} span={} parent={:?}",
                s.service_name, s.kind, s.name, s.trace_id, s.span_id, s.parent_span_id
            )
        })
        .collect()
}

pub fn by_id(spans: &[CollectedSpan]) -> HashMap<&str, &CollectedSpan> {
    spans.iter().map(|s| (s.span_id.as_str(), s)).collect()
}

/// A loopback URL nobody listens on: connection refused.
pub fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

/// Serves `app` on a free loopback port for the rest of the test; its URL.
pub async fn serve_on_loopback(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// `(status, error.code, error.message)` of a JSON error answer.
pub async fn error_body(response: reqwest::Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap();
    let field = |k: &str| body["error"][k].as_str().unwrap_or_default().to_owned();
    (status, field("code"), field("message"))
}

/// `cargo metadata --format-version 1 <args>` run at the workspace root, as
/// JSON: the manifests' and the lock's own answer, for tests that hold the
/// docs to them.
pub fn cargo_metadata(args: &[&str]) -> serde_json::Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = std::process::Command::new(cargo)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .args(["metadata", "--format-version", "1"])
        .args(args)
        .output()
        .expect("run cargo metadata");
    assert!(
        output.status.success(),
        "cargo metadata {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON")
}

/// A lesson's one ```` ```sh ```` `latency-lab up` command (besides its
/// scenario), its words as the docs test runs them, so a test of the
/// lesson's claims runs exactly what it says.
pub fn lesson_command(file: &str) -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/lessons")
        .join(file);
    let text = std::fs::read_to_string(path).unwrap();
    let commands: Vec<String> = crate::docs::sh_commands(&text)
        .into_iter()
        .filter(|c| c.starts_with("latency-lab up "))
        .collect();
    assert_eq!(commands.len(), 1, "{file} has one up command: {commands:?}");
    commands[0]
        .split_whitespace()
        .map(|w| w.trim_matches('\'').to_owned())
        .collect()
}

/// A duration as the reports print it: `158.1 ms`, `1.124 s`, `766 µs`.
pub fn printed_duration(number: &str, unit: &str) -> Duration {
    let value: f64 = number.parse().unwrap_or_else(|_| panic!("{number} {unit}"));
    Duration::from_secs_f64(match unit {
        "s" => value,
        "ms" => value / 1e3,
        "µs" => value / 1e6,
        _ => panic!("unit {unit}"),
    })
}

/// What a lesson's `latency-lab up …` command printed, and the folder its
/// traces were saved in.
pub struct LessonRun {
    pub stdout: String,
    pub traces: tempfile::TempDir,
}

/// Runs a lesson's `latency-lab up …` words on free ports, saving traces in
/// a temporary folder; it must succeed.
pub async fn run_lesson_up(words: &[String]) -> LessonRun {
    assert_eq!(words[..2], ["latency-lab", "up"]);
    let traces = tempfile::tempdir().unwrap();
    let args: Vec<&str> = words[2..].iter().map(String::as_str).collect();
    let output = crate::up_waterfalls::up_command(traces.path(), &args)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    LessonRun { stdout, traces }
}

/// After `up` was asked to stop: the rest of its stdout, then its exit
/// status, each awaited for at most `wait` (a hang fails the test).
pub async fn rest_of_output_and_exit(
    lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    up: &mut tokio::process::Child,
    wait: Duration,
) -> (Vec<String>, std::process::ExitStatus) {
    let rest = tokio::time::timeout(wait, async {
        let mut rest = Vec::new();
        while let Some(line) = lines.next_line().await.unwrap() {
            rest.push(line);
        }
        rest
    })
    .await
    .expect("up's output ends once it is asked to stop");
    let status = tokio::time::timeout(wait, up.wait())
        .await
        .expect("up exits once it is asked to stop")
        .unwrap();
    (rest, status)
}

/// GETs `url` (no proxy) and reads its JSON answer.
pub async fn get_json(url: &str) -> serde_json::Value {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: not JSON: {e}"))
}
