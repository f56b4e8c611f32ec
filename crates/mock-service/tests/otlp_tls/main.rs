//! OTLP export over TLS from a real service binary (the user service) to a
//! TLS listener in front of the project's OTLP receiver, with a CA and a
//! server certificate made at test time:
//!
//! - trusted (the CA named by `OTEL_EXPORTER_OTLP_CERTIFICATE`, or found in
//!   the system store through `SSL_CERT_FILE`), spans AND metrics arrive
//!   over gRPC and over HTTP/protobuf, and every request the listener saw
//!   carried `OTEL_EXPORTER_OTLP_HEADERS`' token;
//! - untrusted, nothing arrives, the log says why, the service answers;
//! - a certificate file that is not one stops the start naming the variable
//!   (and with an `http://` endpoint the variable does not apply).

mod front;
mod pki;

use std::process::Stdio;
use std::time::Duration;

use hyper::Version;
use mock_service::USER_SERVICE;
use otlp_receiver::{ReceiverConfig, RunningReceiver};
use service_kit::child::{ServiceChild, ServiceCommand};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use front::TlsFront;
use pki::{path, Pki};

const EXE: &str = env!("CARGO_BIN_EXE_user-service");

/// Generous: two shared cores, other builds running.
const WAIT: Duration = Duration::from_secs(30);

const TOKEN: &str = "Bearer t0ken";

const TRACES_GRPC: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const METRICS_GRPC: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Grpc,
    HttpProtobuf,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::HttpProtobuf => "http/protobuf",
        }
    }

    /// The paths of the span and the metric exports.
    fn paths(self) -> [&'static str; 2] {
        match self {
            Self::Grpc => [TRACES_GRPC, METRICS_GRPC],
            Self::HttpProtobuf => ["/v1/traces", "/v1/metrics"],
        }
    }

    fn version(self) -> Version {
        match self {
            Self::Grpc => Version::HTTP_2,
            Self::HttpProtobuf => Version::HTTP_11,
        }
    }
}

/// A receiver with the TLS listener in front, asking for a client
/// certificate when `mutual`.
async fn gateway(pki: &Pki, mutual: bool) -> (RunningReceiver, TlsFront) {
    let receiver = otlp_receiver::start(ReceiverConfig::default())
        .await
        .expect("receiver starts");
    let server = if mutual {
        pki.mutual_server.clone()
    } else {
        pki.server.clone()
    };
    let front = TlsFront::start(server, receiver.grpc_addr(), receiver.http_addr()).await;
    (receiver, front)
}

/// The user service's command, with no `OTEL_*` or trust-store variable
/// from the shell that runs the test.
fn command(env: &[(&str, String)]) -> ServiceCommand {
    let mut command = ServiceCommand::new(USER_SERVICE.name.service, EXE)
        .args(["--listen", "127.0.0.1:0", "--latency", "1ms"])
        .ready_within(WAIT)
        .stderr(Stdio::piped());
    for (key, _) in std::env::vars() {
        if key.starts_with("OTEL_") || key.starts_with("SSL_CERT_") {
            command = command.env_remove(key);
        }
    }
    for (key, value) in env {
        command = command.env(key, value);
    }
    command
}

/// The export variables for `front`, plus `more`.
fn export_env(
    protocol: Protocol,
    front: &TlsFront,
    more: &[(&'static str, String)],
) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.name().to_owned()),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("https://127.0.0.1:{}", front.addr.port()),
        ),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "authorization=Bearer%20t0ken".to_owned(),
        ),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
        ("OTEL_METRIC_EXPORT_INTERVAL", "300".to_owned()),
        ("RUST_LOG", "info".to_owned()),
    ];
    env.extend(more.iter().cloned());
    env
}

/// Starts the service; its stderr is collected in the background.
async fn start(env: &[(&str, String)]) -> (ServiceChild, tokio::task::JoinHandle<String>) {
    let mut child = command(env).start().await.unwrap_or_else(|e| panic!("{e}"));
    let mut stderr = child.take_stderr().expect("stderr is piped");
    let log = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    (child, log)
}

/// One request to the service's route; its status line.
async fn get_user(child: &ServiceChild) -> String {
    let addr = child.addr();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!(
                "GET {} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n",
                USER_SERVICE.path("7")
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response.lines().next().unwrap_or_default().to_owned()
}

/// Stops the service cleanly (flushing); its log.
async fn stop(child: ServiceChild, log: tokio::task::JoinHandle<String>) -> String {
    let stopped = child.stop(WAIT).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(!stopped.killed, "the service exits on SIGTERM");
    log.await.unwrap()
}

/// A request, then its spans and the HTTP server metric at the receiver,
/// every export through the TLS listener with the token.
async fn exports_over_tls(protocol: Protocol, trust: Trust, mutual: bool) {
    let pki = Pki::new();
    let (receiver, front) = gateway(&pki, mutual).await;
    let mut more = vec![(trust.var, path(&pki.ca))];
    if mutual {
        more.push((
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
            path(&pki.client_certificate),
        ));
        more.push(("OTEL_EXPORTER_OTLP_CLIENT_KEY", path(&pki.client_key)));
    }
    let env = export_env(protocol, &front, &more);
    let (child, log) = start(&env).await;
    assert_eq!(get_user(&child).await, "HTTP/1.1 200 OK");

    let spans = receiver
        .store()
        .wait_for(WAIT, |spans| {
            spans
                .iter()
                .any(|s| s.service_name == USER_SERVICE.name.service)
        })
        .await
        .unwrap_or_else(|e| panic!("no span arrived over {protocol:?} TLS: {e}"));
    assert!(
        spans.iter().any(|s| s.name.contains("/users/")),
        "the SERVER span"
    );
    receiver
        .metrics()
        .wait_for_histograms("http.server.request.duration", WAIT, |points| {
            points.iter().any(|p| p.count >= 1)
        })
        .await
        .unwrap_or_else(|e| panic!("no metric arrived over {protocol:?} TLS: {e}"));
    let log = stop(child, log).await;

    let seen = front.seen();
    for path in protocol.paths() {
        assert!(
            seen.iter().any(|s| s.path == path),
            "{path} went through the TLS listener: {seen:?}"
        );
    }
    for request in &seen {
        assert_eq!(request.authorization.as_deref(), Some(TOKEN), "{request:?}");
        assert_eq!(request.version, protocol.version(), "{request:?}");
        assert_eq!(request.client_certificate, mutual, "{request:?}");
    }
    assert!(
        front.failed_handshakes().is_empty(),
        "{:?}",
        front.failed_handshakes()
    );
    let mut says = format!("tls={}", trust.logged);
    if mutual {
        says.push_str(", client certificate of OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE");
    }
    assert!(
        log.contains("https://127.0.0.1") && log.matches(&says).count() == 2,
        "the start-up lines of both signals name the endpoint and say {says:?}: {log}"
    );
}

/// Where the test CA is given, and what the start-up log then says.
struct Trust {
    var: &'static str,
    logged: &'static str,
}

const CA_VARIABLE: Trust = Trust {
    var: "OTEL_EXPORTER_OTLP_CERTIFICATE",
    logged: "CA of OTEL_EXPORTER_OTLP_CERTIFICATE",
};

const SYSTEM_STORE: Trust = Trust {
    var: "SSL_CERT_FILE",
    logged: "the system's CA store",
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_over_tls_with_the_ca_variable_delivers_spans_and_metrics_with_the_token() {
    exports_over_tls(Protocol::Grpc, CA_VARIABLE, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_over_tls_with_the_ca_variable_delivers_spans_and_metrics_with_the_token() {
    exports_over_tls(Protocol::HttpProtobuf, CA_VARIABLE, false).await;
}

/// Without the variable the system's store is used: here one holding the
/// test CA (`SSL_CERT_FILE`, read by rustls-native-certs for both stacks).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_protocols_trust_the_system_store_when_no_ca_is_named() {
    tokio::join!(
        exports_over_tls(Protocol::Grpc, SYSTEM_STORE, false),
        exports_over_tls(Protocol::HttpProtobuf, SYSTEM_STORE, false),
    );
}

/// Mutual TLS: the client certificate and key variables make the service
/// present its certificate to a server that asks for one; without them
/// that server refuses the handshake and nothing arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_presents_the_client_certificate() {
    tokio::join!(
        exports_over_tls(Protocol::Grpc, CA_VARIABLE, true),
        exports_over_tls(Protocol::HttpProtobuf, CA_VARIABLE, true),
        refused_without_client_certificate(),
    );
}

async fn refused_without_client_certificate() {
    let pki = Pki::new();
    let (receiver, front) = gateway(&pki, true).await;
    let env = export_env(
        Protocol::Grpc,
        &front,
        &[("OTEL_EXPORTER_OTLP_CERTIFICATE", path(&pki.ca))],
    );
    let (child, log) = start(&env).await;
    assert_eq!(get_user(&child).await, "HTTP/1.1 200 OK");
    let deadline = tokio::time::Instant::now() + WAIT;
    while front.failed_handshakes().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refused = front.failed_handshakes();
    assert!(
        refused.iter().any(|e| e.contains("certificate")),
        "the server refused a client without certificate: {refused:?}"
    );
    stop(child, log).await;
    assert!(front.seen().is_empty(), "{:?}", front.seen());
    assert!(receiver.store().spans().is_empty());
}

/// A server whose CA is not trusted (the store holds an unrelated CA):
/// nothing arrives, the handshakes fail, the log says why, the service
/// still answers.
async fn untrusted(protocol: Protocol) {
    let pki = Pki::new();
    let (receiver, front) = gateway(&pki, false).await;
    let env = export_env(protocol, &front, &[("SSL_CERT_FILE", path(&pki.other_ca))]);
    let (child, log) = start(&env).await;
    for _ in 0..3 {
        assert_eq!(
            get_user(&child).await,
            "HTTP/1.1 200 OK",
            "the service answers"
        );
    }
    // Export attempts (spans every 100 ms with backoff, metrics every
    // 300 ms) meet the listener and fail their handshakes.
    let deadline = tokio::time::Instant::now() + WAIT;
    while front.failed_handshakes().len() < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        front.failed_handshakes().len() >= 2,
        "the service tried to export: {:?}",
        front.failed_handshakes()
    );
    assert_eq!(get_user(&child).await, "HTTP/1.1 200 OK", "still answers");
    // A few metric intervals (300 ms) with failed exports before the stop.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let log = stop(child, log).await;
    assert!(
        front.seen().is_empty(),
        "no request got through: {:?}",
        front.seen()
    );
    assert!(receiver.store().spans().is_empty(), "no span arrived");
    assert!(receiver.metrics().is_empty(), "no metric arrived");
    let line = |starts: &str| {
        log.lines()
            .find(|line| line.contains(starts))
            .unwrap_or_else(|| panic!("a line saying {starts:?}: {log}"))
            .to_owned()
    };
    let spans = line("span export failing");
    assert!(
        spans.contains("UnknownIssuer") && spans.contains("OTEL_EXPORTER_OTLP_CERTIFICATE"),
        "the log says why spans do not leave, and what to set: {spans}"
    );
    let metrics = line("metric export failing");
    let reason = match protocol {
        // The SDK's gRPC error carries the cause.
        Protocol::Grpc => metrics,
        // Its HTTP error does not ("network error"): the client says it.
        Protocol::HttpProtobuf => line("OTLP metrics export over HTTPS failed"),
    };
    assert!(
        reason.contains("UnknownIssuer"),
        "and why metrics do not: {reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_server_gets_nothing_and_the_log_says_why() {
    tokio::join!(untrusted(Protocol::Grpc), untrusted(Protocol::HttpProtobuf));
}

/// Runs the binary to its end (it must not start); exit status and stderr.
async fn refused_start(env: &[(&str, String)]) -> (std::process::ExitStatus, String) {
    let mut command = tokio::process::Command::new(EXE);
    command
        .args(["--listen", "127.0.0.1:0", "--latency", "1ms"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (key, _) in std::env::vars() {
        if key.starts_with("OTEL_") || key.starts_with("SSL_CERT_") {
            command.env_remove(key);
        }
    }
    for (key, value) in env {
        command.env(key, value);
    }
    let output = tokio::time::timeout(WAIT, command.output())
        .await
        .expect("a refused start ends at once")
        .unwrap();
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_certificate_file_stops_the_start_naming_the_variable() {
    let pki = Pki::new();
    for (var, file, says) in [
        (
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            path(&pki.not_pem),
            "no PEM CERTIFICATE",
        ),
        (
            "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
            "/nonexistent/ca.pem".to_owned(),
            "cannot be read",
        ),
        (
            "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE",
            path(&pki.not_pem),
            "no PEM CERTIFICATE",
        ),
    ] {
        let (status, stderr) = refused_start(&[
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "https://127.0.0.1:4317".to_owned(),
            ),
            (var, file),
        ])
        .await;
        assert!(!status.success(), "{var}: {status:?} {stderr}");
        assert!(
            stderr.contains(var) && stderr.contains(says),
            "{var}: the error names the variable and says {says:?}: {stderr}"
        );
    }

    // With http:// the certificate variables do not apply: the start goes on.
    let child = command(&[
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://127.0.0.1:4317".to_owned(),
        ),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", path(&pki.not_pem)),
    ])
    .stderr(Stdio::null())
    .start()
    .await
    .unwrap_or_else(|e| panic!("an http:// endpoint ignores the certificate variable: {e}"));
    child.stop(WAIT).await.unwrap();
}
