//! Injected faults: a request that fails (503) or never answers.
//!
//! Latency alone does not teach timeouts and error budgets: a dependency
//! that errors now and then, or one that accepts the request and then says
//! nothing, is what makes a caller's timeout, retry and fallback matter.

use std::fmt;
use std::str::FromStr;

use rand::{Rng, RngExt};

use super::units;

/// A rate between 0 and 1 (`0.02` = 2 % of requests).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Probability(f64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a rate: write a probability between 0 and 1, e.g. 0.02 (2 % of requests), 1 (every request) or 0 (none)")]
pub struct ProbabilityError(pub String);

impl Probability {
    pub const NEVER: Self = Self(0.0);
    pub const ALWAYS: Self = Self(1.0);

    pub fn new(value: f64) -> Result<Self, ProbabilityError> {
        if (0.0..=1.0).contains(&value) {
            Ok(Self(value))
        } else {
            Err(ProbabilityError(units::format_number(value)))
        }
    }

    pub fn get(self) -> f64 {
        self.0
    }

    /// True with this probability. `0` never draws true, `1` always does
    /// (a uniform draw lies in `[0, 1)`).
    pub fn roll<R: Rng + ?Sized>(self, rng: &mut R) -> bool {
        rng.random::<f64>() < self.0
    }
}

impl FromStr for Probability {
    type Err = ProbabilityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let value =
            units::parse_number(s).map_err(|_| ProbabilityError(units::shorten(s.trim())))?;
        Self::new(value).map_err(|_| ProbabilityError(units::shorten(s.trim())))
    }
}

impl fmt::Display for Probability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&units::format_number(self.0))
    }
}

/// What happens to one request besides its delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Answer 503 after the delay.
    Error,
    /// Never answer; the request ends when the client gives up.
    Hang,
}

impl Fault {
    /// The value of the `latency_lab.fault` span attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::None => "none",
            Fault::Error => "error",
            Fault::Hang => "hang",
        }
    }
}

/// How often each fault is injected.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FaultRates {
    pub error: Probability,
    pub hang: Probability,
}

impl FaultRates {
    /// The error is rolled first, then the hang: `error=1` always fails, and
    /// with both set a request hangs with probability `(1 - error) * hang`.
    /// Two plain rolls keep each rate meaning what it says on its own.
    pub fn decide<R: Rng + ?Sized>(&self, rng: &mut R) -> Fault {
        if self.error.roll(rng) {
            Fault::Error
        } else if self.hang.roll(rng) {
            Fault::Hang
        } else {
            Fault::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn rates_parse_and_print() {
        assert_eq!("0.02".parse(), Ok(Probability(0.02)));
        assert_eq!("1".parse(), Ok(Probability::ALWAYS));
        assert_eq!(" 0 ".parse(), Ok(Probability::NEVER));
        assert_eq!(Probability(0.02).to_string(), "0.02");
        for bad in ["1.5", "-0.1", "2%", "", "true", "NaN"] {
            let err = bad.parse::<Probability>().unwrap_err().to_string();
            assert!(err.contains("between 0 and 1"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn zero_never_one_always() {
        let mut rng = StdRng::seed_from_u64(9);
        let always_fail = FaultRates {
            error: Probability::ALWAYS,
            hang: Probability::ALWAYS,
        };
        let always_hang = FaultRates {
            error: Probability::NEVER,
            hang: Probability::ALWAYS,
        };
        for _ in 0..1000 {
            assert_eq!(FaultRates::default().decide(&mut rng), Fault::None);
            assert_eq!(always_fail.decide(&mut rng), Fault::Error);
            assert_eq!(always_hang.decide(&mut rng), Fault::Hang);
        }
    }

    #[test]
    fn rates_are_frequencies() {
        let mut rng = StdRng::seed_from_u64(10);
        let rates = FaultRates {
            error: Probability(0.1),
            hang: Probability(0.2),
        };
        let n = 20_000;
        let (mut errors, mut hangs) = (0, 0);
        for _ in 0..n {
            match rates.decide(&mut rng) {
                Fault::Error => errors += 1,
                Fault::Hang => hangs += 1,
                Fault::None => {}
            }
        }
        let (errors, hangs) = (
            f64::from(errors) / f64::from(n),
            f64::from(hangs) / f64::from(n),
        );
        assert!((errors - 0.1).abs() < 0.01, "{errors}");
        // (1 - 0.1) * 0.2
        assert!((hangs - 0.18).abs() < 0.01, "{hangs}");
    }
}
