//! Each request on its way from hyper to the router: counted in flight
//! until its response is written out, refused with the JSON error body when
//! its target or headers are too large, given the peer's address and the
//! request timeout.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{ConnectInfo, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower::ServiceExt;

use super::activity::{Activity, InFlight};
use super::ServerLimits;
use crate::ApiError;

/// How long a request may take, set by the server on every request;
/// [`enforce_request_timeout`] applies it inside the traced routes.
#[derive(Debug, Clone, Copy)]
pub struct RequestTimeout(pub Duration);

/// The hyper service of one connection.
#[derive(Clone)]
pub(crate) struct RequestService {
    pub(crate) router: Router,
    pub(crate) peer: SocketAddr,
    pub(crate) activity: Arc<Activity>,
    pub(crate) limits: ServerLimits,
}

impl<B> hyper::service::Service<hyper::Request<B>> for RequestService
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, request: hyper::Request<B>) -> Self::Future {
        let in_flight = self.activity.start_request();
        let mut request = request.map(Body::new);
        if let Some(refusal) = too_large(&request, &self.limits) {
            return Box::pin(std::future::ready(Ok(counted(
                refusal.into_response(),
                in_flight,
            ))));
        }
        let extensions = request.extensions_mut();
        extensions.insert(ConnectInfo(self.peer));
        extensions.insert(RequestTimeout(self.limits.request_timeout));
        let router = self.router.clone();
        Box::pin(async move {
            let response = router.oneshot(request).await?;
            Ok(counted(response, in_flight))
        })
    }
}

/// The request's target or header block is beyond the limits: a JSON 414
/// or 431, before any routing or tracing spends effort on it.
fn too_large(request: &Request, limits: &ServerLimits) -> Option<ApiError> {
    let uri = request.uri();
    let target = uri.path_and_query().map_or(0, |pq| pq.as_str().len())
        + uri.authority().map_or(0, |a| a.as_str().len())
        + uri.scheme_str().map_or(0, str::len);
    if target > limits.max_uri_bytes {
        return Some(ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!(
                "the request target is {target} bytes long; at most {} are accepted",
                limits.max_uri_bytes
            ),
        ));
    }
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers > limits.max_header_bytes {
        return Some(ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!(
                "the request headers are {headers} bytes long; at most {} are accepted",
                limits.max_header_bytes
            ),
        ));
    }
    None
}

/// The response, its request counted in flight until hyper has written the
/// body out and dropped it.
fn counted(response: Response, in_flight: InFlight) -> Response {
    response.map(|body| {
        Body::new(Counted {
            body,
            _in_flight: in_flight,
        })
    })
}

struct Counted {
    body: Body,
    _in_flight: InFlight,
}

impl HttpBody for Counted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Axum middleware ([`crate::startup::finish`] applies it inside the
/// request-tracing one, so the span shows the 503): answers 503
/// `request_timeout` when the routes have not answered within the
/// server's request timeout. Handlers with deadlines of their own answer
/// before it with theirs.
pub async fn enforce_request_timeout(request: Request, next: Next) -> Response {
    let Some(&RequestTimeout(limit)) = request.extensions().get::<RequestTimeout>() else {
        return next.run(request).await;
    };
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "request_timeout",
            format!(
                "no response within the server's request timeout ({})",
                humantime::format_duration(limit)
            ),
        )
        .into_response(),
    }
}
