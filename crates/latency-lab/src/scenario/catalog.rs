//! Every scenario description, embedded at build time from `scenarios/`
//! (see `build.rs`): adding a scenario is adding a file there.

use super::spec::{Checked, SpecError};

/// `(file name, contents)` of every `scenarios/*.toml`, in name order.
const DESCRIPTIONS: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/scenarios.rs"));

/// Every scenario, read and checked; the first description that is not
/// valid is an error naming its file.
pub fn all() -> Result<Vec<Checked>, SpecError> {
    DESCRIPTIONS
        .iter()
        .map(|(file, text)| Checked::parse(file, text))
        .collect()
}

/// The scenario called `name`, or the list of names to choose from.
pub fn find(name: &str) -> anyhow::Result<Checked> {
    let all = all()?;
    let names: Vec<&str> = all.iter().map(|c| c.scenario.name.as_str()).collect();
    match all.iter().find(|c| c.scenario.name == name) {
        Some(found) => Ok(found.clone()),
        None => anyhow::bail!(
            "no scenario {name:?}: `latency-lab scenario` lists them ({})",
            names.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_description_is_valid() {
        let all = super::all().unwrap();
        assert!(all.len() >= 10, "{} scenarios", all.len());
    }
}
