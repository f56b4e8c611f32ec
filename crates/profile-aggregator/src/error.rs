//! Why a profile request failed, and what status that gives.
//!
//! A dependency that is down or broken is a *gateway* problem (502), one
//! that is too slow is a gateway *timeout* (504); a user the user service
//! does not know is still a 404 for our caller. The message always names the
//! dependency, so the caller (and the span event) says where to look.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use service_kit::ApiError;
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum AggregatorError {
    #[error("{dependency} did not answer within {}", humantime_ms(*.timeout))]
    Timeout {
        dependency: &'static str,
        timeout: Duration,
    },
    #[error("{dependency} is unreachable: {message}")]
    Unreachable {
        dependency: &'static str,
        message: String,
    },
    #[error("{dependency} failed with HTTP {status}")]
    Failed {
        dependency: &'static str,
        status: StatusCode,
    },
    #[error("{dependency} answered with a body we cannot read: {message}")]
    BadAnswer {
        dependency: &'static str,
        message: String,
    },
    /// The dependency refused the request as the caller's mistake (400/404):
    /// passed through with its status.
    #[error("{message}")]
    Rejected {
        dependency: &'static str,
        status: StatusCode,
        message: String,
    },
    #[error("{0}")]
    BadRequest(String),
    /// Some calls of `POST /verify-tracecontext` failed (each one named).
    #[error("{failed} of {total} validation calls failed: {details}")]
    ValidationCalls {
        failed: usize,
        total: usize,
        details: String,
    },
    #[error("internal error: {0}")]
    Internal(String),
    #[error(transparent)]
    Client(#[from] telemetry::TelemetryError),
}

fn humantime_ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

impl AggregatorError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Self::Unreachable { .. }
            | Self::Failed { .. }
            | Self::BadAnswer { .. }
            | Self::ValidationCalls { .. } => StatusCode::BAD_GATEWAY,
            Self::Rejected { status, .. } => *status,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Internal(_) | Self::Client(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Timeout { .. } => "dependency_timeout",
            Self::Unreachable { .. } => "dependency_unreachable",
            Self::Failed { .. } | Self::ValidationCalls { .. } => "dependency_failed",
            Self::BadAnswer { .. } => "dependency_bad_answer",
            Self::Rejected { status, .. } if *status == StatusCode::NOT_FOUND => "not_found",
            Self::Rejected { .. } | Self::BadRequest(_) => "invalid_request",
            Self::Internal(_) | Self::Client(_) => "internal",
        }
    }
}

impl From<AggregatorError> for ApiError {
    fn from(e: AggregatorError) -> Self {
        ApiError::new(e.status(), e.code(), e.to_string())
    }
}

impl IntoResponse for AggregatorError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}
