//! The `tracestate` parser, one combined value and the header lines of a
//! request.
//!
//! Input: header lines separated by `\n`. Properties: no panic; the lines
//! are read as their `,`-join; a parsed list has 1 to 32 members, distinct
//! keys, each key and value valid on its own; its written form parses back
//! to the same list; the SDK form is the list less the keys it says it
//! refused, in order; no list means nothing but empty members was sent.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use telemetry::propagation::tracestate::{self, MAX_MEMBERS};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines: Vec<&str> = text.split('\n').collect();
    let combined = lines.join(",");
    let parsed = tracestate::parse_lines(&lines);
    assert_eq!(parsed, tracestate::parse(&combined));

    match parsed {
        Err(_) => {}
        Ok(None) => assert!(
            combined.chars().all(|c| matches!(c, ',' | ' ' | '\t')),
            "no list from {combined:?}"
        ),
        Ok(Some(list)) => {
            assert!((1..=MAX_MEMBERS).contains(&list.len()));
            let mut keys = HashSet::new();
            for (key, value) in list.members() {
                assert_eq!(tracestate::check_key(key), Ok(()));
                assert_eq!(tracestate::check_value(value), Ok(()));
                assert!(keys.insert(key), "{key:?} twice");
            }

            let written = list.to_string();
            let reread = tracestate::parse(&written)
                .expect("the written form parses")
                .expect("and is not empty");
            assert_eq!(reread, list);
            assert_eq!(reread.to_string(), written);

            let sdk = list.to_sdk();
            let kept: Vec<String> = list
                .members()
                .filter(|(key, _)| !sdk.refused.iter().any(|r| r == key))
                .map(|(key, value)| format!("{key}={value}"))
                .collect();
            assert_eq!(sdk.trace_state.header(), kept.join(","));
            assert_eq!(kept.len() + sdk.refused.len(), list.len());
            assert_eq!(sdk.is_exact(), sdk.refused.is_empty());
        }
    }
});
