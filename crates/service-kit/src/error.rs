//! One JSON error shape for every service.
//!
//! `{"error": {"code": "user_not_found", "message": "no user with id 0"}}`
//! with the matching HTTP status. 5xx errors are also logged at ERROR level
//! inside the request span, which tracing-opentelemetry turns into a span
//! event and an Error status — so the trace explains itself.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    /// Stable, machine-readable code (`invalid_id`, `dependency_failed`, …).
    pub code: &'static str,
    pub message: String,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(error.code = self.code, "{}", self.message);
        } else {
            tracing::debug!(error.code = self.code, "{}", self.message);
        }
        let body = Body {
            error: Inner {
                code: self.code,
                message: &self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

/// The JSON error body as bytes, for answers written without axum (a
/// connection refused before hyper sees it).
pub(crate) fn json_body(code: &str, message: &str) -> Vec<u8> {
    let body = Body {
        error: Inner { code, message },
    };
    serde_json::to_vec(&body).expect("two strings serialize")
}

/// JSON 404 for paths no route matches.
pub async fn route_not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found("route_not_found", format!("no route for {}", uri.path()))
}

/// JSON 405 for a known path asked with a method it does not serve.
pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}
