//! The thin `main`s: each real binary starts, announces its address, serves,
//! and stops cleanly on SIGTERM.

use std::time::Duration;

use mock_service::{MockSpec, ORDER_SERVICE, USER_SERVICE};
use service_kit::child::{ChildError, ServiceCommand};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn command(exe: &str, spec: &MockSpec) -> ServiceCommand {
    ServiceCommand::new(spec.name.service, exe).env("OTEL_SDK_DISABLED", "true")
}

/// Starts the binary, asks its route for user 7, returns the raw response.
async fn serve_once(exe: &str, spec: &MockSpec) -> String {
    let child = command(exe, spec)
        .args(["--listen", "127.0.0.1:0", "--latency", "1ms"])
        .start()
        .await
        .unwrap();
    assert_eq!(child.ready().service, spec.name.service);
    assert!(
        child.url().starts_with("http://127.0.0.1:") && child.addr().port() != 0,
        "{}",
        child.url()
    );
    let addr = child.addr();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!(
                "GET {} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n",
                spec.path("7")
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let stopped = child.stop(Duration::from_secs(10)).await.unwrap();
    assert!(
        stopped.status.success() && !stopped.killed,
        "{} exits cleanly on SIGTERM: {:?}",
        spec.name.service,
        stopped
    );
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

#[tokio::test]
async fn user_service_binary_serves_and_announces_its_address() {
    let response = serve_once(env!("CARGO_BIN_EXE_user-service"), &USER_SERVICE).await;
    assert!(response.contains("\"id\":7"), "{response}");
}

#[tokio::test]
async fn order_service_binary_serves_and_announces_its_address() {
    let response = serve_once(env!("CARGO_BIN_EXE_order-service"), &ORDER_SERVICE).await;
    assert!(response.trim_end().ends_with(']'), "{response}");
}

/// A bad configuration stops the binary before it serves: the helper says
/// which service, the service says why (on stderr).
#[tokio::test]
async fn a_latency_above_the_limit_stops_either_binary_at_start() {
    for (exe, spec) in [
        (env!("CARGO_BIN_EXE_user-service"), &USER_SERVICE),
        (env!("CARGO_BIN_EXE_order-service"), &ORDER_SERVICE),
    ] {
        let err = command(exe, spec)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--latency",
                "2s",
                "--max-delay",
                "1s",
            ])
            .start()
            .await
            .err()
            .unwrap();
        assert!(matches!(err, ChildError::ExitedEarly { .. }), "{err}");
        assert!(err.to_string().starts_with(spec.name.service), "{err}");
    }
}
