//! `OTEL_EXPORTER_OTLP_TRACES_HEADERS` (or `_METRICS_HEADERS`), else
//! `OTEL_EXPORTER_OTLP_HEADERS`: extra headers (gRPC metadata) on every
//! export request of the signal, e.g. an API key.
//!
//! Read as the OpenTelemetry OTLP exporter reads them (the signal's own
//! variable replaces the generic one; `key=value` pairs separated by
//! commas, trimmed, values percent-decoded, empty keys or values left out),
//! with one difference: a pair that cannot be a header (a space in the
//! name, a line break in the value) is an error naming the variable, where
//! that exporter silently drops it and the request then fails without the
//! header.

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::config::Signal;
use crate::TelemetryError;

const HEADERS: &str = "OTEL_EXPORTER_OTLP_HEADERS";

/// Every export request's `User-Agent`, as the OTLP exporter specification
/// asks: the exporter, its language and version.
pub(crate) fn user_agent() -> String {
    format!(
        "OTel-OTLP-Exporter-Rust/0.32 latency-lab/{}",
        env!("CARGO_PKG_VERSION")
    )
}

/// The headers the variables of `signal` ask for (empty when neither is
/// set), from a lookup that leaves out empty values ([`crate::config`]'s).
pub(crate) fn from_lookup(
    signal: Signal,
    non_empty: &impl Fn(&str) -> Option<String>,
) -> Result<HeaderMap, TelemetryError> {
    let signal_var = signal.headers_var();
    let (var, value) = match non_empty(signal_var) {
        Some(value) => (signal_var, value),
        None => match non_empty(HEADERS) {
            Some(value) => (HEADERS, value),
            None => return Ok(HeaderMap::new()),
        },
    };
    parse(&value).map_err(|reason| TelemetryError::InvalidEnv {
        var,
        value: crate::bounded_log::excerpt(&value).into_owned(),
        reason,
    })
}

fn parse(list: &str) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    for pair in list.split_terminator(',').map(str::trim) {
        let Some((key, value)) = pair.split_once('=') else {
            continue;
        };
        let key = key.trim();
        let value = value.trim();
        let value = percent_encoding::percent_decode_str(value)
            .decode_utf8()
            .map_or_else(|_| value.to_owned(), |v| v.into_owned());
        if key.is_empty() || value.is_empty() {
            continue;
        }
        let name = HeaderName::from_bytes(key.as_bytes())
            .map_err(|_| format!("{key:?} cannot be a header name"))?;
        let value = HeaderValue::from_str(&value)
            .map_err(|_| format!("the value of {key:?} cannot be a header value"))?;
        headers.append(name, value);
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACES_HEADERS: &str = "OTEL_EXPORTER_OTLP_TRACES_HEADERS";

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn pairs_are_trimmed_decoded_and_empty_ones_left_out() {
        let headers = from_lookup(
            Signal::Traces,
            &env(&[(
                HEADERS,
                " api-key = secret%20value , x-team=lab,,noequals, empty=, =novalue",
            )]),
        )
        .unwrap();
        assert_eq!(headers.len(), 2, "{headers:?}");
        assert_eq!(headers["api-key"], "secret value");
        assert_eq!(headers["x-team"], "lab");
    }

    #[test]
    fn the_signals_own_variable_replaces_the_generic_one() {
        let headers = from_lookup(
            Signal::Traces,
            &env(&[(HEADERS, "a=1,b=2"), (TRACES_HEADERS, "c=3")]),
        )
        .unwrap();
        assert_eq!(headers.len(), 1);
        assert_eq!(headers["c"], "3");
        assert!(from_lookup(Signal::Traces, &env(&[])).unwrap().is_empty());
    }

    #[test]
    fn a_pair_that_cannot_be_a_header_names_the_variable() {
        let error =
            from_lookup(Signal::Traces, &env(&[(TRACES_HEADERS, "bad name=1")])).unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains(TRACES_HEADERS) && text.contains("bad name"),
            "{text}"
        );
        let error = from_lookup(Signal::Traces, &env(&[(HEADERS, "k=line%0Abreak")])).unwrap_err();
        assert!(error.to_string().contains(HEADERS), "{error}");
    }
}
