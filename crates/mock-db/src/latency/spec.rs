//! The latency-spec language.
//!
//! ```text
//! spec     = base *( "+" spike )
//! base     = duration                               100ms, 1.5s
//!          | "uniform(" min "," max ")"              uniform(50ms,150ms)
//!          | "normal(" mean "," stddev ")"           normal(100ms,20ms)
//!          | "lognormal(" median "," p99 ")"         lognormal(median=80ms,p99=900ms)
//!          | "pareto(" scale "," shape ")"           pareto(scale=50ms,shape=1.5)
//! spike    = "spike(" p "," delay ")"                spike(p=0.01,1s)
//! ```
//!
//! Every argument may be written positionally or as `name=value` (in any
//! order once named); white space around any token is ignored. Aliases:
//! `pareto(min=…,alpha=…)` for `scale`/`shape`, `uniform(low=…,high=…)`.
//!
//! Why these parameters: they are the ones a person reading a latency
//! dashboard thinks in. A log-normal is given by its median and p99 (the
//! two numbers on every dashboard), not by `mu` and `sigma`; a Pareto by its
//! minimum (`scale`) and how heavy its tail is (`shape`, smaller is heavier:
//! below 2 the variance is infinite, at or below 1 even the mean is).
//!
//! [`LatencySpec`]'s `Display` prints the canonical form, which parses back
//! to an equal spec — so a spec can be logged, put on a span, passed on a
//! command line and read again without drift.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::units::{self, format_duration, format_number, UnitError};

/// Shown with every parse error: the reader should not need the docs.
pub const ACCEPTED_FORMS: &str = "accepted forms: 100ms, 1.5s, uniform(50ms,150ms), \
normal(mean=100ms,stddev=20ms), lognormal(median=80ms,p99=900ms), \
pareto(scale=50ms,shape=1.5), and any of these followed by +spike(p=0.01,1s)";

/// z-score of the 99th percentile of the standard normal distribution.
pub(crate) const Z_P99: f64 = 2.326_347_874_040_841;

/// The part of a latency every request pays.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Base {
    /// Always this long.
    Fixed(Duration),
    /// Evenly spread between `min` and `max` (inclusive).
    Uniform { min: Duration, max: Duration },
    /// Bell-shaped around `mean`; samples below zero become zero.
    Normal { mean: Duration, stddev: Duration },
    /// Skewed: half the requests are faster than `median`, 1 % slower than
    /// `p99`. `mu = ln(median)`, `sigma = (ln(p99) - ln(median)) / 2.3263`.
    LogNormal { median: Duration, p99: Duration },
    /// Heavy-tailed: never below `scale`; `P(X > x) = (scale / x)^shape`.
    Pareto { scale: Duration, shape: f64 },
}

/// An occasional extra delay on top of the base: with probability `p`, add
/// `delay` (a GC pause, a cache miss, a retransmit).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spike {
    pub probability: f64,
    pub delay: Duration,
}

/// A validated latency model: a base and any number of spikes.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencySpec {
    base: Base,
    spikes: Vec<Spike>,
}

/// What was wrong with a spec, without the input (see [`SpecError`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecProblem {
    #[error("the spec is empty")]
    Empty,
    #[error(transparent)]
    Unit(#[from] UnitError),
    #[error("unknown function {0:?}")]
    UnknownFunction(String),
    #[error("{0}")]
    Syntax(String),
    #[error("{function}: {message}")]
    Arguments {
        function: &'static str,
        message: String,
    },
    #[error(
        "spike(…) adds to a base latency and cannot stand alone: write e.g. 100ms+spike(p=0.01,1s)"
    )]
    SpikeWithoutBase,
}

/// A spec that did not parse: the offending input (shortened), what was
/// wrong, and the forms that would have been accepted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid latency spec {input:?}: {problem}; {ACCEPTED_FORMS}")]
pub struct SpecError {
    pub input: String,
    pub problem: SpecProblem,
}

impl LatencySpec {
    /// Checks the parameters (`min <= max`, `p99 >= median > 0`, a shape
    /// above zero, probabilities within `0..=1`).
    pub fn new(base: Base, spikes: Vec<Spike>) -> Result<Self, SpecProblem> {
        let arguments = |function, message: String| SpecProblem::Arguments { function, message };
        match base {
            Base::Fixed(_) | Base::Normal { .. } => {}
            Base::Uniform { min, max } => {
                if min > max {
                    return Err(arguments(
                        "uniform",
                        format!(
                            "min {} is above max {}",
                            format_duration(min),
                            format_duration(max)
                        ),
                    ));
                }
            }
            Base::LogNormal { median, p99 } => {
                if median.is_zero() {
                    return Err(arguments("lognormal", "the median must be above 0".into()));
                }
                if p99 < median {
                    return Err(arguments(
                        "lognormal",
                        format!(
                            "p99 {} is below the median {}",
                            format_duration(p99),
                            format_duration(median)
                        ),
                    ));
                }
            }
            Base::Pareto { scale, shape } => {
                if scale.is_zero() {
                    return Err(arguments("pareto", "scale must be above 0".into()));
                }
                if !(shape.is_finite() && shape > 0.0) {
                    return Err(arguments("pareto", "shape must be above 0".into()));
                }
            }
        }
        for spike in &spikes {
            if !(0.0..=1.0).contains(&spike.probability) {
                return Err(arguments(
                    "spike",
                    "p must be between 0 and 1, e.g. p=0.01".into(),
                ));
            }
        }
        Ok(Self { base, spikes })
    }

    /// A constant latency (cannot fail).
    pub fn fixed(delay: Duration) -> Self {
        Self {
            base: Base::Fixed(delay),
            spikes: Vec::new(),
        }
    }

    pub fn base(&self) -> &Base {
        &self.base
    }

    pub fn spikes(&self) -> &[Spike] {
        &self.spikes
    }

    /// The largest delay this spec asks for outright: a bounded base's upper
    /// bound (an unbounded one's centre — mean, median, or Pareto's median),
    /// plus every spike. What `--max-delay` is checked against: a request
    /// for more than the limit is refused, while the rare sample of an
    /// unbounded model beyond it is only clamped.
    pub fn nominal_max(&self) -> Duration {
        let base = match self.base {
            Base::Fixed(d) => d,
            Base::Uniform { max, .. } => max,
            Base::Normal { mean, .. } => mean,
            Base::LogNormal { median, .. } => median,
            Base::Pareto { scale, shape } => {
                Duration::try_from_secs_f64(scale.as_secs_f64() * 2f64.powf(1.0 / shape))
                    .unwrap_or(Duration::MAX)
            }
        };
        self.spikes
            .iter()
            .fold(base, |sum, spike| sum.saturating_add(spike.delay))
    }
}

impl fmt::Display for Base {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = |d: &Duration| format_duration(*d);
        match self {
            Base::Fixed(delay) => f.write_str(&d(delay)),
            Base::Uniform { min, max } => write!(f, "uniform({},{})", d(min), d(max)),
            Base::Normal { mean, stddev } => {
                write!(f, "normal(mean={},stddev={})", d(mean), d(stddev))
            }
            Base::LogNormal { median, p99 } => {
                write!(f, "lognormal(median={},p99={})", d(median), d(p99))
            }
            Base::Pareto { scale, shape } => {
                write!(
                    f,
                    "pareto(scale={},shape={})",
                    d(scale),
                    format_number(*shape)
                )
            }
        }
    }
}

impl fmt::Display for Spike {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "spike(p={},{})",
            format_number(self.probability),
            format_duration(self.delay)
        )
    }
}

impl fmt::Display for LatencySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.base)?;
        for spike in &self.spikes {
            write!(f, "+{spike}")?;
        }
        Ok(())
    }
}

impl FromStr for LatencySpec {
    type Err = SpecError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        parse(input).map_err(|problem| SpecError {
            input: units::shorten(input.trim()),
            problem,
        })
    }
}

fn parse(input: &str) -> Result<LatencySpec, SpecProblem> {
    if input.trim().is_empty() {
        return Err(SpecProblem::Empty);
    }
    let mut terms = split_top_level(input, '+')?.into_iter();
    let first = terms.next().unwrap_or_default();
    let base = match call(first)? {
        None => Base::Fixed(units::parse_duration(first)?),
        Some(("spike", _)) => return Err(SpecProblem::SpikeWithoutBase),
        Some((name, args)) => parse_base(name, args)?,
    };
    let mut spikes = Vec::new();
    for term in terms {
        match call(term)? {
            Some(("spike", args)) => {
                let [p, delay] = arguments("spike", args, &[&["p"], &["delay"]])?;
                spikes.push(Spike {
                    probability: units::parse_number(p)?,
                    delay: units::parse_duration(delay)?,
                });
            }
            _ => {
                return Err(SpecProblem::Syntax(format!(
                    "only spike(…) may follow '+', found {:?}",
                    units::shorten(term.trim())
                )))
            }
        }
    }
    LatencySpec::new(base, spikes)
}

fn parse_base(name: &str, args: &str) -> Result<Base, SpecProblem> {
    let dur = |s: &str| units::parse_duration(s).map_err(SpecProblem::from);
    Ok(match name {
        "uniform" => {
            let [min, max] = arguments("uniform", args, &[&["min", "low"], &["max", "high"]])?;
            Base::Uniform {
                min: dur(min)?,
                max: dur(max)?,
            }
        }
        "normal" => {
            let [mean, stddev] = arguments("normal", args, &[&["mean"], &["stddev"]])?;
            Base::Normal {
                mean: dur(mean)?,
                stddev: dur(stddev)?,
            }
        }
        "lognormal" => {
            let [median, p99] = arguments("lognormal", args, &[&["median"], &["p99"]])?;
            Base::LogNormal {
                median: dur(median)?,
                p99: dur(p99)?,
            }
        }
        "pareto" => {
            let [scale, shape] =
                arguments("pareto", args, &[&["scale", "min"], &["shape", "alpha"]])?;
            Base::Pareto {
                scale: dur(scale)?,
                shape: units::parse_number(shape)?,
            }
        }
        other => return Err(SpecProblem::UnknownFunction(units::shorten(other))),
    })
}

/// `name(args)` → `Some((name, args))`; anything without a parenthesis →
/// `None` (a plain duration).
fn call(term: &str) -> Result<Option<(&str, &str)>, SpecProblem> {
    let term = term.trim();
    let Some(open) = term.find('(') else {
        if term.contains(')') {
            return Err(SpecProblem::Syntax("unbalanced ')'".into()));
        }
        return Ok(None);
    };
    let Some(inner) = term[open + 1..].strip_suffix(')') else {
        return Err(SpecProblem::Syntax(format!(
            "{:?} must end with ')'",
            units::shorten(term)
        )));
    };
    if inner.contains(['(', ')']) {
        return Err(SpecProblem::Syntax("functions do not nest".into()));
    }
    let name = term[..open].trim();
    if name.is_empty() {
        return Err(SpecProblem::Syntax("'(' without a function name".into()));
    }
    Ok(Some((name, inner)))
}

/// Splits on `sep` outside parentheses; refuses unbalanced ones and empty
/// terms (`100ms+`, `+spike(…)`).
fn split_top_level(input: &str, sep: char) -> Result<Vec<&str>, SpecProblem> {
    let mut terms = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in input.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| SpecProblem::Syntax("unbalanced ')'".into()))?
            }
            c if c == sep && depth == 0 => {
                terms.push(&input[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(SpecProblem::Syntax("unbalanced '('".into()));
    }
    terms.push(&input[start..]);
    if terms.iter().any(|t| t.trim().is_empty()) {
        return Err(SpecProblem::Syntax(format!("empty term around '{sep}'")));
    }
    Ok(terms)
}

/// Matches `args` (`a, b` or `name=a, name=b`, mixed) against the
/// parameters, each given as its accepted names (canonical first).
fn arguments<'a, const N: usize>(
    function: &'static str,
    args: &'a str,
    params: &[&[&str]; N],
) -> Result<[&'a str; N], SpecProblem> {
    let problem = |message: String| SpecProblem::Arguments { function, message };
    let usage = || {
        params
            .iter()
            .map(|names| names[0])
            .collect::<Vec<_>>()
            .join(", ")
    };
    let given: Vec<&str> = args.split(',').collect();
    if given.len() != N {
        return Err(problem(format!(
            "takes {N} arguments ({}), got {}",
            usage(),
            given.len()
        )));
    }
    let mut values: [Option<&str>; N] = [None; N];
    for (position, arg) in given.into_iter().enumerate() {
        let (slot, value) = match arg.split_once('=') {
            Some((name, value)) => {
                let name = name.trim();
                let slot = params
                    .iter()
                    .position(|names| names.contains(&name))
                    .ok_or_else(|| {
                        problem(format!(
                            "unknown argument {:?} (expected {})",
                            units::shorten(name),
                            usage()
                        ))
                    })?;
                (slot, value)
            }
            None => (position, arg),
        };
        if values[slot].is_some() {
            return Err(problem(format!("{} given twice", params[slot][0])));
        }
        values[slot] = Some(value.trim());
    }
    let mut out = [""; N];
    for (slot, value) in values.into_iter().enumerate() {
        out[slot] = value.ok_or_else(|| problem(format!("{} is missing", params[slot][0])))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn parsed(s: &str) -> LatencySpec {
        s.parse().unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn the_forms_of_the_issue_parse() {
        assert_eq!(parsed("100ms"), LatencySpec::fixed(ms(100)));
        assert_eq!(
            *parsed("uniform(50ms,150ms)").base(),
            Base::Uniform {
                min: ms(50),
                max: ms(150)
            }
        );
        assert_eq!(
            *parsed("normal(100ms,20ms)").base(),
            Base::Normal {
                mean: ms(100),
                stddev: ms(20)
            }
        );
        assert_eq!(
            *parsed("lognormal(median=80ms,p99=900ms)").base(),
            Base::LogNormal {
                median: ms(80),
                p99: ms(900)
            }
        );
        assert_eq!(
            *parsed("pareto(scale=50ms,shape=1.5)").base(),
            Base::Pareto {
                scale: ms(50),
                shape: 1.5
            }
        );
        let spiky = parsed("100ms+spike(p=0.01,1s)");
        assert_eq!(*spiky.base(), Base::Fixed(ms(100)));
        assert_eq!(
            spiky.spikes(),
            &[Spike {
                probability: 0.01,
                delay: ms(1000)
            }]
        );
    }

    #[test]
    fn names_aliases_order_and_white_space() {
        let a = parsed(" pareto ( alpha = 1.5 , min = 50ms ) ");
        assert_eq!(a, parsed("pareto(50ms,1.5)"));
        assert_eq!(parsed("uniform(high=2s, low=1s)"), parsed("uniform(1s,2s)"));
        assert_eq!(
            parsed("lognormal(80ms, p99=900ms) + spike(delay=1s, p=0.5) + spike(0.1, 2s)")
                .spikes()
                .len(),
            2
        );
        // Compound durations still work where the old flag took them.
        assert_eq!(parsed("1s 500ms"), LatencySpec::fixed(ms(1500)));
    }

    #[test]
    fn display_is_canonical_and_parses_back() {
        for (input, canonical) in [
            ("100ms", "100ms"),
            ("1.5s", "1500ms"),
            ("uniform( 50ms , 150ms )", "uniform(50ms,150ms)"),
            ("normal(100ms,20ms)", "normal(mean=100ms,stddev=20ms)"),
            ("lognormal(80ms,900ms)", "lognormal(median=80ms,p99=900ms)"),
            ("pareto(min=50ms,alpha=1.5)", "pareto(scale=50ms,shape=1.5)"),
            ("100ms+spike(p=0.01,1s)", "100ms+spike(p=0.01,1s)"),
        ] {
            let spec = parsed(input);
            assert_eq!(spec.to_string(), canonical);
            assert_eq!(parsed(canonical), spec);
        }
    }

    #[test]
    fn errors_say_what_is_wrong_and_what_is_accepted() {
        for (bad, says) in [
            ("", "empty"),
            ("fast", "not a duration"),
            ("100", "not a duration"),
            ("gamma(1,2)", "unknown function"),
            ("uniform(150ms,50ms)", "above max"),
            ("uniform(50ms)", "takes 2 arguments"),
            ("uniform(50ms,150ms,1s)", "takes 2 arguments"),
            ("normal(mean=1s,mean=2s)", "given twice"),
            ("normal(mean=1s,sd=2s)", "unknown argument"),
            ("lognormal(median=0ms,p99=1s)", "median must be above 0"),
            ("lognormal(median=1s,p99=100ms)", "below the median"),
            ("pareto(scale=50ms,shape=0)", "shape must be above 0"),
            ("pareto(scale=0ms,shape=1)", "scale must be above 0"),
            ("100ms+spike(p=1.5,1s)", "between 0 and 1"),
            ("100ms+spike(p=-1,1s)", "not a plain decimal"),
            ("spike(p=0.1,1s)", "cannot stand alone"),
            ("100ms+200ms", "only spike"),
            ("100ms+", "empty term"),
            ("uniform(50ms,150ms", "unbalanced"),
            ("uniform(50ms,150ms))", "unbalanced"),
            ("uniform((1s),2s)", "nest"),
            ("(1s)", "without a function name"),
            ("25h", "24h"),
        ] {
            let err = bad.parse::<LatencySpec>().unwrap_err().to_string();
            assert!(err.contains(says), "{bad:?}: {err}");
            assert!(err.contains(ACCEPTED_FORMS), "{bad:?}: {err}");
        }
    }

    #[test]
    fn nominal_max_is_what_the_spec_asks_for() {
        assert_eq!(parsed("100ms").nominal_max(), ms(100));
        assert_eq!(parsed("uniform(1s,5s)").nominal_max(), ms(5000));
        assert_eq!(parsed("normal(1s,5s)").nominal_max(), ms(1000));
        assert_eq!(parsed("lognormal(80ms,900ms)").nominal_max(), ms(80));
        // Pareto's median: scale * 2^(1/shape) = 100ms * 2.
        assert_eq!(parsed("pareto(100ms,1)").nominal_max(), ms(200));
        assert_eq!(
            parsed("100ms+spike(p=0.001,40s)+spike(p=0.5,1s)").nominal_max(),
            ms(41_100)
        );
    }
}
