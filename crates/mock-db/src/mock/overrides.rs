//! Per-request overrides carried in W3C baggage.
//!
//! `baggage: latency.orders=900ms,fail.user=1` on one request to the
//! aggregator makes the order service slow and the user service fail *for
//! that trace only*: the aggregator propagates baggage to both, and each mock
//! reads only the keys ending in its own short name. The values are read
//! from the OpenTelemetry context the server middleware extracted — the same
//! context the trace is built from — not from the raw header, so what a mock
//! obeys is exactly what was propagated.
//!
//! Baggage values are percent-decoded by the propagator: a spec containing
//! `,` or `=` must be sent encoded (`%2C`, `%3D`), as W3C Baggage requires;
//! `latency.orders=lognormal(80ms%2C900ms)`.

use opentelemetry::baggage::BaggageExt;

use crate::latency::{LatencySpec, Probability, ProbabilityError, SpecError};

/// The three keys one mock obeys: `latency.<name>`, `fail.<name>`,
/// `hang.<name>`, where `<name>` is its short name (`user`, `orders`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverrideKeys {
    pub latency: String,
    pub fail: String,
    pub hang: String,
}

impl OverrideKeys {
    pub fn for_mock(short_name: &str) -> Self {
        Self {
            latency: format!("latency.{short_name}"),
            fail: format!("fail.{short_name}"),
            hang: format!("hang.{short_name}"),
        }
    }
}

/// What one request asked for; `None` means "as configured".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    pub latency: Option<LatencySpec>,
    pub error_rate: Option<Probability>,
    pub hang_rate: Option<Probability>,
    /// The keys that were present, in the order above, for the span.
    pub keys: Vec<String>,
}

/// A malformed override: the request is refused with 400, because obeying
/// half of what the caller asked for would make the trace lie.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OverrideError {
    #[error("baggage {key}: {source}")]
    Latency { key: String, source: SpecError },
    #[error("baggage {key}: {source}")]
    Rate {
        key: String,
        source: ProbabilityError,
    },
}

impl Overrides {
    /// Reads the keys through `lookup` (a baggage, a map in a test).
    pub fn read(
        keys: &OverrideKeys,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, OverrideError> {
        let mut out = Self::default();
        if let Some(value) = lookup(&keys.latency) {
            let spec = value.parse().map_err(|source| OverrideError::Latency {
                key: keys.latency.clone(),
                source,
            })?;
            out.latency = Some(spec);
            out.keys.push(keys.latency.clone());
        }
        let rate = |key: &str, value: String| {
            value.parse().map_err(|source| OverrideError::Rate {
                key: key.to_owned(),
                source,
            })
        };
        if let Some(value) = lookup(&keys.fail) {
            out.error_rate = Some(rate(&keys.fail, value)?);
            out.keys.push(keys.fail.clone());
        }
        if let Some(value) = lookup(&keys.hang) {
            out.hang_rate = Some(rate(&keys.hang, value)?);
            out.keys.push(keys.hang.clone());
        }
        Ok(out)
    }

    /// Reads the keys from the baggage of an OpenTelemetry context.
    pub fn from_context(
        keys: &OverrideKeys,
        cx: &opentelemetry::Context,
    ) -> Result<Self, OverrideError> {
        let baggage = cx.baggage();
        Self::read(keys, |key| baggage.get(key).map(|v| v.as_str().to_owned()))
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::KeyValue;
    use std::time::Duration;

    fn cx(entries: &[(&'static str, &'static str)]) -> opentelemetry::Context {
        opentelemetry::Context::new()
            .with_baggage(entries.iter().map(|(k, v)| KeyValue::new(*k, *v)))
    }

    #[test]
    fn each_mock_reads_only_its_own_keys() {
        let both = cx(&[
            ("latency.orders", "900ms"),
            ("fail.user", "1"),
            ("latency.user-service", "5s"),
            ("latency", "5s"),
            ("tenant", "acme"),
        ]);
        let orders = Overrides::from_context(&OverrideKeys::for_mock("orders"), &both).unwrap();
        assert_eq!(
            orders.latency,
            Some(LatencySpec::fixed(Duration::from_millis(900)))
        );
        assert_eq!(orders.error_rate, None);
        assert_eq!(orders.keys, ["latency.orders"]);

        let user = Overrides::from_context(&OverrideKeys::for_mock("user"), &both).unwrap();
        assert_eq!(user.latency, None);
        assert_eq!(user.error_rate, Some(Probability::ALWAYS));
        assert_eq!(user.keys, ["fail.user"]);

        let none = Overrides::from_context(&OverrideKeys::for_mock("user"), &cx(&[])).unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn malformed_values_are_errors_naming_the_key() {
        let keys = OverrideKeys::for_mock("orders");
        for (key, value, says) in [
            ("latency.orders", "banana", "accepted forms"),
            ("fail.orders", "yes", "between 0 and 1"),
            ("hang.orders", "2", "between 0 and 1"),
        ] {
            let err = Overrides::from_context(&keys, &cx(&[(key, value)]))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(&format!("baggage {key}:")), "{err}");
            assert!(err.contains(says), "{err}");
        }
    }
}
