//! What a failed call says about the dependency: the one judgement the
//! retry, the hedge, the breaker and the fallback act on, so they cannot
//! disagree about what a failure is.
//!
//! | error | [`Failure`] | retried | hedge leg gives up, breaker counts | fallback |
//! | --- | --- | --- | --- | --- |
//! | timeout, refused connection, 5xx | `Transient` | yes | yes | yes |
//! | unreadable answer, other status, request not sent | `Lasting` | no | yes | yes |
//! | circuit open, bulkhead full | `Refused` | — | — | yes |
//! | 400/404 passed through, our own errors | `NotTheDependency` | no | no | no |
//!
//! A 4xx is a healthy dependency refusing a bad request: another attempt
//! would get the same answer, and a degraded answer would hide the caller's
//! mistake.

use crate::AggregatorError;

/// How a failed call counts against its dependency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The dependency failed in a way another attempt may fix.
    Transient,
    /// The dependency failed in a way another attempt would repeat.
    Lasting,
    /// A remedy chose not to call the dependency (its breaker is open, its
    /// bulkhead stayed full): no attempt was made.
    Refused,
    /// Not a failure of the dependency: it answered that the request was
    /// wrong, or the aggregator itself failed.
    NotTheDependency,
}

impl Failure {
    /// Whether the retry loop may attempt again.
    pub fn is_retryable(self) -> bool {
        self == Self::Transient
    }

    /// Whether the dependency proved unhealthy: what the breaker counts,
    /// and what makes a hedge leg leave the race to the other.
    pub fn is_dependency_failure(self) -> bool {
        matches!(self, Self::Transient | Self::Lasting)
    }

    /// Whether the degraded answer may replace the call's result.
    pub fn allows_fallback(self) -> bool {
        self != Self::NotTheDependency
    }
}

impl AggregatorError {
    /// How this error counts against its dependency.
    pub(crate) fn failure(&self) -> Failure {
        match self {
            Self::Timeout { .. } => Failure::Transient,
            Self::Unreachable { connect_failed, .. } => {
                if *connect_failed {
                    Failure::Transient
                } else {
                    Failure::Lasting
                }
            }
            Self::Failed { status, .. } => {
                if status.is_server_error() {
                    Failure::Transient
                } else {
                    Failure::Lasting
                }
            }
            Self::BadAnswer { .. } => Failure::Lasting,
            Self::CircuitOpen { .. } | Self::BulkheadFull { .. } => Failure::Refused,
            Self::Rejected { .. }
            | Self::BadRequest(_)
            | Self::Query(_)
            | Self::ValidationCalls { .. }
            | Self::Internal(_)
            | Self::Client(_) => Failure::NotTheDependency,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::http::StatusCode;

    use super::*;

    const DEPENDENCY: &str = "order-service";

    fn unreachable(connect_failed: bool) -> AggregatorError {
        AggregatorError::Unreachable {
            dependency: DEPENDENCY,
            message: "connection refused".into(),
            connect_failed,
        }
    }

    fn failed(status: StatusCode) -> AggregatorError {
        AggregatorError::Failed {
            dependency: DEPENDENCY,
            status,
        }
    }

    #[test]
    fn each_error_has_one_class() {
        for (error, expected) in [
            (
                AggregatorError::Timeout {
                    dependency: DEPENDENCY,
                    timeout: Duration::from_millis(200),
                },
                Failure::Transient,
            ),
            (unreachable(true), Failure::Transient),
            (unreachable(false), Failure::Lasting),
            (failed(StatusCode::SERVICE_UNAVAILABLE), Failure::Transient),
            (failed(StatusCode::TOO_MANY_REQUESTS), Failure::Lasting),
            (
                AggregatorError::BadAnswer {
                    dependency: DEPENDENCY,
                    message: "not JSON".into(),
                },
                Failure::Lasting,
            ),
            (
                AggregatorError::CircuitOpen {
                    dependency: DEPENDENCY,
                    retry_in: None,
                },
                Failure::Refused,
            ),
            (
                AggregatorError::BulkheadFull {
                    dependency: DEPENDENCY,
                    max_in_flight: 1,
                    waited: Duration::from_millis(5),
                },
                Failure::Refused,
            ),
            (
                AggregatorError::Rejected {
                    dependency: DEPENDENCY,
                    status: StatusCode::NOT_FOUND,
                    message: "no user 0".into(),
                },
                Failure::NotTheDependency,
            ),
            (
                AggregatorError::BadRequest("mode".into()),
                Failure::NotTheDependency,
            ),
            (
                AggregatorError::Internal("bug".into()),
                Failure::NotTheDependency,
            ),
        ] {
            assert_eq!(error.failure(), expected, "{error}");
        }
    }

    #[test]
    fn failures_fall_back_answers_do_not() {
        for error in [
            AggregatorError::Timeout {
                dependency: DEPENDENCY,
                timeout: Duration::from_millis(200),
            },
            failed(StatusCode::SERVICE_UNAVAILABLE),
            AggregatorError::CircuitOpen {
                dependency: DEPENDENCY,
                retry_in: None,
            },
        ] {
            assert!(error.failure().allows_fallback(), "{error}");
        }
        for error in [
            AggregatorError::Rejected {
                dependency: DEPENDENCY,
                status: StatusCode::NOT_FOUND,
                message: "no user 0".into(),
            },
            AggregatorError::BadRequest("mode".into()),
            AggregatorError::Internal("bug".into()),
        ] {
            assert!(!error.failure().allows_fallback(), "{error}");
        }
    }

    #[test]
    fn only_transient_failures_are_retried_and_refusals_are_not_counted() {
        use Failure::*;
        assert!(Transient.is_retryable());
        assert!(!Lasting.is_retryable() && !Refused.is_retryable());
        assert!(!NotTheDependency.is_retryable());
        assert!(Transient.is_dependency_failure() && Lasting.is_dependency_failure());
        assert!(!Refused.is_dependency_failure());
        assert!(!NotTheDependency.is_dependency_failure());
    }
}
