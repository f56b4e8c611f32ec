//! Reading every header line.
//!
//! `opentelemetry_http::HeaderExtractor` implements `get_all`, but it skips
//! any line that is not visible ASCII: a request with two `traceparent`
//! lines, one of them holding a byte above 0x7e, would then look like a
//! request with one valid line, and a `tracestate` with such a line would
//! lose it instead of being dropped. The specification judges what was sent,
//! so this extractor hands on every line; one that is not UTF-8 at all is
//! replaced by U+FFFD, which both parsers reject.

use opentelemetry::propagation::Extractor;

/// Stands for a header line that is not UTF-8: invalid in both grammars.
const NOT_TEXT: &str = "\u{fffd}";

/// An [`Extractor`] over an `http::HeaderMap` (axum's too) that sees every
/// header line: `get_all` is backed by `HeaderMap::get_all`, not `get`.
pub struct HeaderLines<'a>(pub &'a http::HeaderMap);

impl Extractor for HeaderLines<'_> {
    /// The first line only, when it is visible ASCII (what single-value
    /// propagators such as Baggage expect).
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|name| name.as_str()).collect()
    }

    /// Every line, in the order received; `None` when there is none.
    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        let lines: Vec<&str> = self
            .0
            .get_all(key)
            .iter()
            .map(|value| std::str::from_utf8(value.as_bytes()).unwrap_or(NOT_TEXT))
            .collect();
        (!lines.is_empty()).then_some(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};

    #[test]
    fn every_line_in_order_and_none_hidden() {
        let mut headers = HeaderMap::new();
        headers.append("tracestate", HeaderValue::from_static("a=1"));
        headers.append("tracestate", HeaderValue::from_bytes(b"b=\xff").unwrap());
        headers.append(
            "tracestate",
            HeaderValue::from_bytes("c=\u{e9}".as_bytes()).unwrap(),
        );
        headers.append("tracestate", HeaderValue::from_static(""));
        let lines = HeaderLines(&headers);
        assert_eq!(
            lines.get_all("tracestate"),
            Some(vec!["a=1", NOT_TEXT, "c=\u{e9}", ""])
        );
        assert_eq!(lines.get_all("TraceState").map(|l| l.len()), Some(4));
        assert_eq!(lines.get("tracestate"), Some("a=1"));
        assert_eq!(lines.get_all("traceparent"), None);
    }
}
