//! OTLP/HTTP span export (`http/protobuf`) of requests encoded by
//! [`super::encode`]: a POST of the request's bytes to `/v1/traces`.
//!
//! Chosen as [`super::grpc`] is, with the same headers. For `http://` the
//! client is reqwest's blocking one, as the SDK's own HTTP exporter uses: the
//! export thread has no Tokio runtime. For `https://` it is
//! [`crate::tls::HttpsClient`], which brings its own runtime for the same
//! reason.

use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use opentelemetry_sdk::Resource;
use prost::Message as _;

use super::encode::{EncodedResource, EncodedSpan, Request};
use super::grpc::{chain, log_partial_success};
use super::headers;
use super::worker::{Batch, BatchSink};
use crate::tls::HttpsClient;

/// How a request leaves: in clear or over TLS.
enum Transport {
    Plain(reqwest::blocking::Client),
    Tls(HttpsClient),
}

/// Sends batches to an OTLP/HTTP endpoint.
pub(crate) struct HttpSpanSink {
    transport: Transport,
    /// The whole URL, `/v1/traces` included.
    url: String,
    resource: EncodedResource,
}

impl HttpSpanSink {
    /// Each request bounded by `timeout`. The blocking client starts a
    /// runtime of its own, which must not be built inside the caller's
    /// (Tokio refuses): it is built on a thread of its own.
    pub(crate) fn new(
        url: &str,
        timeout: Duration,
        headers: http::HeaderMap,
    ) -> Result<Self, String> {
        let client = std::thread::spawn(move || {
            reqwest::blocking::Client::builder()
                .timeout(timeout)
                .user_agent(headers::user_agent())
                .default_headers(headers)
                .build()
        })
        .join()
        .map_err(|_| "the HTTP client could not be built".to_owned())?
        .map_err(|e| chain(&e))?;
        Ok(Self::with_transport(url, Transport::Plain(client)))
    }

    /// To an `https://` URL, through `client` (which carries the timeout).
    /// The headers are added to each request here.
    pub(crate) fn over_tls(url: &str, client: HttpsClient) -> Self {
        Self::with_transport(url, Transport::Tls(client))
    }

    fn with_transport(url: &str, transport: Transport) -> Self {
        Self {
            transport,
            url: url.to_owned(),
            resource: EncodedResource::default(),
        }
    }

    fn post_plain(&self, client: &reqwest::blocking::Client, body: Vec<u8>) -> Result<(), String> {
        let response = client
            .post(&self.url)
            .header(http::header::CONTENT_TYPE, "application/x-protobuf")
            .body(body)
            .send()
            .map_err(|e| format!("export failed: {}", chain(&e)))?;
        let status = response.status();
        let body = if status.is_success() {
            response.bytes().ok()
        } else {
            None
        };
        answered(status, body)
    }

    async fn post_tls(&self, client: &HttpsClient, body: Vec<u8>) -> Result<(), String> {
        let request = http::Request::post(&self.url)
            .header(http::header::CONTENT_TYPE, "application/x-protobuf")
            .body(Bytes::from(body))
            .map_err(|e| format!("export failed: {e}"))?;
        let response = client.send(request).await?;
        answered(response.status(), Some(response.into_body()))
    }
}

/// A status other than 2xx is a failure (retried); a success may still
/// carry a partial success to log.
fn answered(status: http::StatusCode, body: Option<Bytes>) -> Result<(), String> {
    if !status.is_success() {
        return Err(format!("export failed with HTTP status {status}"));
    }
    if let Some(body) = body {
        if let Ok(answer) = ExportTraceServiceResponse::decode(body) {
            log_partial_success(&answer);
        }
    }
    Ok(())
}

impl BatchSink for HttpSpanSink {
    type Item = EncodedSpan;

    fn send<'a>(&'a self, batch: &'a Batch<EncodedSpan>) -> BoxFuture<'a, Result<(), String>> {
        let body = Request::new(batch, &self.resource).to_vec();
        match &self.transport {
            // Blocking, on the export thread, bounded by the client's timeout.
            Transport::Plain(client) => Box::pin(std::future::ready(self.post_plain(client, body))),
            Transport::Tls(client) => Box::pin(self.post_tls(client, body)),
        }
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = EncodedResource::new(resource);
    }

    fn shutdown(&mut self, _timeout: Duration) {}
}
