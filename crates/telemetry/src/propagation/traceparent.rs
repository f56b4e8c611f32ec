//! The `traceparent` header: parsed to the letter of W3C Trace Context, and
//! written in the version-00 form.
//!
//! `version "-" trace-id "-" parent-id "-" trace-flags`, for example
//! `00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01`.
//!
//! The stock OpenTelemetry propagator parses the ids with `from_str_radix`,
//! which accepts an id one digit short as if it were zero-padded, and then
//! masks the flags down to `sampled`. Joining a trace on a malformed id
//! silently glues unrelated requests together, so every field is checked
//! byte by byte here instead.

use std::fmt;

use opentelemetry::trace::{SpanId, TraceId};
use thiserror::Error;

/// Header name, lowercase as the specification asks senders to write it.
pub const TRACEPARENT: &str = "traceparent";

/// `trace-flags` bit 0: the caller may have recorded trace data.
pub const SAMPLED: u8 = 0x01;
/// `trace-flags` bit 1 (Level 2): at least the right-most 7 bytes of the
/// trace-id were chosen at random.
pub const RANDOM: u8 = 0x02;
/// The flags this implementation understands. The specification says every
/// other bit MUST be sent as zero.
pub const KNOWN_FLAGS: u8 = SAMPLED | RANDOM;

/// Length of a version-00 header: 2 + 1 + 32 + 1 + 16 + 1 + 2.
const VERSION_00_LEN: usize = 55;

/// A syntactically valid `traceparent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Traceparent {
    /// The version the sender wrote (a later version is read by the
    /// version-00 rules; we always answer with version 00).
    pub version: u8,
    pub trace_id: TraceId,
    pub parent_id: SpanId,
    /// The flags as received, unknown bits included; see [`Self::known_flags`].
    pub flags: u8,
}

impl Traceparent {
    /// The flags with every bit this version does not define cleared.
    pub fn known_flags(&self) -> u8 {
        self.flags & KNOWN_FLAGS
    }

    pub fn sampled(&self) -> bool {
        self.flags & SAMPLED != 0
    }

    pub fn random(&self) -> bool {
        self.flags & RANDOM != 0
    }
}

/// Writes the version-00 form with only the known flags: the form we send,
/// whatever version we received ("downgrade the version" is an allowed
/// mutation, and unknown flags must be zeroed).
impl fmt::Display for Traceparent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            self.trace_id,
            self.parent_id,
            self.known_flags()
        )
    }
}

/// Why a `traceparent` was rejected. Any of these makes the receiver ignore
/// the header (and the `tracestate` with it) and start a new trace.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TraceparentError {
    #[error("{0} traceparent header lines: exactly one is allowed")]
    Repeated(usize),
    #[error("the version is not two lowercase hex digits followed by '-'")]
    Version,
    #[error("version ff is forbidden")]
    VersionFf,
    #[error("{0} characters: at least 55 are needed")]
    TooShort(usize),
    #[error("the trace-id is not 32 lowercase hex digits followed by '-'")]
    TraceId,
    #[error("the trace-id is all zeros")]
    ZeroTraceId,
    #[error("the parent-id is not 16 lowercase hex digits followed by '-'")]
    ParentId,
    #[error("the parent-id is all zeros")]
    ZeroParentId,
    #[error("the trace-flags are not two lowercase hex digits")]
    Flags,
    #[error("version 00 is exactly 55 characters, got {0}")]
    Version00Length(usize),
    #[error("a later version's extra fields must start with '-' after the flags")]
    FutureVersionSeparator,
}

/// Parses the `traceparent` header lines of one request: none is `Ok(None)`,
/// more than one is invalid (the specification allows exactly one field,
/// unlike `tracestate`).
pub fn parse_lines(lines: &[&str]) -> Result<Option<Traceparent>, TraceparentError> {
    match lines {
        [] => Ok(None),
        [line] => parse(line).map(Some),
        _ => Err(TraceparentError::Repeated(lines.len())),
    }
}

/// Parses one `traceparent` value.
///
/// Leading and trailing optional white space (spaces and tabs, RFC 7230 OWS)
/// is not part of the value and is ignored. A version above 00 is parsed by
/// the version-00 rules, provided the flags are followed by the end of the
/// value or by `-` (the start of fields we must not interpret).
pub fn parse(value: &str) -> Result<Traceparent, TraceparentError> {
    use TraceparentError as E;

    let b = value.trim_matches([' ', '\t']).as_bytes();
    // The version prefix first: if it cannot be read, nothing else can.
    let version = match b {
        [hi, lo, b'-', ..] => hex::<1>(&[*hi, *lo]).ok_or(E::Version)?[0],
        _ => return Err(E::Version),
    };
    if version == 0xff {
        return Err(E::VersionFf);
    }
    if b.len() < VERSION_00_LEN {
        return Err(E::TooShort(b.len()));
    }
    let trace_id = field::<16>(&b[3..36]).ok_or(E::TraceId)?;
    let parent_id = field::<8>(&b[36..53]).ok_or(E::ParentId)?;
    let flags = hex::<1>(&b[53..55]).ok_or(E::Flags)?[0];
    if version == 0 {
        if b.len() != VERSION_00_LEN {
            return Err(E::Version00Length(b.len()));
        }
    } else if b.len() > VERSION_00_LEN && b[VERSION_00_LEN] != b'-' {
        return Err(E::FutureVersionSeparator);
    }
    if trace_id == [0; 16] {
        return Err(E::ZeroTraceId);
    }
    if parent_id == [0; 8] {
        return Err(E::ZeroParentId);
    }
    Ok(Traceparent {
        version,
        trace_id: TraceId::from_bytes(trace_id),
        parent_id: SpanId::from_bytes(parent_id),
        flags,
    })
}

/// `2N` lowercase hex digits followed by `-`.
fn field<const N: usize>(bytes: &[u8]) -> Option<[u8; N]> {
    match bytes.split_last() {
        Some((b'-', digits)) => hex::<N>(digits),
        _ => None,
    }
}

/// Exactly `2N` lowercase hex digits, decoded. Uppercase is rejected: the
/// grammar is `HEXDIGLC`.
pub(crate) fn hex<const N: usize>(digits: &[u8]) -> Option<[u8; N]> {
    if digits.len() != 2 * N {
        return None;
    }
    let nibble = |d: u8| match d {
        b'0'..=b'9' => Some(d - b'0'),
        b'a'..=b'f' => Some(d - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use TraceparentError as E;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const PARENT: &str = "00f067aa0ba902b7";
    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn tp(version: &str, trace: &str, parent: &str, flags: &str) -> String {
        format!("{version}-{trace}-{parent}-{flags}")
    }

    #[test]
    fn valid_values_are_read_field_by_field() {
        // (case, header value, version, flags)
        let cases: Vec<(&str, String, u8, u8)> = vec![
            ("plain, sampled", VALID.to_owned(), 0, 0x01),
            ("not sampled", tp("00", TRACE, PARENT, "00"), 0, 0x00),
            ("sampled + random", tp("00", TRACE, PARENT, "03"), 0, 0x03),
            ("random only", tp("00", TRACE, PARENT, "02"), 0, 0x02),
            (
                "unknown flags kept as read",
                tp("00", TRACE, PARENT, "ff"),
                0,
                0xff,
            ),
            ("leading space", format!(" {VALID}"), 0, 0x01),
            ("leading tab", format!("\t{VALID}"), 0, 0x01),
            ("trailing space", format!("{VALID} "), 0, 0x01),
            ("trailing tab", format!("{VALID}\t"), 0, 0x01),
            ("tabs and spaces", format!("\t {VALID} \t"), 0, 0x01),
            ("future version", tp("cc", TRACE, PARENT, "01"), 0xcc, 0x01),
            (
                "future version with more fields",
                format!(
                    "{}-what-the-future-will-be-like",
                    tp("cc", TRACE, PARENT, "01")
                ),
                0xcc,
                0x01,
            ),
            (
                "future version, bare dash",
                format!("{}-", tp("01", TRACE, PARENT, "01")),
                1,
                0x01,
            ),
            ("version fe", tp("fe", TRACE, PARENT, "00"), 0xfe, 0x00),
        ];
        for (case, value, version, flags) in cases {
            let parsed = parse(&value).unwrap_or_else(|e| panic!("{case}: {value:?}: {e}"));
            assert_eq!(parsed.version, version, "{case}");
            assert_eq!(parsed.flags, flags, "{case}");
            assert_eq!(parsed.trace_id.to_string(), TRACE, "{case}");
            assert_eq!(parsed.parent_id.to_string(), PARENT, "{case}");
        }
    }

    #[test]
    fn invalid_values_are_rejected_with_the_reason() {
        let zeros32 = "0".repeat(32);
        let zeros16 = "0".repeat(16);
        let cases: Vec<(&str, String, TraceparentError)> = vec![
            ("empty", String::new(), E::Version),
            ("white space only", " \t ".to_owned(), E::Version),
            ("garbage", "not a traceparent".to_owned(), E::Version),
            ("version ff", tp("ff", TRACE, PARENT, "01"), E::VersionFf),
            (
                "version too long",
                tp("000", TRACE, PARENT, "01"),
                E::Version,
            ),
            (
                "version too short",
                tp("0", TRACE, PARENT, "01"),
                E::Version,
            ),
            (
                "version illegal char .0",
                tp(".0", TRACE, PARENT, "01"),
                E::Version,
            ),
            (
                "version illegal char 0.",
                tp("0.", TRACE, PARENT, "01"),
                E::Version,
            ),
            (
                "version uppercase",
                tp("0A", TRACE, PARENT, "01"),
                E::Version,
            ),
            ("version not hex", tp("0g", TRACE, PARENT, "01"), E::Version),
            (
                "wrong first separator",
                VALID.replacen('-', "_", 1),
                E::Version,
            ),
            (
                "trace-id short",
                tp("00", &TRACE[1..], PARENT, "01"),
                E::TooShort(54),
            ),
            (
                "trace-id long",
                tp("00", &format!("{TRACE}3"), PARENT, "01"),
                E::TraceId,
            ),
            (
                "trace-id uppercase",
                tp("00", &TRACE.to_uppercase(), PARENT, "01"),
                E::TraceId,
            ),
            (
                "trace-id leading dot",
                tp("00", &format!(".{}", &TRACE[1..]), PARENT, "01"),
                E::TraceId,
            ),
            (
                "trace-id trailing dot",
                tp("00", &format!("{}.", &TRACE[..31]), PARENT, "01"),
                E::TraceId,
            ),
            (
                "trace-id short, parent-id long: right length, wrong split",
                tp("00", &TRACE[1..], &format!("{PARENT}7"), "01"),
                E::TraceId,
            ),
            (
                "trace-id all zeros",
                tp("00", &zeros32, PARENT, "01"),
                E::ZeroTraceId,
            ),
            (
                "parent-id short",
                tp("00", TRACE, &PARENT[1..], "01"),
                E::TooShort(54),
            ),
            (
                "parent-id long",
                tp("00", TRACE, &format!("{PARENT}7"), "01"),
                E::ParentId,
            ),
            (
                "parent-id uppercase",
                tp("00", TRACE, "00F067AA0BA902B7", "01"),
                E::ParentId,
            ),
            (
                "parent-id leading dot",
                tp("00", TRACE, ".0f067aa0ba902b7", "01"),
                E::ParentId,
            ),
            (
                "parent-id all zeros",
                tp("00", TRACE, &zeros16, "01"),
                E::ZeroParentId,
            ),
            (
                "flags too short",
                tp("00", TRACE, PARENT, "1"),
                E::TooShort(54),
            ),
            (
                "flags too long",
                tp("00", TRACE, PARENT, "001"),
                E::Version00Length(56),
            ),
            ("flags not hex", tp("00", TRACE, PARENT, "0x"), E::Flags),
            ("flags leading dot", tp("00", TRACE, PARENT, ".0"), E::Flags),
            (
                "flags trailing dot",
                tp("00", TRACE, PARENT, "0."),
                E::Flags,
            ),
            ("flags uppercase", tp("00", TRACE, PARENT, "0A"), E::Flags),
            (
                "version 00 with a trailing dot",
                format!("{VALID}."),
                E::Version00Length(56),
            ),
            (
                "version 00 with more fields",
                format!("{VALID}-what-the-future-will-be-like"),
                E::Version00Length(84),
            ),
            (
                "future version, no dash after flags",
                format!(
                    "{}.what-the-future-will-be-like",
                    tp("cc", TRACE, PARENT, "01")
                ),
                E::FutureVersionSeparator,
            ),
            (
                "inner white space",
                VALID.replacen('-', " -", 1),
                E::Version,
            ),
            (
                "non-ASCII",
                format!("{VALID}\u{e9}"),
                E::Version00Length(57),
            ),
        ];
        for (case, value, expected) in cases {
            assert_eq!(parse(&value), Err(expected), "{case}: {value:?}");
        }
    }

    #[test]
    fn exactly_one_header_line() {
        assert_eq!(parse_lines(&[]), Ok(None));
        assert!(parse_lines(&[VALID]).unwrap().is_some());
        assert_eq!(parse_lines(&[VALID, VALID]), Err(E::Repeated(2)));
        assert_eq!(parse_lines(&[VALID, "garbage"]), Err(E::Repeated(2)));
    }

    #[test]
    fn written_as_version_00_with_known_flags_only() {
        let future = parse(&format!("{}-extra", tp("cc", TRACE, PARENT, "ff"))).unwrap();
        assert_eq!(future.known_flags(), 0x03);
        assert_eq!(future.to_string(), tp("00", TRACE, PARENT, "03"));
        assert_eq!(parse(VALID).unwrap().to_string(), VALID);
    }
}
