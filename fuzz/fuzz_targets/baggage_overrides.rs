//! The per-request overrides a mock reads from W3C baggage
//! (`latency.<mock>`, `fail.<mock>`, `hang.<mock>`), through the same path
//! as a request: `baggage` header lines, the installed propagators, the
//! extracted context.
//!
//! Input: `baggage` header lines separated by `\n`. Properties: no panic;
//! each mock obeys exactly the keys named after it, in the fixed order
//! latency, fail, hang, and a value it obeys is what the latency-spec or
//! rate parser makes of the decoded baggage value; obeyed values print in a
//! form that parses back to the same value; the first malformed value is
//! the error, which names its key and stays short however long the value.
#![no_main]

use std::sync::Once;

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use mock_db::latency::{LatencySpec, Probability};
use mock_db::mock::overrides::{OverrideError, OverrideKeys, Overrides};
use opentelemetry::baggage::BaggageExt;

static INSTALL: Once = Once::new();

/// The error quotes at most a shortened, escaped value.
const MESSAGE_BOUND: usize = 2048;

fuzz_target!(|data: &[u8]| {
    INSTALL.call_once(telemetry::propagation::install);
    let mut headers = HeaderMap::new();
    for line in data.split(|&b| b == b'\n') {
        if let Ok(value) = HeaderValue::from_bytes(line) {
            headers.append("baggage", value);
        }
    }
    let cx = telemetry::propagation::extract(&headers);
    for mock in ["user", "orders"] {
        check(&OverrideKeys::for_mock(mock), &cx);
    }
});

fn check(keys: &OverrideKeys, cx: &opentelemetry::Context) {
    let baggage = cx.baggage();
    let value = |key: &str| baggage.get(key).map(|v| v.as_str().to_owned());
    let latency = value(&keys.latency).map(|v| v.parse::<LatencySpec>());
    let fail = value(&keys.fail).map(|v| v.parse::<Probability>());
    let hang = value(&keys.hang).map(|v| v.parse::<Probability>());

    match Overrides::from_context(keys, cx) {
        Ok(overrides) => {
            assert_eq!(overrides.latency, latency.map(Result::unwrap));
            assert_eq!(overrides.error_rate, fail.map(Result::unwrap));
            assert_eq!(overrides.hang_rate, hang.map(Result::unwrap));
            let present = [
                (overrides.latency.is_some(), &keys.latency),
                (overrides.error_rate.is_some(), &keys.fail),
                (overrides.hang_rate.is_some(), &keys.hang),
            ];
            let expected: Vec<&String> = present
                .into_iter()
                .filter(|(on, _)| *on)
                .map(|(_, k)| k)
                .collect();
            assert_eq!(overrides.keys.iter().collect::<Vec<_>>(), expected);
            assert_eq!(overrides.is_empty(), expected.is_empty());

            if let Some(spec) = &overrides.latency {
                assert_eq!(spec.to_string().parse::<LatencySpec>().as_ref(), Ok(spec));
            }
            for rate in [overrides.error_rate, overrides.hang_rate]
                .into_iter()
                .flatten()
            {
                assert!((0.0..=1.0).contains(&rate.get()));
                assert_eq!(rate.to_string().parse::<Probability>(), Ok(rate));
            }
        }
        Err(error) => {
            let key = match &error {
                OverrideError::Latency { key, .. } => {
                    assert!(matches!(latency, Some(Err(_))));
                    key
                }
                OverrideError::Rate { key, .. } => {
                    assert!(!matches!(latency, Some(Err(_))));
                    if *key == keys.fail {
                        assert!(matches!(fail, Some(Err(_))));
                    } else {
                        assert_eq!(*key, keys.hang);
                        assert!(!matches!(fail, Some(Err(_))));
                        assert!(matches!(hang, Some(Err(_))));
                    }
                    key
                }
            };
            let message = error.to_string();
            assert!(
                message.starts_with(&format!("baggage {key}: ")),
                "{message}"
            );
            assert!(message.len() <= MESSAGE_BOUND, "{} bytes", message.len());
        }
    }
}
