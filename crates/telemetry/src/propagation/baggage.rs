//! W3C Baggage in and out, without letting a client write our logs.
//!
//! The 0.32 SDK's `BaggagePropagator` logs a WARN quoting the *whole*
//! header (up to 8 KB) for every malformed entry, on every request: a
//! client could fill the logs at will. [`BoundedBaggagePropagator`] screens
//! the header first with the same rules, hands the SDK only the entries it
//! would have kept (so it never warns), and says itself what it dropped: one
//! WARN line quoting the first [`EXCERPT_CHARS`](crate::bounded_log::EXCERPT_CHARS)
//! characters, at most once per [`WARN_EVERY`], counting the requests held
//! back. The baggage a request ends up with is exactly the SDK's.

use std::time::Duration;

use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::Context;
use opentelemetry_sdk::propagation::BaggagePropagator;
use percent_encoding::percent_decode_str;

use crate::bounded_log::{excerpt, RateLimited};

const BAGGAGE: &str = "baggage";
/// The W3C limits the SDK enforces: a longer header is dropped whole; list
/// members past the 64th are ignored.
const MAX_HEADER_BYTES: usize = 8192;
const MAX_ENTRIES: usize = 64;

/// At most one line about malformed baggage per this interval.
pub const WARN_EVERY: Duration = Duration::from_secs(10);

static MALFORMED: RateLimited = RateLimited::new(WARN_EVERY);

/// The SDK's baggage propagator behind a screen that keeps its warnings out
/// of the logs (see the module).
#[derive(Debug, Default)]
pub struct BoundedBaggagePropagator {
    sdk: BaggagePropagator,
}

impl BoundedBaggagePropagator {
    pub fn new() -> Self {
        Self::default()
    }
}

/// What the screen found wrong with a header.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Problem {
    TooLong,
    /// How many entries were dropped, and what was wrong with the first.
    Entries {
        dropped: usize,
        first: &'static str,
    },
}

/// The header the SDK may see (`None`: none at all) and what was wrong.
fn screen(header: &str) -> (Option<String>, Option<Problem>) {
    if header.len() > MAX_HEADER_BYTES {
        return (None, Some(Problem::TooLong));
    }
    let mut kept = Vec::new();
    let mut dropped = 0;
    let mut first = None;
    for entry in header.split(',').take(MAX_ENTRIES) {
        if entry.trim().is_empty() {
            // An empty list member (`a=1,`): nothing was lost, say nothing.
            continue;
        }
        match entry_problem(entry) {
            None => kept.push(entry),
            Some(problem) => {
                dropped += 1;
                first.get_or_insert(problem);
            }
        }
    }
    let problem = first.map(|first| Problem::Entries { dropped, first });
    // Nothing left: no header at all (the SDK would warn about an empty one).
    let kept = (!kept.is_empty()).then(|| kept.join(","));
    (kept, problem)
}

/// Why the SDK would drop (and warn about) `entry`; `None` if it keeps it.
fn entry_problem(entry: &str) -> Option<&'static str> {
    let name_and_value = entry.split(';').next().unwrap_or_default();
    let mut parts = name_and_value.split('=');
    let (Some(name), Some(value)) = (parts.next(), parts.next()) else {
        return Some("a list member without `key=value`");
    };
    let text = |s: &str| percent_decode_str(s).decode_utf8().is_ok();
    (!text(name) || !text(value)).then_some("a key or value that is not UTF-8 once percent-decoded")
}

fn warn(header: &str, problem: &Problem) {
    let Some(held_back) = MALFORMED.admit() else {
        return;
    };
    let header = excerpt(header);
    match problem {
        Problem::TooLong => tracing::warn!(
            baggage = %header,
            held_back,
            "baggage header over {MAX_HEADER_BYTES} bytes ignored (W3C limit; at most one such line every {}s, `held_back` counts the others)",
            WARN_EVERY.as_secs()
        ),
        Problem::Entries { dropped, first } => tracing::warn!(
            baggage = %header,
            dropped,
            held_back,
            "malformed baggage entries ignored, the first being {first} (at most one such line every {}s, `held_back` counts the others)",
            WARN_EVERY.as_secs()
        ),
    }
}

/// The incoming headers with `baggage` replaced by the screened one.
struct Screened<'a> {
    inner: &'a dyn Extractor,
    baggage: Option<String>,
}

impl Extractor for Screened<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        if key.eq_ignore_ascii_case(BAGGAGE) {
            self.baggage.as_deref()
        } else {
            self.inner.get(key)
        }
    }

    fn keys(&self) -> Vec<&str> {
        self.inner.keys()
    }
}

impl TextMapPropagator for BoundedBaggagePropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        self.sdk.inject_context(cx, injector);
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let Some(header) = extractor.get(BAGGAGE) else {
            return self.sdk.extract_with_context(cx, extractor);
        };
        // The SDK always sees the screened header: even a valid one may hold
        // empty members (`a=1,`), which it would warn about.
        let (baggage, problem) = screen(header);
        if let Some(problem) = problem {
            warn(header, &problem);
        }
        self.sdk.extract_with_context(
            cx,
            &Screened {
                inner: extractor,
                baggage,
            },
        )
    }

    fn fields(&self) -> FieldIter<'_> {
        self.sdk.fields()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use opentelemetry::baggage::BaggageExt;

    use super::*;

    fn extract(with: &dyn TextMapPropagator, header: &str) -> Vec<(String, String)> {
        let headers = HashMap::from([(BAGGAGE.to_owned(), header.to_owned())]);
        let cx = with.extract(&headers);
        let mut entries: Vec<(String, String)> = cx
            .baggage()
            .iter()
            .map(|(k, (v, _))| (k.to_string(), v.to_string()))
            .collect();
        entries.sort();
        entries
    }

    #[test]
    fn the_same_baggage_as_the_sdk() {
        let long_valid = format!("k={}", "v".repeat(MAX_HEADER_BYTES));
        let many: Vec<String> = (0..80).map(|i| format!("k{i}=v")).collect();
        let many_with_bad: Vec<String> = (0..80)
            .map(|i| {
                if i % 3 == 0 {
                    format!("bad{i}")
                } else {
                    format!("k{i}=v")
                }
            })
            .collect();
        for header in [
            "latency.orders=900ms,fail.user=1",
            "a=1;prop=x,b=%C3%A9",
            "a=1,,b=2,",
            "nokey,a=1",
            "a=%FF,b=2",
            "%FF=1,b=2",
            "a=1,b=2=3",
            "=1,b=2",
            "a=,b=2",
            "a=1;%FF,b=2",
            long_valid.as_str(),
            &many.join(","),
            &many_with_bad.join(","),
            "garbage",
        ] {
            assert_eq!(
                extract(&BoundedBaggagePropagator::new(), header),
                extract(&BaggagePropagator::new(), header),
                "{header:.80}"
            );
        }
    }

    #[test]
    fn what_the_screen_finds() {
        assert_eq!(screen("a=1,b=2"), (Some("a=1,b=2".into()), None));
        assert_eq!(screen("a=1,,b=2,"), (Some("a=1,b=2".into()), None));
        let (kept, problem) = screen("junk");
        assert_eq!(kept, None);
        assert!(matches!(problem, Some(Problem::Entries { dropped: 1, .. })));
        let (kept, problem) = screen("a=1,junk,b=%FF");
        assert_eq!(kept.as_deref(), Some("a=1"));
        assert!(matches!(problem, Some(Problem::Entries { dropped: 2, .. })));
        let (kept, problem) = screen(&"x".repeat(MAX_HEADER_BYTES + 1));
        assert_eq!((kept, problem), (None, Some(Problem::TooLong)));
    }
}
