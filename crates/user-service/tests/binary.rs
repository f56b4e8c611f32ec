//! The thin `main`: the real binary starts, announces its address, serves.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn binary_serves_and_announces_its_address() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_user-service"))
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
        line.starts_with("user-service listening on http://127.0.0.1:"),
        "{line}"
    );
    let addr = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    use std::io::{Read, Write};
    write!(
        stream,
        "GET /users/7 HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"id\":7"), "{response}");
}
