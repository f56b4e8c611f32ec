//! OTLP/gRPC span export of requests encoded by [`super::encode`]: the
//! standard `TraceService/Export` call over tonic, with a codec that sends
//! the request's bytes as they are.
//!
//! Used unless `config::SpanExporterKind` says `Sdk` (asked for, or
//! compression set), with the headers of `OTEL_EXPORTER_OTLP_(TRACES_)HEADERS`.
//! OTLP/HTTP has the same pair in [`super::http`].

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes};
use futures_util::future::BoxFuture;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use opentelemetry_sdk::Resource;
use prost::Message as _;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::MetadataMap;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use super::encode::{EncodedResource, EncodedSpan, Request};
use super::headers;
use super::worker::{Batch, BatchSink};

/// The OTLP trace service's one method.
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// Sends batches to an OTLP/gRPC endpoint.
pub(crate) struct GrpcSpanSink {
    client: tonic::client::Grpc<Channel>,
    /// `OTEL_EXPORTER_OTLP_(TRACES_)HEADERS`, as gRPC metadata.
    metadata: MetadataMap,
    resource: Arc<EncodedResource>,
}

impl GrpcSpanSink {
    /// A lazily connected channel to `endpoint`, each call bounded by
    /// `timeout`, over TLS when `tls` is given (an `https://` endpoint).
    /// Call inside the Tokio runtime: the channel's connection task lives
    /// there.
    pub(crate) fn new(
        endpoint: &str,
        timeout: Duration,
        headers: http::HeaderMap,
        tls: Option<ClientTlsConfig>,
    ) -> Result<Self, tonic::transport::Error> {
        let mut endpoint = Endpoint::from_shared(endpoint.to_owned())?
            .user_agent(headers::user_agent())?
            .timeout(timeout);
        if let Some(tls) = tls {
            endpoint = endpoint.tls_config(tls)?;
        }
        let channel = endpoint.connect_lazy();
        Ok(Self {
            client: tonic::client::Grpc::new(channel),
            metadata: MetadataMap::from_headers(headers),
            resource: Arc::default(),
        })
    }

    async fn call(&self, body: RequestBody) -> Result<(), String> {
        let mut client = self.client.clone();
        client
            .ready()
            .await
            .map_err(|e| crate::tls::explain(format!("export failed: {}", chain(&e))))?;
        let path = http::uri::PathAndQuery::from_static(EXPORT_PATH);
        let mut request = tonic::Request::new(body);
        *request.metadata_mut() = self.metadata.clone();
        let response = client
            .unary(request, path, ExportCodec)
            .await
            .map_err(|status| {
                let mut text = format!(
                    "export failed with gRPC code {:?}: {}",
                    status.code(),
                    status.message()
                );
                // The root cause (say, "Connection refused"), once: the
                // layers between repeat the message.
                if let Some(root) = root_cause(&status) {
                    if !text.contains(&root) {
                        text.push_str(": ");
                        text.push_str(&root);
                    }
                }
                crate::tls::explain(text)
            })?;
        if let Ok(answer) = ExportTraceServiceResponse::decode(response.into_inner()) {
            log_partial_success(&answer);
        }
        Ok(())
    }
}

/// A partial success is logged and not retried (the specification: the
/// rejected spans would be rejected again).
pub(crate) fn log_partial_success(answer: &ExportTraceServiceResponse) {
    if let Some(partial) = &answer.partial_success {
        if partial.rejected_spans > 0 || !partial.error_message.is_empty() {
            tracing::warn!(
                rejected_spans = partial.rejected_spans,
                message = %crate::bounded_log::excerpt(&partial.error_message),
                "the OTLP endpoint rejected part of a batch"
            );
        }
    }
}

impl BatchSink for GrpcSpanSink {
    type Item = EncodedSpan;

    fn send<'a>(&'a self, batch: &'a Batch<EncodedSpan>) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(self.call(RequestBody {
            resource: self.resource.clone(),
            spans: batch.clone(),
        }))
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = Arc::new(EncodedResource::new(resource));
    }

    fn shutdown(&mut self, _timeout: Duration) {}
}

/// The innermost source of an error, if it has one.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut source = error.source()?;
    while let Some(next) = source.source() {
        source = next;
    }
    Some(source.to_string())
}

/// An error and its sources on one line.
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(source) = next {
        text.push_str(": ");
        text.push_str(&source.to_string());
        next = source.source();
    }
    text
}

/// What a call sends: the batch and the resource, shared with the worker,
/// framed by the codec straight into tonic's buffer.
struct RequestBody {
    resource: Arc<EncodedResource>,
    spans: Batch<EncodedSpan>,
}

/// Requests are framed from the spans' bytes into tonic's buffer (no
/// request-sized copy in between); answers come back as bytes for the
/// caller to decode.
#[derive(Debug, Clone, Copy, Default)]
struct ExportCodec;

impl Codec for ExportCodec {
    type Encode = RequestBody;
    type Decode = Bytes;
    type Encoder = ExportCodec;
    type Decoder = ExportCodec;

    fn encoder(&mut self) -> Self::Encoder {
        ExportCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        ExportCodec
    }
}

impl Encoder for ExportCodec {
    type Item = RequestBody;
    type Error = tonic::Status;

    fn encode(&mut self, item: RequestBody, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        let request = Request::new(&item.spans, &item.resource);
        dst.reserve(request.len());
        request.write(dst);
        Ok(())
    }
}

impl Decoder for ExportCodec {
    type Item = Bytes;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}
