//! Why a profile request failed, and what status that gives.
//!
//! A dependency that is down or broken is a *gateway* problem (502), one
//! that is too slow is a gateway *timeout* (504); a user the user service
//! does not know is still a 404 for our caller. The message always names the
//! dependency, so the caller (and the span event) says where to look.
//! When a remedy refuses to make the call — an open circuit breaker, a
//! bulkhead that stayed full — the answer is 503: the aggregator chose not
//! to call, quickly, rather than failing slowly.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use service_kit::ApiError;
use std::time::Duration;
use thiserror::Error;

use crate::query::QueryError;

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
        /// The connection itself failed (refused, reset, no route): another
        /// attempt may get through. Otherwise the request could not be sent.
        connect_failed: bool,
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
    /// The dependency's circuit breaker is open: failed fast, no call made.
    #[error("{dependency}: circuit open after repeated failures, failing fast{}", retry_hint(*.retry_in))]
    CircuitOpen {
        dependency: &'static str,
        retry_in: Option<Duration>,
    },
    /// The dependency's bulkhead stayed full for the whole wait.
    #[error(
        "{dependency}: {max_in_flight} calls already in flight (--max-in-flight), no slot within {}",
        humantime_ms(*.waited)
    )]
    BulkheadFull {
        dependency: &'static str,
        max_in_flight: usize,
        waited: Duration,
    },
    #[error("{0}")]
    BadRequest(String),
    /// The profile query asked for something unknown or malformed.
    #[error(transparent)]
    Query(#[from] QueryError),
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

fn retry_hint(retry_in: Option<Duration>) -> String {
    match retry_in {
        Some(d) => format!(" (next probe in {})", humantime_ms(d)),
        None => " (a probe call is in flight)".to_owned(),
    }
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
            Self::CircuitOpen { .. } | Self::BulkheadFull { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::BadRequest(_) | Self::Query(_) => StatusCode::BAD_REQUEST,
            Self::Internal(_) | Self::Client(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable, machine-readable code of the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Timeout { .. } => "dependency_timeout",
            Self::Unreachable { .. } => "dependency_unreachable",
            Self::Failed { .. } | Self::ValidationCalls { .. } => "dependency_failed",
            Self::BadAnswer { .. } => "dependency_bad_answer",
            Self::CircuitOpen { .. } => "circuit_open",
            Self::BulkheadFull { .. } => "bulkhead_full",
            Self::Rejected { status, .. } if *status == StatusCode::NOT_FOUND => "not_found",
            Self::Rejected { .. } | Self::BadRequest(_) | Self::Query(_) => "invalid_request",
            Self::Internal(_) | Self::Client(_) => "internal",
        }
    }
}

impl AggregatorError {
    /// The dependency the error is about, if any.
    pub fn dependency(&self) -> Option<&'static str> {
        match self {
            Self::Timeout { dependency, .. }
            | Self::Unreachable { dependency, .. }
            | Self::Failed { dependency, .. }
            | Self::BadAnswer { dependency, .. }
            | Self::Rejected { dependency, .. }
            | Self::CircuitOpen { dependency, .. }
            | Self::BulkheadFull { dependency, .. } => Some(dependency),
            _ => None,
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
