//! OTLP/HTTP transport: `POST /v1/traces` and `POST /v1/metrics` with a protobuf or JSON
//! body, optionally gzipped.
//!
//! Status codes follow the OTLP/HTTP specification so real exporters react correctly
//! (400 is "do not retry", 415 names the media type problem); error bodies are a
//! `google.rpc.Status` in the request's own encoding, as that specification asks, so an
//! exporter that logs the server's message gets a readable one.

use std::io::Read;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use flate2::read::MultiGzDecoder;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use serde::de::DeserializeOwned;

use crate::forward::{Forwarder, Signal};
use crate::metric_model::metrics_from_request;
use crate::metric_store::MetricStore;
use crate::model::spans_from_request;
use crate::store::SpanStore;
use crate::MAX_MESSAGE_BYTES;

/// The path OTLP/HTTP exporters append to the base endpoint for traces.
pub const TRACES_PATH: &str = "/v1/traces";

/// The path OTLP/HTTP exporters append to the base endpoint for metrics.
pub const METRICS_PATH: &str = "/v1/metrics";

/// Where each signal's exports go.
#[derive(Debug, Clone)]
struct Stores {
    spans: SpanStore,
    metrics: MetricStore,
    forward: Option<Forwarder>,
}

/// The router: `POST /v1/traces` and `POST /v1/metrics`; axum answers other methods with
/// 405 and other paths (logs, profiles) with 404.
pub(crate) fn router(spans: SpanStore, metrics: MetricStore, forward: Option<Forwarder>) -> Router {
    Router::new()
        .route(TRACES_PATH, post(export_traces))
        .route(METRICS_PATH, post(export_metrics))
        .layer(DefaultBodyLimit::max(MAX_MESSAGE_BYTES))
        .with_state(Stores {
            spans,
            metrics,
            forward,
        })
}

/// The two OTLP/HTTP body encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    /// From a `Content-Type` value, ignoring parameters such as `charset`.
    fn from_content_type(value: &str) -> Option<Self> {
        let essence = value.split(';').next().unwrap_or_default().trim();
        if essence.eq_ignore_ascii_case("application/x-protobuf")
            || essence.eq_ignore_ascii_case("application/protobuf")
        {
            Some(Self::Protobuf)
        } else if essence.eq_ignore_ascii_case("application/json") {
            Some(Self::Json)
        } else {
            None
        }
    }

    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Self::Protobuf => "application/x-protobuf",
            Self::Json => "application/json",
        })
    }
}

/// Why a request body was refused; each maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
enum BodyError {
    #[error("unsupported Content-Encoding {0:?}; send gzip or no encoding")]
    UnsupportedEncoding(String),
    #[error("malformed gzip body: {0}")]
    Gzip(#[source] std::io::Error),
    #[error("body exceeds {MAX_MESSAGE_BYTES} bytes once decompressed")]
    TooLarge,
    #[error("malformed OTLP protobuf body: {0}")]
    Protobuf(#[from] prost::DecodeError),
    #[error("malformed OTLP/JSON body: {0}")]
    Json(#[from] serde_json::Error),
}

impl BodyError {
    fn status(&self) -> StatusCode {
        match self {
            Self::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Gzip(_) | Self::Protobuf(_) | Self::Json(_) => StatusCode::BAD_REQUEST,
        }
    }
}

/// `google.rpc.Status`, hand-declared because the OTLP proto crate does not ship it and the
/// OTLP/HTTP specification wants it as the error body.
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// gRPC `INVALID_ARGUMENT`, the code OTLP uses for a request that must not be retried.
const RPC_INVALID_ARGUMENT: i32 = 3;

async fn export_traces(State(stores): State<Stores>, headers: HeaderMap, body: Bytes) -> Response {
    export::<ExportTraceServiceRequest, ExportTraceServiceResponse>(&headers, &body, |request| {
        if let Some(forward) = &stores.forward {
            forward.offer(Signal::Traces, &request);
        }
        stores.spans.insert(spans_from_request(&request));
    })
}

async fn export_metrics(State(stores): State<Stores>, headers: HeaderMap, body: Bytes) -> Response {
    export::<ExportMetricsServiceRequest, ExportMetricsServiceResponse>(
        &headers,
        &body,
        |request| {
            if let Some(forward) = &stores.forward {
                forward.offer(Signal::Metrics, &request);
            }
            stores.metrics.insert(metrics_from_request(&request));
        },
    )
}

/// One export, whatever the signal: check the media type, decode (inflating first when
/// gzipped), hand the request to `store`, answer in the request's encoding.
fn export<Req, Resp>(headers: &HeaderMap, body: &[u8], store: impl FnOnce(Req)) -> Response
where
    Req: Message + Default + DeserializeOwned,
    Resp: Message + Default,
{
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(encoding) = Encoding::from_content_type(content_type) else {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "unsupported Content-Type {content_type:?}; send application/x-protobuf or application/json\n"
            ),
        )
            .into_response();
    };
    match decode::<Req>(headers, body, encoding) {
        Ok(request) => {
            store(request);
            success::<Resp>(encoding)
        }
        Err(error) => {
            tracing::debug!(%error, "rejected an OTLP/HTTP export");
            failure(encoding, &error)
        }
    }
}

fn decode<Req: Message + Default + DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
    encoding: Encoding,
) -> Result<Req, BodyError> {
    let content_encoding = headers.get(CONTENT_ENCODING).map(|v| {
        String::from_utf8_lossy(v.as_bytes())
            .trim()
            .to_ascii_lowercase()
    });
    let inflated;
    let body = match content_encoding.as_deref() {
        None | Some("" | "identity") => body,
        Some("gzip" | "x-gzip") => {
            inflated = gunzip(body)?;
            &inflated[..]
        }
        Some(other) => return Err(BodyError::UnsupportedEncoding(other.to_owned())),
    };
    Ok(match encoding {
        Encoding::Protobuf => Req::decode(body)?,
        Encoding::Json => serde_json::from_slice(body)?,
    })
}

/// Inflates with a ceiling, so a small "gzip bomb" cannot make the receiver allocate without
/// bound.
fn gunzip(body: &[u8]) -> Result<Vec<u8>, BodyError> {
    let limit = u64::try_from(MAX_MESSAGE_BYTES).unwrap_or(u64::MAX);
    let mut out = Vec::new();
    MultiGzDecoder::new(body)
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(BodyError::Gzip)?;
    if out.len() > MAX_MESSAGE_BYTES {
        return Err(BodyError::TooLarge);
    }
    Ok(out)
}

fn success<Resp: Message + Default>(encoding: Encoding) -> Response {
    let body = match encoding {
        Encoding::Protobuf => Resp::default().encode_to_vec(),
        // The JSON form of a response without partial success; written out rather than
        // serialised because serde would emit `"partialSuccess": null`.
        Encoding::Json => b"{}".to_vec(),
    };
    ([(CONTENT_TYPE, encoding.content_type())], body).into_response()
}

fn failure(encoding: Encoding, error: &BodyError) -> Response {
    let status = RpcStatus {
        code: RPC_INVALID_ARGUMENT,
        message: error.to_string(),
    };
    let body = match encoding {
        Encoding::Protobuf => status.encode_to_vec(),
        Encoding::Json => serde_json::json!({ "code": status.code, "message": status.message })
            .to_string()
            .into_bytes(),
    };
    (
        error.status(),
        [(CONTENT_TYPE, encoding.content_type())],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::io::Write;

    #[test]
    fn content_types_are_matched_by_essence() {
        for (value, expected) in [
            ("application/x-protobuf", Some(Encoding::Protobuf)),
            ("application/protobuf", Some(Encoding::Protobuf)),
            ("Application/X-Protobuf", Some(Encoding::Protobuf)),
            ("application/json", Some(Encoding::Json)),
            ("application/json; charset=utf-8", Some(Encoding::Json)),
            ("text/plain", None),
            ("", None),
            ("application/jsonx", None),
        ] {
            assert_eq!(Encoding::from_content_type(value), expected, "{value:?}");
        }
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn gunzip_round_trips_and_rejects_garbage() {
        assert_eq!(gunzip(&gzip(b"hello")).unwrap(), b"hello");
        assert!(matches!(gunzip(b"not gzip"), Err(BodyError::Gzip(_))));
    }

    #[test]
    fn gunzip_refuses_to_inflate_past_the_limit() {
        let bomb = gzip(&vec![0u8; MAX_MESSAGE_BYTES + 1]);
        assert!(
            bomb.len() < 100_000,
            "the test input should be small compressed"
        );
        let err = gunzip(&bomb).unwrap_err();
        assert!(matches!(err, BodyError::TooLarge));
        assert_eq!(err.status(), StatusCode::PAYLOAD_TOO_LARGE);
        // Exactly at the limit is still accepted.
        assert_eq!(
            gunzip(&gzip(&vec![0u8; MAX_MESSAGE_BYTES])).unwrap().len(),
            MAX_MESSAGE_BYTES
        );
    }
}
