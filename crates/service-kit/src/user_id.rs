//! The user ids both mocks understand, and the seed their fake data grows
//! from. Shared so the user and order services agree on which users exist.

use crate::ApiError;

/// Users `1..=MAX_USER_ID` exist; any other well-formed id is a 404.
pub const MAX_USER_ID: u64 = 10_000;

/// Parses a path segment as a user id: a positive decimal integer.
///
/// `abc`, `-1`, `0` and absurdly long input are the caller's mistake (400);
/// a well-formed id past [`MAX_USER_ID`] is a user that does not exist (404).
pub fn parse_user_id(raw: &str) -> Result<u64, ApiError> {
    let invalid = || {
        ApiError::bad_request(
            "invalid_id",
            format!(
                "user id must be a positive integer, got {:?}",
                truncate(raw)
            ),
        )
    };
    if raw.is_empty() || raw.len() > 20 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let id: u64 = raw.parse().map_err(|_| invalid())?;
    if id == 0 {
        return Err(invalid());
    }
    if id > MAX_USER_ID {
        return Err(ApiError::not_found(
            "user_not_found",
            format!("no user with id {id}"),
        ));
    }
    Ok(id)
}

fn truncate(raw: &str) -> String {
    raw.chars().take(32).collect()
}

/// A deterministic pseudo-random number from a seed (SplitMix64): the same id
/// always yields the same fake user and orders, run after run.
pub fn mix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn ids_parse_or_fail_with_the_right_status() {
        assert_eq!(parse_user_id("42"), Ok(42));
        assert_eq!(parse_user_id("10000"), Ok(10_000));
        for bad in [
            "",
            "0",
            "-1",
            "abc",
            "1.5",
            " 1",
            "999999999999999999999999",
        ] {
            assert_eq!(
                parse_user_id(bad).unwrap_err().status,
                StatusCode::BAD_REQUEST,
                "{bad:?}"
            );
        }
        assert_eq!(
            parse_user_id("10001").unwrap_err().status,
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn mix_is_deterministic_and_spreads() {
        assert_eq!(mix(7), mix(7));
        assert_ne!(mix(7), mix(8));
    }
}
