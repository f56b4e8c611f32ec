//! Latency models and faults for the mock services.
//!
//! A fixed 100 ms teaches where time goes; it cannot teach why the p99 of a
//! fan-out is so much worse than its median. For that the mocks need delays
//! that *vary* the way real dependencies do: mostly quick, sometimes very
//! slow, now and then failing or not answering at all.
//!
//! - [`spec`]: the latency-spec language (`100ms`, `uniform(50ms,150ms)`,
//!   `lognormal(median=80ms,p99=900ms)`, `… +spike(p=0.01,1s)`), parsed from
//!   flags, environment and baggage, printed back in the same form.
//! - [`sample`]: draws delays from a spec with `rand_distr`, from an RNG the
//!   caller passes in, so tests can seed it.
//! - [`faults`]: how often a request fails (503) or hangs.
//! - [`units`]: the durations and numbers the spec language is made of.

pub mod faults;
pub mod sample;
pub mod spec;
pub mod units;

pub use faults::{Fault, FaultRates, Probability, ProbabilityError};
pub use sample::{Sample, Sampler};
pub use spec::{Base, LatencySpec, SpecError, SpecProblem, Spike, ACCEPTED_FORMS};
