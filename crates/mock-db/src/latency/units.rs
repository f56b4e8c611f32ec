//! The atoms of the latency-spec language: durations and plain numbers.
//!
//! Written by hand rather than with `humantime` so that every value printed
//! by [`format_duration`] parses back to exactly the same [`Duration`] (the
//! spec's `Display` must round-trip), decimals like `1.5s` work, and the
//! inputs are strict: no signs, no exponents, no `NaN`, no `inf` — a
//! baggage value is untrusted input.

use std::time::Duration;

/// The longest single duration the language accepts. Far above any
/// sensible `--max-delay`; it exists so arithmetic can never overflow.
pub const LONGEST: Duration = Duration::from_secs(24 * 60 * 60);

/// Why a duration or number did not parse (the spec error wraps it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("{0:?} is not a duration: write a number and a unit (ns, us, ms, s, m, h), e.g. 100ms or 1.5s")]
    NotADuration(String),
    #[error("{0:?} is longer than the 24h a latency may be")]
    TooLong(String),
    #[error("{0:?} is not a plain decimal number such as 0.01 or 1.5")]
    NotANumber(String),
}

/// Parses `100ms`, `1.5s`, `250us`, `2m`, or a sum such as `1s 500ms`.
///
/// Units: `ns`, `us` (or `µs`), `ms`, `s`, `m` or `min`, `h`.
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    let not_a_duration = || UnitError::NotADuration(shorten(text));
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(not_a_duration());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.' || c.is_whitespace())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let per_unit: u128 = match unit {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" | "min" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            _ => return Err(not_a_duration()),
        };
        let nanos = scaled(number, per_unit).ok_or_else(not_a_duration)?;
        total = total.saturating_add(nanos);
        if total > LONGEST.as_nanos() {
            return Err(UnitError::TooLong(shorten(text)));
        }
        rest = after.trim_start();
    }
    // At most LONGEST, so it fits in u64 nanoseconds.
    Ok(Duration::from_nanos(total as u64))
}

/// `digits[.digits]` times `per_unit` nanoseconds, exactly (fractions below
/// a nanosecond are dropped). `None` when `number` is not of that shape.
fn scaled(number: &str, per_unit: u128) -> Option<u128> {
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || number.ends_with('.') {
        return None;
    }
    // Anything this long is far beyond LONGEST; refuse before it overflows.
    if whole.len() > 15 {
        return Some(u128::MAX);
    }
    let whole: u128 = whole.parse().ok()?;
    let mut value = whole.checked_mul(per_unit)?;
    // Each fractional digit is worth a tenth of the previous one.
    let mut place = per_unit;
    for digit in fraction.bytes() {
        place /= 10;
        if place == 0 {
            break;
        }
        value += u128::from(digit - b'0') * place;
    }
    Some(value)
}

/// The shortest exact form: `2s`, `1500ms`, `250us`, `7ns`, `0ms`.
/// [`parse_duration`] reads it back to the same value.
pub fn format_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        "0ms".to_owned()
    } else if ns.is_multiple_of(1_000_000_000) {
        format!("{}s", ns / 1_000_000_000)
    } else if ns.is_multiple_of(1_000_000) {
        format!("{}ms", ns / 1_000_000)
    } else if ns.is_multiple_of(1_000) {
        format!("{}us", ns / 1_000)
    } else {
        format!("{ns}ns")
    }
}

/// The longest delay a message states exactly: the sampler never waits
/// longer (a draw beyond it becomes this), so more is "more than 24h".
const LONGEST_STATED: Duration = Duration::from_secs(24 * 60 * 60);

/// A limit or a requested delay in a message, for a reader: `51.2s`,
/// `250ms`, or `more than 24h` — a Pareto with a tiny shape has a median
/// beyond any clock (`Duration::MAX` otherwise printed as 29 digits of
/// nanoseconds).
pub fn describe_duration(d: Duration) -> String {
    let trimmed = |value: f64, unit: &str| {
        let text = format!("{value:.3}");
        format!("{}{unit}", text.trim_end_matches('0').trim_end_matches('.'))
    };
    if d > LONGEST_STATED {
        "more than 24h".to_owned()
    } else if d >= Duration::from_secs(1) {
        trimmed(d.as_secs_f64(), "s")
    } else if d >= Duration::from_millis(1) {
        trimmed(d.as_secs_f64() * 1000.0, "ms")
    } else {
        format_duration(d)
    }
}

/// A plain decimal: `0.01`, `1`, `1.5`. Rust's own float parser would also
/// take `1e-3`, `inf` and `NaN`; none of them is a probability or a shape.
pub fn parse_number(text: &str) -> Result<f64, UnitError> {
    let text = text.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(fraction) {
        return Err(UnitError::NotANumber(shorten(text)));
    }
    text.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| UnitError::NotANumber(shorten(text)))
}

/// Rust prints an `f64` in the shortest form that parses back to the same
/// value, and never with an exponent: exactly what [`parse_number`] reads.
pub fn format_number(value: f64) -> String {
    format!("{value}")
}

/// Untrusted text is quoted back in messages only in part.
pub(crate) fn shorten(text: &str) -> String {
    const KEEP: usize = 48;
    if text.chars().count() <= KEEP {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(KEEP).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_described_for_a_reader() {
        for (d, text) in [
            (Duration::MAX, "more than 24h"),
            (Duration::from_secs(24 * 3600 + 1), "more than 24h"),
            (Duration::from_secs(24 * 3600), "86400s"),
            (Duration::from_millis(51_200), "51.2s"),
            (Duration::from_secs(30), "30s"),
            (Duration::from_micros(250_500), "250.5ms"),
            (Duration::from_micros(250), "250us"),
        ] {
            assert_eq!(describe_duration(d), text, "{d:?}");
        }
    }

    #[test]
    fn durations() {
        for (text, ms) in [
            ("100ms", 100.0),
            ("1.5s", 1500.0),
            (" 2s ", 2000.0),
            ("1s 500ms", 1500.0),
            ("1s500ms", 1500.0),
            ("250us", 0.25),
            ("250µs", 0.25),
            ("2m", 120_000.0),
            ("1min", 60_000.0),
            ("1h", 3_600_000.0),
            ("0ms", 0.0),
            ("0.001ms", 0.001),
        ] {
            let got = parse_duration(text).unwrap();
            assert!(
                (got.as_secs_f64() * 1000.0 - ms).abs() < 1e-9,
                "{text}: {got:?}"
            );
        }
        for bad in [
            "", "100", "ms", "1.s", ".5s", "-1s", "1e3ms", "1 s", "1d", "NaNs", "1,5s", "1..5s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(matches!(parse_duration("25h"), Err(UnitError::TooLong(_))));
        assert!(parse_duration("99999999999999999999999999h").is_err());
    }

    #[test]
    fn durations_print_exactly() {
        for d in [
            Duration::ZERO,
            Duration::from_secs(2),
            Duration::from_millis(1500),
            Duration::from_micros(250),
            Duration::from_nanos(7),
            Duration::from_nanos(1_000_000_001),
        ] {
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
        assert_eq!(format_duration(Duration::from_millis(100)), "100ms");
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number("0.01"), Ok(0.01));
        assert_eq!(parse_number("1"), Ok(1.0));
        for bad in ["", "1e-3", "inf", "NaN", "-1", "+1", ".5", "1.", "0x1"] {
            assert!(parse_number(bad).is_err(), "{bad:?}");
        }
        for v in [0.01, 1.5, 0.000_000_1, 123_456.789] {
            assert_eq!(parse_number(&format_number(v)), Ok(v));
        }
    }
}
