//! Which remedies one request gets: the flags' defaults, overridden by the
//! query string, so one running demo can show the problem and the fix side
//! by side (`?retry=off` next to `?retry=on`).
//!
//! | query | values | default |
//! | --- | --- | --- |
//! | `retry` | `on`, `off` | `--retry` |
//! | `breaker` | `on`, `off` (off bypasses the shared breaker) | `--breaker` |
//! | `hedge_after` | `off`, a duration (`50ms`), a percentile (`p95`) | `--hedge-after` |
//! | `bulkhead` | `on`, `off` (off bypasses it; the limit itself is a flag) | on with `--max-in-flight` |
//! | `fallback` | `true`, `false` (or `on`, `off`) | `--fallback` |
//! | `user_timeout`, `order_timeout` | a duration | `--user-timeout`, `--order-timeout` |
//!
//! A malformed value is a 400 naming the parameter and the accepted forms:
//! a typo must not silently run the request without the remedy asked for.

use std::collections::HashMap;
use std::time::Duration;

use super::hedge::HedgeAfter;
use super::timeout::parse_timeout;

/// Remedies switched on or off; the flags give the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Switches {
    pub retry: bool,
    pub breaker: bool,
    pub hedge_after: HedgeAfter,
    /// Use the bulkhead (only meaningful with `--max-in-flight`).
    pub bulkhead: bool,
    pub fallback: bool,
}

/// One request's remedies and timeouts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequestRemedies {
    pub switches: Switches,
    pub user_timeout: Duration,
    pub order_timeout: Duration,
}

impl RequestRemedies {
    /// The defaults overridden by the query. `bulkhead_configured`: whether
    /// `--max-in-flight` was given (`bulkhead=on` means nothing without it).
    pub fn from_query(
        query: &HashMap<String, String>,
        defaults: Switches,
        user_timeout: Duration,
        order_timeout: Duration,
        bulkhead_configured: bool,
    ) -> Result<Self, String> {
        let mut switches = defaults;
        if let Some(v) = query.get("retry") {
            switches.retry = on_off("retry", v)?;
        }
        if let Some(v) = query.get("breaker") {
            switches.breaker = on_off("breaker", v)?;
        }
        if let Some(v) = query.get("bulkhead") {
            switches.bulkhead = on_off("bulkhead", v)?;
            if switches.bulkhead && !bulkhead_configured {
                return Err(
                    "bulkhead=on: this aggregator has no bulkhead; start it with --max-in-flight N"
                        .to_owned(),
                );
            }
        }
        if let Some(v) = query.get("fallback") {
            switches.fallback = on_off("fallback", v)?;
        }
        if let Some(v) = query.get("hedge_after") {
            switches.hedge_after = v
                .parse::<HedgeAfter>()
                .map_err(|e| format!("hedge_after={e}"))?;
        }
        let timeout = |name: &str, default: Duration| match query.get(name) {
            Some(v) => parse_timeout(v).map_err(|e| format!("{name}={e}")),
            None => Ok(default),
        };
        Ok(Self {
            switches,
            user_timeout: timeout("user_timeout", user_timeout)?,
            order_timeout: timeout("order_timeout", order_timeout)?,
        })
    }
}

fn on_off(name: &str, value: &str) -> Result<bool, String> {
    match value.trim() {
        "on" | "true" => Ok(true),
        "off" | "false" => Ok(false),
        other => Err(format!(
            "{name}={other:?}: expected on or off (or true, false)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)], bulkhead: bool) -> Result<RequestRemedies, String> {
        let query = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        RequestRemedies::from_query(
            &query,
            Switches::default(),
            Duration::from_secs(2),
            Duration::from_secs(3),
            bulkhead,
        )
    }

    #[test]
    fn everything_is_off_unless_asked_for() {
        let r = parse(&[("mode", "concurrent")], false).unwrap();
        assert_eq!(r.switches, Switches::default());
        assert_eq!(r.user_timeout, Duration::from_secs(2));
        assert_eq!(r.order_timeout, Duration::from_secs(3));
    }

    #[test]
    fn the_query_overrides_the_defaults() {
        let r = parse(
            &[
                ("retry", "on"),
                ("breaker", "true"),
                ("hedge_after", "p95"),
                ("fallback", "true"),
                ("bulkhead", "on"),
                ("order_timeout", "200ms"),
            ],
            true,
        )
        .unwrap();
        assert!(r.switches.retry && r.switches.breaker && r.switches.fallback);
        assert!(r.switches.bulkhead);
        assert_eq!(r.switches.hedge_after, HedgeAfter::Percentile(95.0));
        assert_eq!(r.order_timeout, Duration::from_millis(200));
        assert_eq!(r.user_timeout, Duration::from_secs(2));

        let defaults = Switches {
            retry: true,
            fallback: true,
            ..Switches::default()
        };
        let query = [("retry".to_owned(), "off".to_owned())].into();
        let r = RequestRemedies::from_query(
            &query,
            defaults,
            Duration::from_secs(1),
            Duration::from_secs(1),
            false,
        )
        .unwrap();
        assert!(!r.switches.retry, "off overrides --retry");
        assert!(r.switches.fallback, "untouched defaults stay");
    }

    #[test]
    fn malformed_values_say_what_is_accepted() {
        for (pairs, expect) in [
            (vec![("retry", "yes")], "retry=\"yes\": expected on or off"),
            (vec![("breaker", "")], "breaker=\"\": expected on or off"),
            (vec![("hedge_after", "soon")], "hedge_after=\"soon\""),
            (vec![("hedge_after", "p200")], "p1 to p99.9"),
            (vec![("user_timeout", "0ms")], "user_timeout=\"0ms\""),
            (vec![("order_timeout", "fast")], "200ms"),
            (vec![("bulkhead", "on")], "--max-in-flight"),
        ] {
            let err = parse(&pairs, false).unwrap_err();
            assert!(err.contains(expect), "{pairs:?}: {err}");
        }
        assert!(parse(&[("bulkhead", "off")], false).is_ok());
    }
}
