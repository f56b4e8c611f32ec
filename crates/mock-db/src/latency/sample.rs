//! Drawing delays from a [`LatencySpec`].
//!
//! The distributions are built once per spec (`rand_distr` validates their
//! parameters at construction), and every draw takes the RNG as an argument:
//! the services pass a per-process RNG, the tests a seeded one, so a
//! statistical test gives the same answer on every run.

use std::time::Duration;

use rand::distr::{Bernoulli, Uniform};
use rand::Rng;
use rand_distr::{Distribution, LogNormal, Normal, Pareto};

use super::spec::{Base, LatencySpec, SpecProblem, Z_P99};
use super::units::LONGEST;

/// One draw: the delay and whether any spike fired (so a span can say
/// *why* this request was slow).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub delay: Duration,
    pub spiked: bool,
}

/// Ready-to-sample form of a [`LatencySpec`].
#[derive(Debug, Clone)]
pub struct Sampler {
    base: BaseSampler,
    spikes: Vec<(Bernoulli, Duration)>,
}

#[derive(Debug, Clone)]
enum BaseSampler {
    Fixed(Duration),
    Uniform(Uniform<f64>),
    Normal(Normal<f64>),
    LogNormal(LogNormal<f64>),
    Pareto(Pareto<f64>),
}

impl Sampler {
    /// Fails only for parameters `rand_distr` refuses; a spec that went
    /// through [`LatencySpec::new`] has none, but a typed error costs less
    /// than a panic path in a request handler.
    pub fn new(spec: &LatencySpec) -> Result<Self, SpecProblem> {
        let refused = |function: &'static str, e: &dyn std::fmt::Display| SpecProblem::Arguments {
            function,
            message: e.to_string(),
        };
        let secs = Duration::as_secs_f64;
        let base = match *spec.base() {
            Base::Fixed(d) => BaseSampler::Fixed(d),
            Base::Uniform { min, max } if min == max => BaseSampler::Fixed(min),
            Base::Uniform { min, max } => BaseSampler::Uniform(
                Uniform::new_inclusive(secs(&min), secs(&max))
                    .map_err(|e| refused("uniform", &e))?,
            ),
            Base::Normal { mean, stddev } => BaseSampler::Normal(
                Normal::new(secs(&mean), secs(&stddev)).map_err(|e| refused("normal", &e))?,
            ),
            Base::LogNormal { median, p99 } => {
                let mu = secs(&median).ln();
                let sigma = (secs(&p99).ln() - mu) / Z_P99;
                BaseSampler::LogNormal(
                    LogNormal::new(mu, sigma).map_err(|e| refused("lognormal", &e))?,
                )
            }
            Base::Pareto { scale, shape } => BaseSampler::Pareto(
                Pareto::new(secs(&scale), shape).map_err(|e| refused("pareto", &e))?,
            ),
        };
        let spikes = spec
            .spikes()
            .iter()
            .map(|s| {
                Bernoulli::new(s.probability)
                    .map(|b| (b, s.delay))
                    .map_err(|e| refused("spike", &e))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { base, spikes })
    }

    /// Always `delay`: the one sampler that needs no validation.
    pub fn fixed(delay: Duration) -> Self {
        Self {
            base: BaseSampler::Fixed(delay),
            spikes: Vec::new(),
        }
    }

    /// One delay. Negative draws (a normal's left tail) become zero; draws
    /// beyond 24 h (a Pareto's right tail) become 24 h — the caller clamps
    /// to its own, much lower, maximum anyway.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Sample {
        let seconds = match &self.base {
            BaseSampler::Fixed(d) => d.as_secs_f64(),
            BaseSampler::Uniform(u) => u.sample(rng),
            BaseSampler::Normal(n) => n.sample(rng),
            BaseSampler::LogNormal(l) => l.sample(rng),
            BaseSampler::Pareto(p) => p.sample(rng),
        };
        let mut delay = match &self.base {
            BaseSampler::Fixed(d) => *d,
            _ => to_duration(seconds),
        };
        let mut spiked = false;
        for (fires, extra) in &self.spikes {
            if fires.sample(rng) {
                spiked = true;
                delay = delay.saturating_add(*extra);
            }
        }
        Sample { delay, spiked }
    }
}

fn to_duration(seconds: f64) -> Duration {
    if seconds.is_nan() || seconds <= 0.0 {
        Duration::ZERO
    } else {
        Duration::try_from_secs_f64(seconds)
            .unwrap_or(LONGEST)
            .min(LONGEST)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn sampler(spec: &str) -> Sampler {
        Sampler::new(&spec.parse().unwrap()).unwrap()
    }

    #[test]
    fn fixed_is_fixed_and_seeded_draws_repeat() {
        let mut rng = StdRng::seed_from_u64(1);
        let s = sampler("100ms");
        for _ in 0..10 {
            assert_eq!(
                s.sample(&mut rng),
                Sample {
                    delay: Duration::from_millis(100),
                    spiked: false
                }
            );
        }
        let s = sampler("lognormal(80ms,900ms)+spike(p=0.5,1s)");
        let draws = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..20).map(|_| s.sample(&mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(draws(7), draws(7));
        assert_ne!(draws(7), draws(8));
    }

    #[test]
    fn out_of_range_draws_are_clamped_not_panics() {
        assert_eq!(to_duration(-1.0), Duration::ZERO);
        assert_eq!(to_duration(f64::NAN), Duration::ZERO);
        assert_eq!(to_duration(f64::INFINITY), LONGEST);
        assert_eq!(to_duration(1e300), LONGEST);
        // A normal centred on zero: about half its draws are negative.
        let s = sampler("normal(0ms,10ms)");
        let mut rng = StdRng::seed_from_u64(3);
        let zeros = (0..1000)
            .filter(|_| s.sample(&mut rng).delay.is_zero())
            .count();
        assert!((400..600).contains(&zeros), "{zeros}");
    }
}
