//! The one form of a trace id.
//!
//! Trace ids arrive as text in several spellings: OTLP's 32 hex digits,
//! Jaeger's answers (which drop leading zeros, so a trace whose high half is
//! zero has 16 digits), a user's typing (either case), a `traceresponse`
//! header. Parsing them all into one 128-bit number means they compare
//! equal when they name the same trace, and print the same way everywhere.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A 128-bit W3C/OpenTelemetry trace id. Displays as 32 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TraceId(pub u128);

/// Text that is not 1 to 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid trace id {0:?}: expected 1 to 32 hexadecimal digits")]
pub struct InvalidTraceId(pub String);

impl TraceId {
    /// Parses 1 to 32 hex digits, either case, surrounding whitespace
    /// ignored; fewer than 32 digits are the low end (leading zeros left out).
    pub fn parse(text: &str) -> Result<Self, InvalidTraceId> {
        let digits = text.trim();
        let valid =
            (1..=32).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_hexdigit());
        valid
            .then(|| u128::from_str_radix(digits, 16).ok())
            .flatten()
            .map(TraceId)
            .ok_or_else(|| InvalidTraceId(text.to_owned()))
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl FromStr for TraceId {
    type Err = InvalidTraceId;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        TraceId::parse(text)
    }
}

impl From<u128> for TraceId {
    fn from(value: u128) -> Self {
        TraceId(value)
    }
}

/// Big-endian bytes, as in OTLP and `opentelemetry::trace::TraceId::to_bytes()`.
impl From<[u8; 16]> for TraceId {
    fn from(bytes: [u8; 16]) -> Self {
        TraceId(u128::from_be_bytes(bytes))
    }
}

/// As its hex text, the way every JSON format that carries trace ids writes them.
impl Serialize for TraceId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TraceId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        TraceId::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_spellings_are_one_id() {
        let short = TraceId::parse("00000000000000000000000000abcdef").unwrap();
        assert_eq!(short, TraceId::parse("abcdef").unwrap());
        assert_eq!(short, TraceId::parse("0000000000ABCDEF").unwrap());
        assert_eq!(short, TraceId::parse(" abcdef\n").unwrap());
        assert_eq!(TraceId::from(0xabcdef_u128).to_string().len(), 32);
        assert_eq!(
            TraceId::parse("ABC").unwrap().to_string(),
            format!("{:0>32}", "abc")
        );
        let mut bytes = [0u8; 16];
        bytes[15] = 1;
        assert_eq!(TraceId::from(bytes), TraceId(1));
        assert!(TraceId(1) < TraceId(0x10));
    }

    #[test]
    fn bad_trace_ids_are_errors() {
        for bad in ["", "xyz", "+1", &"a".repeat(33), "12 34"] {
            let message = TraceId::parse(bad).unwrap_err().to_string();
            assert!(message.contains("invalid trace id"), "{bad:?}: {message}");
        }
    }

    #[test]
    fn serde_uses_the_hex_text() {
        let id = TraceId(0xaa);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{:0>32}\"", "aa"));
        assert_eq!(serde_json::from_str::<TraceId>("\"AA\"").unwrap(), id);
        assert!(serde_json::from_str::<TraceId>("\"zz\"").is_err());
        assert!(serde_json::from_str::<TraceId>("170").is_err());
    }
}
