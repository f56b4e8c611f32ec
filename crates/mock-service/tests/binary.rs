//! The thin `main`s: each real binary starts, announces its address, serves.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

use mock_service::{MockSpec, ORDER_SERVICE, USER_SERVICE};

/// Starts the binary, asks its route for user 7, returns the raw response.
fn serve_once(exe: &str, spec: &MockSpec) -> String {
    let mut child = Command::new(exe)
        .args(["--listen", "127.0.0.1:0", "--latency", "1ms"])
        .env("OTEL_SDK_DISABLED", "true")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(
        line.starts_with(&format!(
            "{} listening on http://127.0.0.1:",
            spec.name.service
        )),
        "{line}"
    );
    let addr = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n",
        spec.path("7")
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

#[test]
fn user_service_binary_serves_and_announces_its_address() {
    let response = serve_once(env!("CARGO_BIN_EXE_user-service"), &USER_SERVICE);
    assert!(response.contains("\"id\":7"), "{response}");
}

#[test]
fn order_service_binary_serves_and_announces_its_address() {
    let response = serve_once(env!("CARGO_BIN_EXE_order-service"), &ORDER_SERVICE);
    assert!(response.trim_end().ends_with(']'), "{response}");
}
