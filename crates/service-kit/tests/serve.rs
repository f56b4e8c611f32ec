//! The serve seam in process: a router served on a listener bound to
//! port 0, with the peer's address available and a graceful stop.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::Router;
use service_kit::startup::{bind, finish, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn get_text(addr: SocketAddr, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test]
async fn a_router_serves_on_port_zero_with_connect_info_until_shutdown() {
    let routes = Router::new().route(
        "/peer",
        get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() }),
    );
    let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
    let addr = listener.local_addr().unwrap();
    assert_ne!(addr.port(), 0);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, finish(routes), async move {
        let _ = stopped.await;
    }));

    let peer = get_text(addr, "/peer").await;
    assert!(peer.starts_with("HTTP/1.1 200"), "{peer}");
    assert!(peer.ends_with("127.0.0.1"), "{peer}");
    let health = get_text(addr, "/healthz").await;
    assert!(
        health.starts_with("HTTP/1.1 200") && health.ends_with("ok"),
        "{health}"
    );
    let missing = get_text(addr, "/nowhere").await;
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    assert!(missing.contains("route_not_found"), "{missing}");

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("serve returns once shutdown completes")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_taken_address_is_a_bind_error_naming_it() {
    let taken = bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
    let addr = taken.local_addr().unwrap();
    let err = bind(addr).await.unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("cannot listen on {addr}")),
        "{err}"
    );
    assert!(err.to_string().contains("--listen"), "{err}");
    // The cause is the source, not repeated in the message: printed as a
    // chain it appears once.
    let source = std::error::Error::source(&err).expect("the io error is the source");
    assert!(!err.to_string().contains(&source.to_string()), "{err}");
}
