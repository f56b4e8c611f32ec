//! A TLS listener in front of the project's OTLP receiver, as a gateway
//! would be: it ends TLS (ALPN h2 for gRPC, http/1.1 for OTLP/HTTP), notes
//! the path and `authorization` header of every request, and passes the
//! request on in clear to the receiver, which stores what it carries.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Version};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// One request the listener passed on.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub version: Version,
    pub authorization: Option<String>,
    /// The client presented a certificate (verified by the server's
    /// configuration when it asks for one).
    pub client_certificate: bool,
}

pub struct TlsFront {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Handshakes that failed (the client did not trust us, say).
    failed_handshakes: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TlsFront {
    /// Listens on a loopback port; gRPC goes to `grpc`, the rest to `http`.
    pub async fn start(
        server: Arc<rustls::ServerConfig>,
        grpc: SocketAddr,
        http: SocketAddr,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let failed_handshakes: Arc<Mutex<Vec<String>>> = Arc::default();
        let acceptor = TlsAcceptor::from(server);
        let h2: Client<HttpConnector, Incoming> = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build_http();
        let h1: Client<HttpConnector, Incoming> =
            Client::builder(TokioExecutor::new()).build_http();
        let (recorded, failures) = (seen.clone(), failed_handshakes.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, recorded, failures) =
                    (acceptor.clone(), recorded.clone(), failures.clone());
                let (h1, h2) = (h1.clone(), h2.clone());
                tokio::spawn(async move {
                    let tls = match acceptor.accept(tcp).await {
                        Ok(tls) => tls,
                        Err(e) => {
                            failures.lock().unwrap().push(e.to_string());
                            return;
                        }
                    };
                    let client_certificate = tls.get_ref().1.peer_certificates().is_some();
                    let service = service_fn(move |request: Request<Incoming>| {
                        let (recorded, h1, h2) = (recorded.clone(), h1.clone(), h2.clone());
                        async move {
                            recorded.lock().unwrap().push(Seen {
                                path: request.uri().path().to_owned(),
                                version: request.version(),
                                authorization: request
                                    .headers()
                                    .get("authorization")
                                    .map(|v| v.to_str().unwrap_or("<not text>").to_owned()),
                                client_certificate,
                            });
                            // gRPC is HTTP/2; the receiver's gRPC port speaks
                            // it in clear (prior knowledge).
                            let is_grpc = request.version() == Version::HTTP_2;
                            let (mut parts, body) = request.into_parts();
                            let target = if is_grpc { grpc } else { http };
                            let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
                            parts.uri = format!("http://{target}{path}").parse().unwrap();
                            parts.headers.remove(hyper::header::HOST);
                            let request = Request::from_parts(parts, body);
                            if is_grpc {
                                h2.request(request).await
                            } else {
                                h1.request(request).await
                            }
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            seen,
            failed_handshakes,
            task,
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn failed_handshakes(&self) -> Vec<String> {
        self.failed_handshakes.lock().unwrap().clone()
    }
}
