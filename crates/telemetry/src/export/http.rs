//! OTLP/HTTP span export (`http/protobuf`) of requests encoded by
//! [`super::encode`]: a POST of the request's bytes to `/v1/traces`.
//!
//! Chosen as [`super::grpc`] is, with the same headers. The client is reqwest's blocking one,
//! as the SDK's own HTTP exporter uses: the export thread has no Tokio
//! runtime.

use std::time::Duration;

use futures_util::future::BoxFuture;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use opentelemetry_sdk::Resource;
use prost::Message as _;

use super::encode::{EncodedResource, EncodedSpan, Request};
use super::grpc::{chain, log_partial_success};
use super::headers;
use super::worker::{Batch, BatchSink};

/// Sends batches to an OTLP/HTTP endpoint.
pub(crate) struct HttpSpanSink {
    client: reqwest::blocking::Client,
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
        Ok(Self {
            client,
            url: url.to_owned(),
            resource: EncodedResource::default(),
        })
    }

    fn post(&self, body: Vec<u8>) -> Result<(), String> {
        let response = self
            .client
            .post(&self.url)
            .header(http::header::CONTENT_TYPE, "application/x-protobuf")
            .body(body)
            .send()
            .map_err(|e| format!("export failed: {}", chain(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("export failed with HTTP status {status}"));
        }
        if let Ok(body) = response.bytes() {
            if let Ok(answer) = ExportTraceServiceResponse::decode(body) {
                log_partial_success(&answer);
            }
        }
        Ok(())
    }
}

impl BatchSink for HttpSpanSink {
    type Item = EncodedSpan;

    fn send<'a>(&'a self, batch: &'a Batch<EncodedSpan>) -> BoxFuture<'a, Result<(), String>> {
        // Blocking, on the export thread, bounded by the client's timeout.
        let result = self.post(Request::new(batch, &self.resource).to_vec());
        Box::pin(std::future::ready(result))
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = EncodedResource::new(resource);
    }

    fn shutdown(&mut self, _timeout: Duration) {}
}
