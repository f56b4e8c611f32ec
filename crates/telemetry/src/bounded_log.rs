//! Log lines a client cannot inflate: a value it sent is quoted only in
//! part ([`excerpt`]), and a warning it can trigger at will is written at
//! most once per interval ([`RateLimited`]), with a count of the ones held
//! back.
//!
//! Hand-written rather than a rate-limiting crate: one timestamp and one
//! counter behind a mutex is all a log line needs; the crates built for
//! this (token buckets, keyed limiters) bring clocks and generics of their
//! own for no gain here.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How much of a client's value a log line quotes.
pub const EXCERPT_CHARS: usize = 64;

/// `value` when short; otherwise its first [`EXCERPT_CHARS`] characters and
/// how long it was: `abc…(8192 bytes)`.
pub fn excerpt(value: &str) -> Cow<'_, str> {
    excerpt_of(value, EXCERPT_CHARS)
}

/// [`excerpt`] keeping `keep` characters.
pub fn excerpt_of(value: &str, keep: usize) -> Cow<'_, str> {
    match value.char_indices().nth(keep) {
        None => Cow::Borrowed(value),
        Some((cut, _)) => Cow::Owned(format!("{}…({} bytes)", &value[..cut], value.len())),
    }
}

/// Formats `value` (Debug) keeping its first `keep` characters, then how
/// long the whole was, as [`excerpt_of`] does; the rest is counted, never
/// stored.
pub struct DebugExcerpt<'a>(pub &'a dyn fmt::Debug, pub usize);

impl fmt::Debug for DebugExcerpt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut capped = Capped {
            out: &mut *f,
            chars_left: self.1,
            bytes: 0,
        };
        write!(capped, "{:?}", self.0)?;
        let (bytes, cut) = (capped.bytes, capped.chars_left == usize::MAX);
        if cut {
            write!(f, "…({bytes} bytes)")?;
        }
        Ok(())
    }
}

/// Passes on the first `chars_left` characters; counts every byte.
/// `chars_left` is `usize::MAX` once something was held back.
struct Capped<'a, 'f> {
    out: &'a mut fmt::Formatter<'f>,
    chars_left: usize,
    bytes: usize,
}

impl fmt::Write for Capped<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.bytes += s.len();
        if self.chars_left == usize::MAX {
            return Ok(());
        }
        match s.char_indices().nth(self.chars_left) {
            None => {
                self.chars_left -= s.chars().count();
                self.out.write_str(s)
            }
            Some((cut, _)) => {
                // Held back from here on (usize::MAX marks "cut").
                self.chars_left = usize::MAX;
                self.out.write_str(&s[..cut])
            }
        }
    }
}

/// Lets one event through per `every`; counts the others.
#[derive(Debug)]
pub struct RateLimited {
    every: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    last: Option<Instant>,
    held_back: u64,
}

impl RateLimited {
    pub const fn new(every: Duration) -> Self {
        Self {
            every,
            state: Mutex::new(State {
                last: None,
                held_back: 0,
            }),
        }
    }

    /// `Some(n)` when a line may be written now, `n` being how many were
    /// held back since the last one; `None` when this one is held back.
    pub fn admit(&self) -> Option<u64> {
        self.admit_at(Instant::now())
    }

    fn admit_at(&self, now: Instant) -> Option<u64> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match state.last {
            Some(last) if now.saturating_duration_since(last) < self.every => {
                state.held_back += 1;
                None
            }
            _ => {
                state.last = Some(now);
                Some(std::mem::take(&mut state.held_back))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_and_measured() {
        assert_eq!(excerpt("short"), "short");
        let exact = "x".repeat(EXCERPT_CHARS);
        assert_eq!(excerpt(&exact), exact.as_str());
        let long = "é".repeat(5000);
        let cut = excerpt(&long);
        assert!(cut.starts_with(&"é".repeat(EXCERPT_CHARS)));
        assert!(cut.ends_with("…(10000 bytes)"), "{cut}");
        assert!(cut.len() < 200);
    }

    #[test]
    fn debug_values_are_cut_and_measured() {
        let short = format!("{:?}", DebugExcerpt(&"abc", 10));
        assert_eq!(short, "\"abc\"");
        let exact = format!("{:?}", DebugExcerpt(&"abc", 5));
        assert_eq!(exact, "\"abc\"");
        let long = "x".repeat(1000);
        let cut = format!("{:?}", DebugExcerpt(&long, 10));
        assert_eq!(cut, "\"xxxxxxxxx…(1002 bytes)");
    }

    #[test]
    fn one_line_per_interval_with_the_count_held_back() {
        let limit = RateLimited::new(Duration::from_secs(10));
        let start = Instant::now();
        assert_eq!(limit.admit_at(start), Some(0));
        for second in 1..=9 {
            assert_eq!(limit.admit_at(start + Duration::from_secs(second)), None);
        }
        assert_eq!(limit.admit_at(start + Duration::from_secs(10)), Some(9));
        assert_eq!(limit.admit_at(start + Duration::from_secs(11)), None);
        assert_eq!(limit.admit_at(start + Duration::from_secs(25)), Some(1));
    }
}
