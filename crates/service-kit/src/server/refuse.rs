//! Connections beyond the cap: accepted, answered 503 with
//! `Connection: close`, closed — never left in the kernel's backlog, where
//! a client would wait for its own timeout without a word. The answer is
//! HTTP/1.1, written before the request is read: an HTTP/2 client reads a
//! protocol error and the close instead, refused just as fast.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

/// How long a refused connection may stay open: time to write the 503 and
/// read what the client had sent (closing with unread data makes the
/// kernel reset the connection, and the client may lose the 503).
const REFUSE_WITHIN: Duration = Duration::from_millis(500);

/// Refusals in progress at once. Beyond them a connection is closed at
/// once without the 503, so a flood costs at most this many extra sockets.
pub(crate) const MAX_REFUSING: usize = 64;

/// The 503 every refused connection gets.
pub(crate) struct Refusal {
    response: Arc<[u8]>,
    refusing: Arc<Semaphore>,
}

impl Refusal {
    pub(crate) fn new(max_connections: usize) -> Self {
        let body = crate::error::json_body(
            "too_many_connections",
            &format!(
                "the server has its limit of {max_connections} connections open; try again shortly"
            ),
        );
        let head = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n",
            body.len()
        );
        let response: Vec<u8> = head.into_bytes().into_iter().chain(body).collect();
        Self {
            response: response.into(),
            refusing: Arc::new(Semaphore::new(MAX_REFUSING)),
        }
    }

    /// Answers `stream` 503 and closes it, in the background.
    pub(crate) fn refuse(&self, stream: TcpStream) {
        let Ok(slot) = Arc::clone(&self.refusing).try_acquire_owned() else {
            return; // dropped: closed at once
        };
        let response = Arc::clone(&self.response);
        tokio::spawn(async move {
            let _slot = slot;
            let _ = tokio::time::timeout(REFUSE_WITHIN, answer(stream, &response)).await;
        });
    }
}

async fn answer(mut stream: TcpStream, response: &[u8]) -> std::io::Result<()> {
    stream.write_all(response).await?;
    stream.shutdown().await?;
    let mut sink = [0u8; 1024];
    while stream.read(&mut sink).await? > 0 {}
    Ok(())
}
