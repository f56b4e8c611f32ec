//! The latency-spec language (`lognormal(median=80ms,p99=900ms)+spike(…)`),
//! read from flags, the environment and, per request, from baggage.
//!
//! Properties: no panic; a parsed spec prints a canonical form that parses
//! back to the same spec and prints the same again; every parsed spec can
//! be sampled (the sampler refuses nothing `LatencySpec::new` accepted) and
//! its draws stay within 24 h plus its spikes; an error names the accepted
//! forms and quotes the input only in part, however long it was.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mock_db::latency::units::LONGEST;
use mock_db::latency::{LatencySpec, Sampler, ACCEPTED_FORMS};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Room for the quoted input and offending token (each shortened to 48
/// characters, escaped) around the fixed text of any message.
const MESSAGE_BOUND: usize = ACCEPTED_FORMS.len() + 1024;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match text.parse::<LatencySpec>() {
        Ok(spec) => {
            let written = spec.to_string();
            let reread: LatencySpec = written
                .parse()
                .unwrap_or_else(|e| panic!("{text:?} was written as {written:?}: {e}"));
            assert_eq!(reread, spec, "{text:?} was written as {written:?}");
            assert_eq!(reread.to_string(), written);

            let sampler = Sampler::new(&spec)
                .unwrap_or_else(|e| panic!("{written:?} parsed but cannot be sampled: {e}"));
            let ceiling = spec
                .spikes()
                .iter()
                .fold(LONGEST, |sum, spike| sum.saturating_add(spike.delay));
            let mut rng = StdRng::seed_from_u64(data.len() as u64);
            for _ in 0..8 {
                let sample = sampler.sample(&mut rng);
                assert!(sample.delay <= ceiling, "{written}: {sample:?}");
            }
            let _ = spec.nominal_max();
        }
        Err(error) => {
            let message = error.to_string();
            assert!(message.ends_with(ACCEPTED_FORMS), "{message}");
            assert!(message.len() <= MESSAGE_BOUND, "{} bytes", message.len());
        }
    }
});
