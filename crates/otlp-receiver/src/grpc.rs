//! OTLP/gRPC transport: a tonic `TraceService` and `MetricsService` that convert and store
//! every export.

use std::future::Future;

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
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

use crate::forward::{Forwarder, Signal};
use crate::metric_model::metrics_from_request;
use crate::metric_store::MetricStore;
use crate::model::spans_from_request;
use crate::store::SpanStore;
use crate::MAX_MESSAGE_BYTES;

/// The gRPC trace service; holds a handle on the shared store.
#[derive(Debug, Clone)]
pub(crate) struct TraceReceiver {
    store: SpanStore,
    forward: Option<Forwarder>,
}

#[tonic::async_trait]
impl TraceService for TraceReceiver {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        if let Some(forward) = &self.forward {
            forward.offer(Signal::Traces, request.get_ref());
        }
        self.store.insert(spans_from_request(request.get_ref()));
        // Nothing is ever rejected, so no partial-success report.
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// The gRPC metrics service; holds a handle on the shared metric store.
#[derive(Debug, Clone)]
pub(crate) struct MetricsReceiver {
    metrics: MetricStore,
    forward: Option<Forwarder>,
}

#[tonic::async_trait]
impl MetricsService for MetricsReceiver {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        if let Some(forward) = &self.forward {
            forward.offer(Signal::Metrics, request.get_ref());
        }
        self.metrics.insert(metrics_from_request(request.get_ref()));
        // Refused series are counted by the store, not reported back: an exporter cannot act
        // on it, and a partial-success warning per export would only flood its log.
        Ok(Response::new(ExportMetricsServiceResponse {
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
    metrics: MetricStore,
    forward: Option<Forwarder>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let traces = TraceServiceServer::new(TraceReceiver {
        store,
        forward: forward.clone(),
    })
    .accept_compressed(CompressionEncoding::Gzip)
    .max_decoding_message_size(MAX_MESSAGE_BYTES);
    let metrics = MetricsServiceServer::new(MetricsReceiver { metrics, forward })
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(MAX_MESSAGE_BYTES);
    tonic::transport::Server::builder()
        .add_service(traces)
        .add_service(metrics)
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
}
