//! The query of `GET /user-profile/{id}`, typed and parsed once: the fan-out
//! mode and the remedies one request gets, over the flags' defaults, so one
//! running demo can show the problem and the fix side by side (`?retry=off`
//! next to `?retry=on`).
//!
//! | parameter | values | default |
//! | --- | --- | --- |
//! | `mode` | `sequential`, `concurrent`, `unlinked` | `--mode` |
//! | `retry` | `on`, `off` | `--retry` |
//! | `breaker` | `on`, `off` (off bypasses the shared breaker) | `--breaker` |
//! | `hedge_after` | `off`, a duration from `1ms` to `1m` (`50ms`), a percentile (`p95`) | `--hedge-after` |
//! | `bulkhead` | `on`, `off` (off bypasses it; the limit itself is a flag) | on with `--max-in-flight` |
//! | `fallback` | `true`, `false` (or `on`, `off`) | `--fallback` |
//! | `user_timeout`, `order_timeout` | a duration from `1ms` to `1m` | `--user-timeout`, `--order-timeout` |
//!
//! Anything else is a 400, so a typo can never silently run the request
//! without the remedy asked for: an unknown parameter (`?retyr=on`) is
//! answered with the list of accepted ones, a malformed value with the
//! parameter and its accepted forms, a parameter given twice
//! (`?retry=on&retry=off`) with a request to give it once. A duration out of
//! range is malformed too: `order_timeout=1ns` (a slip of the unit that
//! would time out every call) is refused with the accepted range, the same
//! range the flags accept ([`crate::resilience::timeout`]).
//!
//! Two steps, each done once: [`ProfileQuery::parse`] turns the query string
//! into typed values (what the request *said*), [`ProfileQuery::over`] lays
//! them over the defaults into the [`RequestSettings`] the calls use.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::{self, Deserializer};
use serde::Deserialize;
use thiserror::Error;

use crate::resilience::hedge::HedgeAfter;
use crate::resilience::timeout::parse_timeout;
use crate::resilience::Switches;
use crate::{AggregatorError, Config, Mode};

/// Every parameter the profile route accepts, in the order the docs list
/// them: what an unknown parameter's 400 offers instead. The fields of
/// [`ProfileQuery`], one for one (a unit test holds them together).
pub const PARAMETERS: [&str; 8] = [
    "mode",
    "retry",
    "breaker",
    "hedge_after",
    "bulkhead",
    "fallback",
    "user_timeout",
    "order_timeout",
];

/// What the query said; `None`: the parameter was absent, the default holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileQuery {
    #[serde(default)]
    pub mode: Option<Mode>,
    #[serde(default, deserialize_with = "on_off")]
    pub retry: Option<bool>,
    #[serde(default, deserialize_with = "on_off")]
    pub breaker: Option<bool>,
    #[serde(default, deserialize_with = "hedge_after")]
    pub hedge_after: Option<HedgeAfter>,
    #[serde(default, deserialize_with = "on_off")]
    pub bulkhead: Option<bool>,
    #[serde(default, deserialize_with = "on_off")]
    pub fallback: Option<bool>,
    #[serde(default, deserialize_with = "timeout")]
    pub user_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "timeout")]
    pub order_timeout: Option<Duration>,
}

/// What one request gets: its query laid over the flags' defaults. The
/// defaults themselves are one of these ([`RequestSettings::defaults`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequestSettings {
    pub mode: Mode,
    pub remedies: Switches,
    /// Per attempt of the user call (and for its bulkhead wait).
    pub user_timeout: Duration,
    /// Per attempt of the orders call (and for its bulkhead wait).
    pub order_timeout: Duration,
}

/// Why a query was refused: each is a 400 `invalid_request`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QueryError {
    #[error(
        "unknown parameter {parameter:?}: the accepted parameters are {}",
        PARAMETERS.join(", ")
    )]
    Unknown { parameter: String },
    #[error("{parameter} is given more than once: give each parameter once")]
    Repeated { parameter: String },
    /// `message` starts with the value as given and says the accepted forms.
    #[error("{parameter}={message}")]
    Malformed { parameter: String, message: String },
    #[error("bulkhead=on: this aggregator has no bulkhead; start it with --max-in-flight N")]
    NoBulkhead,
}

impl ProfileQuery {
    /// Parses a raw query string (without the `?`), percent-decoding it.
    pub fn parse(query: &str) -> Result<Self, QueryError> {
        // The names first, so an unknown or repeated one is reported as such
        // whatever its value.
        let mut seen = BTreeSet::new();
        for (name, _) in form_urlencoded::parse(query.as_bytes()) {
            if !PARAMETERS.contains(&name.as_ref()) {
                return Err(QueryError::Unknown {
                    parameter: name.into_owned(),
                });
            }
            if !seen.insert(name.clone()) {
                return Err(QueryError::Repeated {
                    parameter: name.into_owned(),
                });
            }
        }
        let pairs = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(pairs).map_err(|error| QueryError::Malformed {
            parameter: error.path().to_string(),
            message: error.into_inner().to_string(),
        })
    }

    /// These choices over `defaults`. `bulkhead_available`: whether
    /// `--max-in-flight` was given (`bulkhead=on` means nothing without it).
    pub fn over(
        self,
        defaults: &RequestSettings,
        bulkhead_available: bool,
    ) -> Result<RequestSettings, QueryError> {
        if self.bulkhead == Some(true) && !bulkhead_available {
            return Err(QueryError::NoBulkhead);
        }
        let on = defaults.remedies;
        Ok(RequestSettings {
            mode: self.mode.unwrap_or(defaults.mode),
            remedies: Switches {
                retry: self.retry.unwrap_or(on.retry),
                breaker: self.breaker.unwrap_or(on.breaker),
                hedge_after: self.hedge_after.unwrap_or(on.hedge_after),
                bulkhead: self.bulkhead.unwrap_or(on.bulkhead),
                fallback: self.fallback.unwrap_or(on.fallback),
            },
            user_timeout: self.user_timeout.unwrap_or(defaults.user_timeout),
            order_timeout: self.order_timeout.unwrap_or(defaults.order_timeout),
        })
    }
}

impl RequestSettings {
    /// What a request without a query gets: the flags' choices.
    pub fn defaults(config: &Config) -> Self {
        Self {
            mode: config.default_mode,
            remedies: config.remedies.defaults,
            user_timeout: config.users.timeout,
            order_timeout: config.orders.timeout,
        }
    }
}

/// The extractor: a refused query is the aggregator's JSON 400.
impl<S: Send + Sync> FromRequestParts<S> for ProfileQuery {
    type Rejection = AggregatorError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::parse(parts.uri.query().unwrap_or_default())?)
    }
}

/// Parses a value with `parse`, whose error names the accepted forms.
fn value<'de, D, T>(
    deserializer: D,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
{
    let raw = String::deserialize(deserializer)?;
    parse(&raw).map(Some).map_err(de::Error::custom)
}

/// `on`/`off`, or `true`/`false`, for a remedy switch.
fn on_off<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    value(deserializer, |raw| match raw.trim() {
        "on" | "true" => Ok(true),
        "off" | "false" => Ok(false),
        other => Err(format!("{other:?}: expected on or off (or true, false)")),
    })
}

fn hedge_after<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<HedgeAfter>, D::Error> {
    value(deserializer, str::parse)
}

fn timeout<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
    value(deserializer, parse_timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> RequestSettings {
        RequestSettings {
            mode: Mode::Sequential,
            remedies: Switches::default(),
            user_timeout: Duration::from_secs(2),
            order_timeout: Duration::from_secs(3),
        }
    }

    fn resolve(query: &str, bulkhead_available: bool) -> Result<RequestSettings, QueryError> {
        ProfileQuery::parse(query)?.over(&defaults(), bulkhead_available)
    }

    fn message(query: &str, bulkhead_available: bool) -> String {
        resolve(query, bulkhead_available).unwrap_err().to_string()
    }

    #[test]
    fn no_query_gets_the_defaults() {
        assert_eq!(ProfileQuery::parse(""), Ok(ProfileQuery::default()));
        assert_eq!(resolve("", false), Ok(defaults()));
    }

    #[test]
    fn every_parameter_is_parsed_into_its_type() {
        let query = "mode=concurrent&retry=on&breaker=true&hedge_after=p95&bulkhead=off\
                     &fallback=false&user_timeout=1.5s&order_timeout=200ms";
        assert_eq!(
            ProfileQuery::parse(query),
            Ok(ProfileQuery {
                mode: Some(Mode::Concurrent),
                retry: Some(true),
                breaker: Some(true),
                hedge_after: Some(HedgeAfter::Percentile(95.0)),
                bulkhead: Some(false),
                fallback: Some(false),
                user_timeout: Some(Duration::from_millis(1500)),
                order_timeout: Some(Duration::from_millis(200)),
            })
        );
        let q = ProfileQuery::parse("hedge_after=50ms&mode=unlinked&retry=%20off").unwrap();
        assert_eq!(
            q.hedge_after,
            Some(HedgeAfter::Fixed(Duration::from_millis(50)))
        );
        assert_eq!(q.mode, Some(Mode::Unlinked));
        assert_eq!(q.retry, Some(false), "percent-decoded, then trimmed");
    }

    #[test]
    fn the_query_overrides_the_defaults_and_only_what_it_names() {
        let r = resolve(
            "retry=on&breaker=true&hedge_after=p95&fallback=true&bulkhead=on&order_timeout=200ms",
            true,
        )
        .unwrap();
        assert!(r.remedies.retry && r.remedies.breaker && r.remedies.fallback);
        assert!(r.remedies.bulkhead);
        assert_eq!(r.remedies.hedge_after, HedgeAfter::Percentile(95.0));
        assert_eq!(r.order_timeout, Duration::from_millis(200));
        assert_eq!(r.user_timeout, Duration::from_secs(2));
        assert_eq!(r.mode, Mode::Sequential);

        let flags = RequestSettings {
            mode: Mode::Concurrent,
            remedies: Switches {
                retry: true,
                fallback: true,
                hedge_after: HedgeAfter::Percentile(90.0),
                ..Switches::default()
            },
            ..defaults()
        };
        let r = ProfileQuery::parse("retry=off&hedge_after=off")
            .unwrap()
            .over(&flags, false)
            .unwrap();
        assert!(!r.remedies.retry, "off overrides --retry");
        assert_eq!(r.remedies.hedge_after, HedgeAfter::Off);
        assert!(r.remedies.fallback, "untouched defaults stay");
        assert_eq!(r.mode, Mode::Concurrent, "--mode stays without ?mode=");
    }

    #[test]
    fn malformed_values_name_the_parameter_and_the_accepted_forms() {
        for (query, expect) in [
            ("retry=yes", "retry=\"yes\": expected on or off"),
            ("breaker=", "breaker=\"\": expected on or off"),
            ("fallback=1", "fallback=\"1\": expected on or off"),
            ("bulkhead=maybe", "bulkhead=\"maybe\": expected on or off"),
            ("hedge_after=soon", "hedge_after=\"soon\""),
            ("hedge_after=p200", "p1 to p99.9"),
            ("user_timeout=0ms", "user_timeout=\"0ms\""),
            (
                "order_timeout=1ns",
                "order_timeout=\"1ns\": a timeout must be at least 1ms and at most 1m",
            ),
            ("user_timeout=999us", "at least 1ms"),
            ("order_timeout=61s", "at most 1m"),
            ("hedge_after=50us", "at least 1ms and at most 1m"),
            ("order_timeout=fast", "200ms"),
            (
                "mode=parallel",
                "mode=\"parallel\": expected sequential, concurrent or unlinked",
            ),
            ("bulkhead=on", "--max-in-flight"),
        ] {
            let err = message(query, false);
            assert!(err.contains(expect), "{query}: {err}");
        }
        assert!(resolve("bulkhead=off", false).is_ok());
    }

    #[test]
    fn an_unknown_parameter_is_refused_with_the_accepted_ones() {
        let err = resolve("mode=concurrent&retyr=on", false).unwrap_err();
        assert_eq!(
            err,
            QueryError::Unknown {
                parameter: "retyr".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "unknown parameter \"retyr\": the accepted parameters are mode, retry, breaker, \
             hedge_after, bulkhead, fallback, user_timeout, order_timeout"
        );
        // Even with a value that would be malformed: the name is the mistake.
        assert!(message("Retry=maybe", false).starts_with("unknown parameter \"Retry\""));
    }

    #[test]
    fn a_repeated_parameter_is_refused() {
        assert_eq!(
            resolve("retry=on&mode=sequential&retry=off", false),
            Err(QueryError::Repeated {
                parameter: "retry".into()
            })
        );
        assert!(message("mode=unlinked&mode=unlinked", false).contains("give each parameter once"));
    }

    #[test]
    fn every_accepted_parameter_is_a_field() {
        // A name listed but not deserialized would reach serde's own
        // unknown-field error; a field not listed is refused as unknown
        // (`every_parameter_is_parsed_into_its_type` sets each field).
        for name in PARAMETERS {
            match ProfileQuery::parse(&format!("{name}=%3F")) {
                Err(QueryError::Malformed { parameter, message }) => {
                    assert_eq!(parameter, name);
                    assert!(message.starts_with("\"?\""), "{name}: {message}");
                }
                other => panic!("{name}: {other:?}"),
            }
        }
    }
}
