//! OTLP/gRPC transport: a tonic `TraceService` that converts and stores every export.

use std::future::Future;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

use crate::model::spans_from_request;
use crate::store::SpanStore;
use crate::MAX_MESSAGE_BYTES;

/// The gRPC service; holds a handle on the shared store.
#[derive(Debug, Clone)]
pub(crate) struct TraceReceiver {
    store: SpanStore,
}

#[tonic::async_trait]
impl TraceService for TraceReceiver {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.store.insert(spans_from_request(request.get_ref()));
        // Nothing is ever rejected, so no partial-success report.
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// Serves OTLP/gRPC on an already bound listener until `shutdown` resolves.
///
/// Gzip is accepted because it is what SDKs send when compression is switched on; the
/// decoding limit is raised from tonic's 4 MiB so a large batch is not refused mid-test.
pub(crate) async fn serve(
    listener: TcpListener,
    store: SpanStore,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let service = TraceServiceServer::new(TraceReceiver { store })
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(MAX_MESSAGE_BYTES);
    tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
}
