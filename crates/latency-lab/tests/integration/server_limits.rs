//! The services' server bounds, tried from outside on a real process as a
//! misbehaving client would: a stalled client (part of a request head, an
//! HTTP/2 preface and then silence) never holds up a SIGTERM, which exits 0
//! within the grace period and still flushes the finished requests' spans;
//! connections beyond the cap are refused at once; stalled and idle
//! connections are closed by the server.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use otlp_receiver::ReceiverConfig;
use service_kit::child::{ServiceChild, ServiceCommand};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{otel_env, traceresponse_ids, Options, LAB, WAIT};

/// Generous bound on what the server does "at once" (the 1 s).
const SOON: Duration = Duration::from_secs(1);

/// The HTTP/2 connection preface and an empty SETTINGS frame.
const HTTP2_PREFACE_AND_SETTINGS: &[u8] =
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// `latency-lab serve user-service` on a free port with `args`.
fn user_service(args: &[&str]) -> ServiceCommand {
    ServiceCommand::new("user-service", LAB)
        .args([
            "serve",
            "user-service",
            "--listen",
            "127.0.0.1:0",
            "--latency",
            "1ms",
        ])
        .args(args)
        .env("OTEL_SDK_DISABLED", "true")
        .env("RUST_LOG", "warn")
        .ready_within(WAIT)
}

async fn start(command: ServiceCommand) -> ServiceChild {
    command.start().await.unwrap_or_else(|e| panic!("{e}"))
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n")
}

/// One HTTP/1.1 exchange on a kept-alive connection: the response's head
/// and body (read by its content-length).
async fn exchange(stream: &mut TcpStream, request: &str) -> String {
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&response));
        response.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&response).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    let l = l.to_ascii_lowercase();
                    l.strip_prefix("content-length: ")?.trim().parse().ok()
                })
                .unwrap_or(0);
            if body.len() >= length {
                return text;
            }
        }
    }
}

/// Reads until the server closes the connection, at most `within`; how
/// long that took.
async fn closed_by_server(stream: &mut TcpStream, within: Duration) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    tokio::time::timeout(within, async {
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("not closed by the server within {within:?}"));
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_never_holds_up_sigterm_and_finished_spans_are_flushed() {
    let receiver = otlp_receiver::start(ReceiverConfig::default())
        .await
        .expect("start OTLP receiver");
    let grace = Duration::from_secs(2);
    let mut command = user_service(&[
        "--shutdown-grace",
        "2s",
        // Long, so that only the shutdown closes the stalled connections.
        "--header-read-timeout",
        "1m",
        "--idle-timeout",
        "1m",
    ])
    .env_remove("OTEL_SDK_DISABLED")
    .env("RUST_LOG", "info")
    .stderr(Stdio::piped());
    for (key, value) in otel_env(&receiver, &Options::default()) {
        command = command.env(key, value);
    }
    // No periodic export: the spans can only arrive through the final flush.
    command = command.env("OTEL_BSP_SCHEDULE_DELAY", "600000");
    let mut child = start(command).await;
    let mut stderr = child.take_stderr().unwrap();
    let logs = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let url = child.url();
    let addr: SocketAddr = child.addr();

    let client = reqwest::Client::new();
    let mut finished = Vec::new();
    for id in 1..=3 {
        let response = client
            .get(format!("{url}/users/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        finished.push(traceresponse_ids(&response).0);
    }
    let mut partial = TcpStream::connect(addr).await.unwrap();
    partial
        .write_all(b"GET /users/1 HTTP/1.1\r\nHo")
        .await
        .unwrap();
    let mut crlf = TcpStream::connect(addr).await.unwrap();
    crlf.write_all(b"\r\n").await.unwrap();
    let mut http2 = TcpStream::connect(addr).await.unwrap();
    http2.write_all(HTTP2_PREFACE_AND_SETTINGS).await.unwrap();
    // And a request that would outlast the grace period.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /users/4 HTTP/1.1\r\nHost: test\r\nbaggage: latency.user=20s\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = Instant::now();
    let stopped = child.stop(WAIT).await.unwrap();
    let took = started.elapsed();
    assert!(
        stopped.status.success() && !stopped.killed,
        "exit 0 on SIGTERM: {stopped:?}"
    );
    assert!(took < grace + SOON, "exited after {took:?}");
    assert!(
        took >= grace - Duration::from_millis(100),
        "the request in flight had its grace period: {took:?}"
    );
    for stream in [&mut partial, &mut crlf, &mut http2, &mut slow] {
        closed_by_server(stream, SOON).await;
    }
    for trace_id in &finished {
        assert!(
            !receiver.store().trace(trace_id).is_empty(),
            "the spans of finished request {trace_id} were flushed before the exit"
        );
    }
    let logs = logs.await.unwrap();
    assert!(
        logs.contains("closed 1 connections with 1 requests in flight"),
        "what was cut short is logged:\n{logs}"
    );
    assert!(
        logs.contains("closed 3 stalled connections"),
        "the stalled clients are counted:\n{logs}"
    );
    receiver.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_connection_cap_new_connections_are_refused_at_once_then_served_again() {
    let child = start(user_service(&["--max-connections", "3"])).await;
    let addr = child.addr();
    let mut held = Vec::new();
    for id in 1..=3 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let ok = exchange(&mut stream, &get(&format!("/users/{id}"))).await;
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        held.push(stream);
    }
    for _ in 0..5 {
        let started = Instant::now();
        let mut extra = TcpStream::connect(addr).await.unwrap();
        extra.write_all(get("/users/1").as_bytes()).await.unwrap();
        let mut response = String::new();
        tokio::time::timeout(SOON, extra.read_to_string(&mut response))
            .await
            .expect("refused and closed within a second, not left in the backlog")
            .unwrap();
        assert!(started.elapsed() < SOON);
        assert!(response.starts_with("HTTP/1.1 503"), "{response}");
        assert!(response.contains("connection: close"), "{response}");
        let body: serde_json::Value =
            serde_json::from_str(response.split_once("\r\n\r\n").unwrap().1).unwrap();
        assert_eq!(body["error"]["code"], "too_many_connections", "{body}");
    }
    drop(held);
    let resumed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(response) = reqwest::get(format!("{}/users/1", child.url())).await {
                if response.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        resumed.is_ok(),
        "the service answers once the connections closed"
    );
    let stopped = child.stop(WAIT).await.unwrap();
    assert!(stopped.status.success(), "{stopped:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_closes_stalled_heads_and_idle_keep_alive_connections() {
    let child = start(user_service(&[
        "--header-read-timeout",
        "300ms",
        "--idle-timeout",
        "1s",
    ]))
    .await;
    let addr = child.addr();
    let mut partial = TcpStream::connect(addr).await.unwrap();
    partial
        .write_all(b"GET /users/1 HTTP/1.1\r\nHost: te")
        .await
        .unwrap();
    let mut http2 = TcpStream::connect(addr).await.unwrap();
    http2.write_all(HTTP2_PREFACE_AND_SETTINGS).await.unwrap();
    let mut idle = TcpStream::connect(addr).await.unwrap();
    let ok = exchange(&mut idle, &get("/users/1")).await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");

    // Watched side by side, so each close is seen when it happens.
    let (head, preface, pause) = tokio::join!(
        closed_by_server(&mut partial, Duration::from_millis(300) + SOON),
        closed_by_server(&mut http2, Duration::from_millis(300) + SOON),
        closed_by_server(&mut idle, Duration::from_secs(1) + SOON),
    );
    // A keep-alive pause is not a stalled head: it lasts the idle timeout.
    assert!(
        pause > head && pause > preface,
        "idle {pause:?}, stalled head {head:?}, HTTP/2 preface {preface:?}"
    );
    let stopped = child.stop(WAIT).await.unwrap();
    assert!(stopped.status.success(), "{stopped:?}");
}
