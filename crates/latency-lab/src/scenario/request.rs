//! What a phase sends: its URL, its headers (baggage percent-encoded) and
//! the load engine's plan for its pacing.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Context as _;

use super::spec::Phase;
use crate::load::{engine, record::Variant, schedule::Rate};

/// How long one request may take before it counts as unanswered.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Requests in flight at most in an open loop (a stall queues up to this).
const MAX_IN_FLIGHT: u64 = 256;

/// The load engine's plan for `phase`: an open loop at its `rate`, or a
/// closed loop of its `concurrency` (1 unless said).
pub fn plan(phase: &Phase, url: &reqwest::Url, headers: &[(String, String)]) -> engine::Plan {
    engine::Plan {
        loop_: match phase.rate {
            Some(rate) => engine::Loop::Open {
                rate: Rate {
                    start: rate,
                    end: rate,
                },
                max_in_flight: MAX_IN_FLIGHT,
            },
            None => engine::Loop::Closed {
                concurrency: phase.concurrency.unwrap_or(1),
            },
        },
        variants: vec![Variant {
            label: url.to_string(),
            url: url.clone(),
            headers: headers.to_vec(),
        }],
        requests: Some(phase.requests),
        duration: None,
        warmup: engine::Warmup::NONE,
        request_timeout: REQUEST_TIMEOUT,
        observer: None,
    }
}

/// The aggregator URL of the phase: its path and query on the suite's base.
pub fn phase_url(base: &reqwest::Url, phase: &Phase) -> anyhow::Result<reqwest::Url> {
    let mut url = base
        .join(&phase.path)
        .with_context(|| format!("phase {}: path {:?}", phase.name, phase.path))?;
    url.set_query((!phase.query.is_empty()).then_some(phase.query.as_str()));
    Ok(url)
}

/// The phase's headers, its baggage entries percent-encoded into one
/// `baggage` header.
pub fn phase_headers(phase: &Phase) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = phase
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !phase.baggage.is_empty() {
        let entries: Vec<String> = phase
            .baggage
            .iter()
            .map(|(k, v)| format!("{k}={}", encode_baggage_value(v)))
            .collect();
        headers.push(("baggage".to_owned(), entries.join(",")));
    }
    headers
}

/// W3C baggage: a value's `,` `;` `=` `%` spaces and quotes are
/// percent-encoded (the mocks' specs are full of `,` and `=`).
fn encode_baggage_value(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        match byte {
            b'!' | b'#'..=b'+' | b'-'..=b':' | b'<' | b'>'..=b'[' | b']'..=b'~' if byte != b'%' => {
                out.push(byte as char)
            }
            _ => {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baggage_values_are_percent_encoded_where_the_grammar_needs_it() {
        assert_eq!(
            encode_baggage_value("200ms+spike(p=0.05,1s)"),
            "200ms+spike(p%3D0.05%2C1s)"
        );
        assert_eq!(encode_baggage_value("a b;c%\"\\"), "a%20b%3Bc%25%22%5C");
        assert_eq!(encode_baggage_value("1"), "1");
    }
}
