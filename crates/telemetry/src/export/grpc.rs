//! OTLP/gRPC span export of requests encoded by [`super::encode`]: the
//! standard `TraceService/Export` call over tonic, with a codec that sends
//! the request's bytes as they are.
//!
//! Used unless `config::SpanExporterKind` says `Sdk` (asked for, or
//! compression set), with the headers of `OTEL_EXPORTER_OTLP_(TRACES_)HEADERS`.
//! OTLP/HTTP has the same pair in [`super::http`].

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use futures_util::future::BoxFuture;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use opentelemetry_sdk::trace::SpanData;
use opentelemetry_sdk::Resource;
use prost::Message as _;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::MetadataMap;
use tonic::transport::{Channel, Endpoint};

use super::encode::{self, EncodedResource};
use super::headers;
use super::worker::BatchSink;

/// The OTLP trace service's one method.
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// Sends batches to an OTLP/gRPC endpoint.
pub(crate) struct GrpcSpanSink {
    client: tonic::client::Grpc<Channel>,
    /// `OTEL_EXPORTER_OTLP_(TRACES_)HEADERS`, as gRPC metadata.
    metadata: MetadataMap,
    resource: EncodedResource,
}

impl GrpcSpanSink {
    /// A lazily connected channel to `endpoint`, each call bounded by
    /// `timeout`. Call inside the Tokio runtime: the channel's connection
    /// task lives there.
    pub(crate) fn new(
        endpoint: &str,
        timeout: Duration,
        headers: http::HeaderMap,
    ) -> Result<Self, tonic::transport::Error> {
        let channel = Endpoint::from_shared(endpoint.to_owned())?
            .user_agent(headers::user_agent())?
            .timeout(timeout)
            .connect_lazy();
        Ok(Self {
            client: tonic::client::Grpc::new(channel),
            metadata: MetadataMap::from_headers(headers),
            resource: EncodedResource::default(),
        })
    }

    async fn call(&self, body: Bytes) -> Result<(), String> {
        let mut client = self.client.clone();
        client
            .ready()
            .await
            .map_err(|e| format!("export failed: {}", chain(&e)))?;
        let path = http::uri::PathAndQuery::from_static(EXPORT_PATH);
        let mut request = tonic::Request::new(body);
        *request.metadata_mut() = self.metadata.clone();
        let response = client
            .unary(request, path, RawCodec)
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
                text
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
    fn send<'a>(&'a self, batch: &'a [SpanData]) -> BoxFuture<'a, Result<(), String>> {
        let body = Bytes::from(encode::export_request(batch, &self.resource));
        Box::pin(self.call(body))
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = EncodedResource::new(resource);
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

/// Requests go out as the bytes they already are; answers come back as
/// bytes for the caller to decode.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}
