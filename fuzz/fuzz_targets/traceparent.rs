//! The `traceparent` parser, one value and the header lines of a request.
//!
//! Input: header lines separated by `\n`. Properties: no panic; exactly one
//! line is needed; a parsed value has non-zero ids and writes a version-00
//! form that parses back to the same ids with only the known flags, and is
//! written again unchanged; a version-00 value with only known flags is
//! already in that form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use telemetry::propagation::traceparent::{self, Traceparent, TraceparentError};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines: Vec<&str> = text.split('\n').collect();
    for line in &lines {
        check_value(line);
    }
    let result = traceparent::parse_lines(&lines);
    match lines.as_slice() {
        [line] => assert_eq!(result, traceparent::parse(line).map(Some)),
        _ => assert_eq!(result, Err(TraceparentError::Repeated(lines.len()))),
    }
    assert_eq!(traceparent::parse_lines(&[]), Ok(None));
});

fn check_value(value: &str) {
    let parsed = traceparent::parse(value);
    assert_eq!(
        parsed.is_ok(),
        telemetry::propagation::is_valid_traceparent(value)
    );
    let Ok(parent) = parsed else {
        return;
    };
    assert!(parent.trace_id != opentelemetry::trace::TraceId::INVALID);
    assert!(parent.parent_id != opentelemetry::trace::SpanId::INVALID);
    assert_ne!(parent.version, 0xff);

    let written = parent.to_string();
    assert_eq!(written.len(), 55, "{written}");
    let reread = traceparent::parse(&written).expect("the written form parses");
    assert_eq!(
        reread,
        Traceparent {
            version: 0,
            flags: parent.known_flags(),
            ..parent
        }
    );
    assert_eq!(reread.to_string(), written);

    let trimmed = value.trim_matches([' ', '\t']);
    if parent.version == 0 && parent.flags == parent.known_flags() {
        assert_eq!(trimmed, written);
    }
}
