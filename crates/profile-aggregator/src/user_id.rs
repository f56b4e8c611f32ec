//! The `{id}` of `GET /user-profile/{id}`, checked at the edge.
//!
//! A malformed id (`abc`, `0`, `-1`) is the caller's mistake: it is answered
//! 400 before any fan-out, so it costs no call, no CLIENT span and no wait on
//! the user service — the trace holds the SERVER span alone. The form is
//! decided by the parser both mocks use (`service_kit::user_id`), so the
//! aggregator and its dependencies cannot disagree about it, and the answer
//! is the one the aggregator gave when the user service refused the id:
//! 400 `invalid_request` with the mock's message.
//!
//! Whether a well-formed id *exists* stays the user service's answer (its
//! 404 is passed through): the aggregator does not own the users.

use std::fmt;

use axum::http::StatusCode;
use service_kit::user_id::parse_user_id;

use crate::AggregatorError;

/// A well-formed user id: what the downstream paths are built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UserId(u64);

impl UserId {
    /// The id, or the 400 a malformed one gets.
    pub(crate) fn parse(raw: &str) -> Result<Self, AggregatorError> {
        match parse_user_id(raw) {
            Ok(id) => Ok(Self(id)),
            Err(refusal) if refusal.status == StatusCode::BAD_REQUEST => {
                Err(AggregatorError::BadRequest(refusal.message))
            }
            // Well-formed but unknown to the mocks' data: asked downstream,
            // where the 404 belongs. A well-formed id is a u64 by definition.
            Err(refusal) => raw
                .parse()
                .map(Self)
                .map_err(|_| AggregatorError::Internal(refusal.to_string())),
        }
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_ids_pass_known_or_not() {
        assert_eq!(UserId::parse("42").unwrap(), UserId(42));
        assert_eq!(UserId::parse("007").unwrap().to_string(), "7");
        // Past the mocks' users: still asked, the user service says 404.
        assert_eq!(UserId::parse("99999").unwrap(), UserId(99_999));
    }

    #[test]
    fn malformed_ids_are_the_400_the_user_service_would_give() {
        for raw in [
            "abc",
            "0",
            "-1",
            "1.5",
            " 1",
            "",
            "999999999999999999999999",
        ] {
            let error = UserId::parse(raw).unwrap_err();
            assert_eq!(error.status(), StatusCode::BAD_REQUEST, "{raw:?}");
            assert_eq!(error.code(), "invalid_request", "{raw:?}");
            assert_eq!(error.dependency(), None, "no dependency was asked");
            // Word for word what the mocks answer (and used to be passed on).
            let mock = parse_user_id(raw).unwrap_err();
            assert_eq!(error.to_string(), mock.message, "{raw:?}");
        }
        assert_eq!(
            UserId::parse("abc").unwrap_err().to_string(),
            "user id must be a positive integer, got \"abc\""
        );
    }
}
