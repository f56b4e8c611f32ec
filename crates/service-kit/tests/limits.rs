//! The server's bounds in process, with small limits: stalled and idle
//! connections closed, a connection cap answered 503 at once, the request
//! timeout and the size limits answered with the JSON error body, and a
//! shutdown that ends within the grace period whatever clients do.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use service_kit::startup::{bind, finish};
use service_kit::{serve_with, ServerLimits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Generous bound on anything that should happen "at once" on loopback.
const SOON: Duration = Duration::from_secs(1);

fn limits() -> ServerLimits {
    ServerLimits {
        header_read_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(600),
        max_connections: 4,
        request_timeout: Duration::from_secs(2),
        shutdown_grace: Duration::from_millis(800),
        max_uri_bytes: 200,
        max_header_bytes: 2048,
    }
}

fn routes() -> Router {
    Router::new()
        .route("/fast", get(|| async { "fast" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(400)).await;
                "slow"
            }),
        )
        .route(
            "/forever",
            get(|| async {
                std::future::pending::<()>().await;
                "never"
            }),
        )
}

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(limits: ServerLimits) -> Server {
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_with(listener, finish(routes()), limits, async move {
            let _ = stopped.await;
        }));
        Server {
            addr,
            stop: Some(stop),
            task,
        }
    }

    /// Starts the shutdown; how long `serve_with` then took to return.
    async fn shut_down(mut self) -> Duration {
        let started = Instant::now();
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("serve_with returns after a shutdown")
            .unwrap()
            .unwrap();
        started.elapsed()
    }
}

async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.unwrap()
}

/// Sends one HTTP/1.1 request and reads its response head and body (by
/// content-length), keeping the connection open.
async fn exchange(stream: &mut TcpStream, request: &str) -> String {
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(
            n > 0,
            "closed mid-response: {:?}",
            String::from_utf8_lossy(&response)
        );
        response.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&response).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= length {
                return text;
            }
        }
    }
}

fn get_request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n")
}

/// Reads until the server closes the connection; how long that took.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("the server closes the connection");
    started.elapsed()
}

#[tokio::test]
async fn a_partial_head_is_closed_after_the_header_read_timeout() {
    let server = Server::start(limits()).await;
    let mut stream = connect(server.addr).await;
    stream
        .write_all(b"GET /fast HTTP/1.1\r\nHost: te")
        .await
        .unwrap();
    let took = closed_within(&mut stream, Duration::from_millis(300) + SOON).await;
    assert!(took >= Duration::from_millis(250), "{took:?}");

    // Only `\r\n`, and nothing at all: the same.
    let mut crlf = connect(server.addr).await;
    crlf.write_all(b"\r\n").await.unwrap();
    let mut silent = connect(server.addr).await;
    closed_within(&mut crlf, Duration::from_millis(300) + SOON).await;
    closed_within(&mut silent, Duration::from_millis(300) + SOON).await;
    server.shut_down().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let server = Server::start(limits()).await;
    let mut stream = connect(server.addr).await;
    let first = exchange(&mut stream, &get_request("/fast")).await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    // Still open within the idle timeout, longer than the header-read one:
    // a keep-alive pause is not a stalled head.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let second = exchange(&mut stream, &get_request("/fast")).await;
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
    let took = closed_within(&mut stream, Duration::from_millis(600) + SOON).await;
    assert!(took >= Duration::from_millis(500), "{took:?}");
    server.shut_down().await;
}

#[tokio::test]
async fn an_http2_connection_that_only_sent_its_preface_is_closed() {
    let server = Server::start(limits()).await;
    let mut stream = connect(server.addr).await;
    stream.write_all(HTTP2_PREFACE_AND_SETTINGS).await.unwrap();
    closed_within(&mut stream, Duration::from_millis(300) + SOON).await;
    server.shut_down().await;
}

/// The HTTP/2 connection preface and an empty SETTINGS frame.
const HTTP2_PREFACE_AND_SETTINGS: &[u8] =
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

#[tokio::test]
async fn beyond_the_connection_cap_a_new_connection_gets_503_at_once_and_service_resumes() {
    let server = Server::start(limits()).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut stream = connect(server.addr).await;
        let ok = exchange(&mut stream, &get_request("/fast")).await;
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        held.push(stream);
    }
    for _ in 0..3 {
        let started = Instant::now();
        let mut extra = connect(server.addr).await;
        extra
            .write_all(get_request("/fast").as_bytes())
            .await
            .unwrap();
        let mut response = String::new();
        tokio::time::timeout(SOON, extra.read_to_string(&mut response))
            .await
            .expect("refused within a second")
            .unwrap();
        assert!(started.elapsed() < SOON);
        assert!(response.starts_with("HTTP/1.1 503"), "{response}");
        assert!(response.contains("connection: close"), "{response}");
        assert!(
            response.contains(r#""code":"too_many_connections""#),
            "{response}"
        );
    }
    drop(held);
    // The places come back once the server sees the connections close.
    let resumed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let mut stream = connect(server.addr).await;
            let response = exchange(&mut stream, &get_request("/fast")).await;
            if response.starts_with("HTTP/1.1 200") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(resumed.is_ok(), "the service answers again");
    server.shut_down().await;
}

#[tokio::test]
async fn a_request_beyond_the_request_timeout_gets_a_json_503() {
    let server = Server::start(ServerLimits {
        request_timeout: Duration::from_millis(200),
        ..limits()
    })
    .await;
    let mut stream = connect(server.addr).await;
    let response = exchange(&mut stream, &get_request("/forever")).await;
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    assert!(
        response.contains(r#""code":"request_timeout""#),
        "{response}"
    );
    assert!(response.contains("200ms"), "{response}");
    server.shut_down().await;
}

#[tokio::test]
async fn an_oversized_target_or_header_block_gets_the_json_error_body() {
    let server = Server::start(limits()).await;
    let mut stream = connect(server.addr).await;
    let long = format!("/fast?{}", "a".repeat(300));
    let response = exchange(&mut stream, &get_request(&long)).await;
    assert!(response.starts_with("HTTP/1.1 414"), "{response}");
    assert!(response.contains(r#""code":"uri_too_long""#), "{response}");
    let big = format!(
        "GET /fast HTTP/1.1\r\nHost: test\r\nbaggage: {}\r\n\r\n",
        "k=v,".repeat(1000)
    );
    let response = exchange(&mut stream, &big).await;
    assert!(response.starts_with("HTTP/1.1 431"), "{response}");
    assert!(
        response.contains(r#""code":"headers_too_large""#),
        "{response}"
    );
    // The connection still serves.
    let ok = exchange(&mut stream, &get_request("/fast")).await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    server.shut_down().await;
}

#[tokio::test]
async fn shutdown_finishes_requests_in_flight_and_closes_stalled_connections_at_once() {
    let server = Server::start(limits()).await;
    let addr = server.addr;
    let mut partial = connect(addr).await;
    partial
        .write_all(b"GET /fast HTTP/1.1\r\nHo")
        .await
        .unwrap();
    let mut http2 = connect(addr).await;
    http2.write_all(HTTP2_PREFACE_AND_SETTINGS).await.unwrap();
    let mut idle = connect(addr).await;
    exchange(&mut idle, &get_request("/fast")).await;
    let slow = tokio::spawn(async move {
        let mut stream = connect(addr).await;
        exchange(&mut stream, &get_request("/slow")).await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;

    let took = server.shut_down().await;
    let slow = slow.await.unwrap();
    assert!(
        slow.starts_with("HTTP/1.1 200") && slow.ends_with("slow"),
        "{slow}"
    );
    // The slow request's 400 ms, not the grace period: nothing waited for
    // the stalled clients.
    assert!(took < Duration::from_millis(800), "{took:?}");
    for stream in [&mut partial, &mut http2, &mut idle] {
        closed_within(stream, SOON).await;
    }
}

#[tokio::test]
async fn shutdown_ends_with_the_grace_period_when_a_request_never_finishes() {
    let server = Server::start(limits()).await;
    let addr = server.addr;
    let forever = tokio::spawn(async move {
        let mut stream = connect(addr).await;
        stream
            .write_all(get_request("/forever").as_bytes())
            .await
            .unwrap();
        closed_within(&mut stream, Duration::from_secs(5)).await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let took = server.shut_down().await;
    assert!(took >= Duration::from_millis(700), "{took:?}");
    assert!(took < Duration::from_millis(800) + SOON, "{took:?}");
    forever.await.unwrap();
}

/// HTTP/2 with prior knowledge, as before the accept loop was ours: served,
/// with the peer's address, and closed by the idle timeout like HTTP/1.
#[tokio::test]
async fn http2_is_served_and_its_idle_connections_closed_too() {
    use axum::extract::ConnectInfo;
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let routes = Router::new().route(
        "/peer",
        get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() }),
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve_with(listener, finish(routes), limits(), async move {
        let _ = stopped.await;
    }));

    let stream = connect(addr).await;
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    let connection = tokio::spawn(connection);
    let request = hyper::Request::get(format!("http://{addr}/peer"))
        .body(Empty::<axum::body::Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), hyper::Version::HTTP_2);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"127.0.0.1");

    // No request for the idle timeout: the server closes the connection.
    let started = Instant::now();
    tokio::time::timeout(Duration::from_millis(600) + SOON, connection)
        .await
        .expect("the server closes an idle HTTP/2 connection")
        .unwrap()
        .ok();
    assert!(started.elapsed() >= Duration::from_millis(500));
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
