//! What a scenario description says (`scenarios/NAME.toml`), read strictly:
//! an unknown field, a claim that names a phase or a measure that does not
//! exist, or a control that changes nothing is an error that names it, so a
//! description cannot silently stop checking what it says it checks.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::expr::{self, Condition, Needs, Template};

/// One situation, the requests that show it, and the claim they test.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// What a student would look for: `retry-storm`, `breaker`, … (the file's name).
    pub name: String,
    /// The lesson it belongs to: a file under `docs/lessons/`, without `.md`.
    pub lesson: String,
    /// One line for `latency-lab scenario`'s list.
    pub about: String,
    /// Start-up settings: the services' own variables (`ORDER_SERVICE_DB_POOL_SIZE`,
    /// `AGGREGATOR_MAX_IN_FLIGHT`, …). A running suite (`--target`) cannot take them.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Export through a real OpenTelemetry Collector into a real Jaeger (the
    /// Jaeger binary in both roles, as the tests run them) instead of the
    /// embedded receiver: for what only the pipeline does (tail sampling).
    #[serde(default)]
    pub collector: Option<CollectorSpec>,
    /// Follow each phase's traces as `up` and `view` do, the aggregator
    /// batching its spans for `export_delay`: for the completion rule's
    /// figures (`whole_first`, `printed_again`).
    #[serde(default)]
    pub follow: Option<FollowSpec>,
    #[serde(rename = "phase")]
    pub phases: Vec<Phase>,
    pub claim: Claim,
    pub control: Control,
}

/// Requests of one kind, sent one phase after another to the same suite.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// Names the phase in the claim (`concurrent.p50`): lowercase letters,
    /// digits, `_`; starts with a letter.
    pub name: String,
    /// The aggregator path.
    #[serde(default = "default_path")]
    pub path: String,
    /// Query parameters, as in a URL (`mode=concurrent&retry=on`).
    #[serde(default)]
    pub query: String,
    /// W3C baggage entries, written plainly: values are percent-encoded on
    /// the wire (`200ms+spike(p=0.05,1s)` needs `%3D` and `%2C` there).
    #[serde(default)]
    pub baggage: BTreeMap<String, String>,
    /// Other request headers (`traceparent`, …).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub requests: u64,
    /// An open loop at this many requests a second; without it, a closed
    /// loop of `concurrency` requests in flight.
    #[serde(default)]
    pub rate: Option<f64>,
    /// Closed loop: requests in flight (1 unless said), each sent when the
    /// previous one's answer is in.
    #[serde(default)]
    pub concurrency: Option<u64>,
    /// Which trace of the phase to print as a waterfall.
    #[serde(default)]
    pub show: Show,
    /// Its shown trace is shipped with the docs, in `docs/traces/SCENARIO.PHASE.json`.
    #[serde(default)]
    pub ship: bool,
    /// Print `latency-lab explain`'s report over the phase's traces: the
    /// critical path of the typical requests against the tail's.
    #[serde(default)]
    pub explain: bool,
}

fn default_path() -> String {
    "/user-profile/42".to_owned()
}

/// Which of a phase's traces to draw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Show {
    /// The slowest request's trace (the only one of a one-request phase).
    #[default]
    Slowest,
    First,
    Last,
    /// Every trace the phase made (at most a few: a request split in three).
    All,
    None,
}

/// The lesson's claim, as this run measured it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    /// The sentence the verdict prints, `{phase.measure}` filled in.
    pub says: String,
    /// Conditions that must all hold (`concurrent.p50 < 0.8 * sequential.p50`).
    pub holds_if: Vec<String>,
}

/// The same scenario with the remedy or the fault switched off: the claim
/// must then not hold, or it was not the remedy that made it hold.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Control {
    /// What the control switches off, in a few words.
    pub does: String,
    /// Start-up settings that replace or add to the scenario's.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Per phase, fields that replace the scenario's.
    #[serde(default)]
    pub phase: BTreeMap<String, PhaseChange>,
    /// The collector's variables that replace or add to the scenario's.
    #[serde(default)]
    pub collector_env: BTreeMap<String, String>,
    /// Replaces `follow.wait` (`--trace-wait`).
    #[serde(default)]
    pub follow_wait: Option<String>,
}

/// How the phase's traces are followed, as `--trace-quiet` and
/// `--trace-wait` say for `up`, and how late the aggregator sends its spans.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FollowSpec {
    /// The aggregator's `OTEL_BSP_SCHEDULE_DELAY` (the other services send
    /// every 100 ms), e.g. `5s`, an SDK's default.
    pub export_delay: String,
    /// `--trace-quiet` [default: 1500ms].
    #[serde(default)]
    pub quiet: Option<String>,
    /// `--trace-wait` [default: 10s].
    #[serde(default)]
    pub wait: Option<String>,
}

impl FollowSpec {
    fn duration(value: Option<&str>, default: &str) -> Result<std::time::Duration, String> {
        service_kit::cli::parse_duration(value.unwrap_or(default))
    }

    pub fn export_delay(&self) -> std::time::Duration {
        Self::duration(Some(&self.export_delay), "0s").unwrap_or_default()
    }

    pub fn timing(&self) -> crate::up::follow::Timing {
        crate::up::follow::Timing {
            quiet: Self::duration(self.quiet.as_deref(), "1500ms").unwrap_or_default(),
            max_wait: Self::duration(self.wait.as_deref(), "10s").unwrap_or_default(),
        }
    }

    fn check(&self) -> Result<(), String> {
        Self::duration(Some(&self.export_delay), "0s")
            .map_err(|e| format!("follow.export_delay: {e}"))?;
        Self::duration(self.quiet.as_deref(), "1500ms")
            .map_err(|e| format!("follow.quiet: {e}"))?;
        Self::duration(self.wait.as_deref(), "10s").map_err(|e| format!("follow.wait: {e}"))?;
        Ok(())
    }
}

/// The collector a scenario's spans go through.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectorSpec {
    /// Further `--config` files after `otel-collector.yaml`, from the
    /// repository's root (`otel-collector.tail-sampling.yaml`).
    #[serde(default)]
    pub overlays: Vec<String>,
    /// The collector's variables (`TAIL_SAMPLING_PERCENT`, …).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Instead of one collector, the scale-out pipeline of `deploy/`: a
    /// front tier (`deploy/configs/front.yaml`, routing by `LB_ROUTING_KEY`)
    /// sending to this many tail samplers (`sampler.yaml`), each into a
    /// Jaeger of its own; `env` goes to every one of them.
    #[serde(default)]
    pub samplers: Option<usize>,
}

/// The fields of a phase a control may replace.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseChange {
    pub query: Option<String>,
    pub baggage: Option<BTreeMap<String, String>>,
    pub headers: Option<BTreeMap<String, String>>,
}

/// A description that cannot be run as written, and why.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{file}: {source}")]
    Toml {
        file: String,
        #[source]
        source: toml::de::Error,
    },
    #[error("{file}: {what}")]
    Invalid { file: String, what: String },
}

/// A description read and checked, its claim parsed.
#[derive(Debug, Clone)]
pub struct Checked {
    pub scenario: Scenario,
    pub conditions: Vec<Condition>,
    pub says: Template,
}

impl Checked {
    /// Reads `text`, the contents of `file` (`fan-out.toml`).
    pub fn parse(file: &str, text: &str) -> Result<Checked, SpecError> {
        let scenario: Scenario = toml::from_str(text).map_err(|source| SpecError::Toml {
            file: file.to_owned(),
            source,
        })?;
        let invalid = |what: String| SpecError::Invalid {
            file: file.to_owned(),
            what,
        };
        scenario.check(file).map_err(invalid)?;
        let phases: Vec<&str> = scenario.phases.iter().map(|p| p.name.as_str()).collect();
        let conditions = scenario
            .claim
            .holds_if
            .iter()
            .map(|c| expr::parse_condition(c, &phases))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(format!("claim.holds_if: {e}")))?;
        let reads_following = conditions.iter().any(|c| c.needs().follow);
        if reads_following && scenario.follow.is_none() {
            return Err(invalid(
                "the claim reads how traces were followed (whole_first, printed_again), but the scenario has no [follow]"
                    .to_owned(),
            ));
        }
        let reads_jaeger = conditions.iter().any(|c| c.needs().jaeger);
        if reads_jaeger && scenario.collector.is_none() {
            return Err(invalid(
                "the claim reads what Jaeger kept (kept, whole), but the scenario has no [collector]"
                    .to_owned(),
            ));
        }
        if conditions.is_empty() {
            return Err(invalid(
                "claim.holds_if is empty: a claim needs a condition".to_owned(),
            ));
        }
        let says = Template::parse(&scenario.claim.says, &phases)
            .map_err(|e| invalid(format!("claim.says: {e}")))?;
        Ok(Checked {
            scenario,
            conditions,
            says,
        })
    }

    /// What the claim reads: answers only, or spans and metrics too.
    pub fn needs(&self) -> Needs {
        self.conditions
            .iter()
            .map(Condition::needs)
            .chain(std::iter::once(self.says.needs()))
            .fold(Needs::default(), Needs::union)
    }

    /// The control: the same scenario with its changes applied.
    pub fn control(&self) -> Checked {
        let mut control = self.clone();
        let s = &mut control.scenario;
        s.env.extend(self.scenario.control.env.clone());
        if let Some(collector) = &mut s.collector {
            collector
                .env
                .extend(self.scenario.control.collector_env.clone());
        }
        if let (Some(follow), Some(wait)) = (&mut s.follow, &self.scenario.control.follow_wait) {
            follow.wait = Some(wait.clone());
        }
        for phase in &mut s.phases {
            if let Some(change) = self.scenario.control.phase.get(&phase.name) {
                if let Some(query) = &change.query {
                    phase.query = query.clone();
                }
                if let Some(baggage) = &change.baggage {
                    phase.baggage = baggage.clone();
                }
                if let Some(headers) = &change.headers {
                    phase.headers = headers.clone();
                }
            }
        }
        control
    }
}

impl Scenario {
    fn check(&self, file: &str) -> Result<(), String> {
        if file.strip_suffix(".toml") != Some(self.name.as_str()) {
            return Err(format!("name {:?} is not the file's name", self.name));
        }
        if self.phases.is_empty() {
            return Err("no [[phase]]: a scenario sends requests".to_owned());
        }
        for (i, phase) in self.phases.iter().enumerate() {
            let ok_name = phase.name.starts_with(|c: char| c.is_ascii_lowercase())
                && phase
                    .name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !ok_name || phase.name == expr::WHOLE_RUN {
                return Err(format!(
                    "phase name {:?}: lowercase letters, digits and _, starting with a letter (and not {:?})",
                    phase.name,
                    expr::WHOLE_RUN
                ));
            }
            if self.phases[..i].iter().any(|p| p.name == phase.name) {
                return Err(format!("two phases are named {:?}", phase.name));
            }
            if !(1..=100_000).contains(&phase.requests) {
                return Err(format!("phase {}: requests is 1 to 100000", phase.name));
            }
            match (phase.rate, phase.concurrency) {
                (Some(_), Some(_)) => {
                    return Err(format!(
                        "phase {}: rate (an open loop) or concurrency (a closed loop), not both",
                        phase.name
                    ))
                }
                (Some(rate), None) if !(rate > 0.0 && rate <= 10_000.0) => {
                    return Err(format!(
                        "phase {}: rate is above 0 and at most 10000",
                        phase.name
                    ))
                }
                (None, Some(c)) if !(1..=256).contains(&c) => {
                    return Err(format!("phase {}: concurrency is 1 to 256", phase.name))
                }
                _ => {}
            }
            if !phase.path.starts_with('/') {
                return Err(format!("phase {}: path starts with /", phase.name));
            }
        }
        for name in self.control.phase.keys() {
            if !self.phases.iter().any(|p| &p.name == name) {
                return Err(format!("control.phase.{name}: no phase of that name"));
            }
        }
        if let Some(collector) = &self.collector {
            match collector.samplers {
                Some(n) if !(2..=8).contains(&n) => {
                    return Err(format!("collector.samplers = {n}: from 2 to 8"))
                }
                Some(_) if !collector.overlays.is_empty() => {
                    return Err(
                        "collector.overlays: the samplers run deploy/configs/sampler.yaml, not overlays"
                            .to_owned(),
                    )
                }
                _ => {}
            }
        }
        if !self.control.collector_env.is_empty() && self.collector.is_none() {
            return Err("control.collector_env: the scenario has no [collector]".to_owned());
        }
        if let Some(follow) = &self.follow {
            follow.check()?;
        }
        match (&self.control.follow_wait, &self.follow) {
            (Some(_), None) => {
                return Err("control.follow_wait: the scenario has no [follow]".to_owned())
            }
            (Some(wait), Some(_)) => {
                service_kit::cli::parse_duration(wait)
                    .map_err(|e| format!("control.follow_wait: {e}"))?;
            }
            _ => {}
        }
        let changes_something = !self.control.env.is_empty()
            || !self.control.collector_env.is_empty()
            || self.control.follow_wait.is_some()
            || self
                .control
                .phase
                .values()
                .any(|c| c.query.is_some() || c.baggage.is_some() || c.headers.is_some());
        if !changes_something {
            return Err(
                "the control changes nothing: it must switch the remedy or the fault off"
                    .to_owned(),
            );
        }
        for key in self.env.keys().chain(self.control.env.keys()) {
            let ok = ["USER_SERVICE_", "ORDER_SERVICE_", "AGGREGATOR_"]
                .iter()
                .any(|prefix| key.starts_with(prefix));
            if !ok {
                return Err(format!(
                    "env {key}: only the services' own settings (USER_SERVICE_*, ORDER_SERVICE_*, AGGREGATOR_*)"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = r#"
name = "x"
lesson = "01-latency-is-waiting"
about = "a test"
[[phase]]
name = "a"
requests = 2
[claim]
says = "{a.p50}"
holds_if = ["a.p50 < 1s"]
[control]
does = "slower"
[control.phase.a]
query = "mode=sequential"
"#;

    fn error(text: &str) -> String {
        Checked::parse("x.toml", text).unwrap_err().to_string()
    }

    #[test]
    fn a_valid_description_and_its_control() {
        let checked = Checked::parse("x.toml", VALID).unwrap();
        assert_eq!(checked.scenario.phases[0].query, "");
        assert_eq!(checked.scenario.phases[0].path, "/user-profile/42");
        assert_eq!(
            checked.control().scenario.phases[0].query,
            "mode=sequential"
        );
        assert_eq!(checked.needs(), Needs::default());
    }

    #[test]
    fn a_followed_scenario_and_its_control_wait() {
        let text = VALID
            .replace(
                "about = \"a test\"",
                "about = \"a test\"\n[follow]\nexport_delay = \"5s\"",
            )
            .replace("a.p50 < 1s", "a.whole_first >= 100%")
            .replace("[control.phase.a]\nquery = \"mode=sequential\"", "")
            .replace(
                "does = \"slower\"",
                "does = \"shorter\"\nfollow_wait = \"1s\"",
            );
        let checked = Checked::parse("x.toml", &text).unwrap();
        let follow = checked.scenario.follow.as_ref().unwrap();
        assert_eq!(follow.export_delay(), std::time::Duration::from_secs(5));
        assert_eq!(follow.timing().max_wait, std::time::Duration::from_secs(10));
        let control = checked.control();
        let waits = control.scenario.follow.as_ref().unwrap().timing().max_wait;
        assert_eq!(waits, std::time::Duration::from_secs(1));
        assert!(checked.needs().follow);
    }

    #[test]
    fn every_mistake_is_named() {
        for (text, says) in [
            (
                VALID.replace("requests = 2", "requests = 2\nrequsts = 3"),
                "unknown field `requsts`",
            ),
            (
                VALID.replace("name = \"x\"", "name = \"y\""),
                "not the file's name",
            ),
            (
                VALID.replace("name = \"a\"", "name = \"A\""),
                "phase name \"A\"",
            ),
            (
                VALID.replace("requests = 2", "requests = 0"),
                "requests is 1 to 100000",
            ),
            (
                VALID.replace("requests = 2", "requests = 2\nrate = 5.0\nconcurrency = 2"),
                "not both",
            ),
            (VALID.replace("a.p50 < 1s", "b.p50 < 1s"), "no phase \"b\""),
            (
                VALID.replace("[control.phase.a]", "[control.phase.b]"),
                "control.phase.b: no phase",
            ),
            (
                VALID.replace("query = \"mode=sequential\"", ""),
                "the control changes nothing",
            ),
            (
                VALID.replace("a.p50 < 1s", "a.kept == 100%"),
                "no [collector]",
            ),
            (
                VALID.replace(
                    "about = \"a test\"",
                    "about = \"a test\"\nenv = { OTEL_X = \"1\" }",
                ),
                "env OTEL_X: only the services' own settings",
            ),
            (
                VALID.replace("a.p50 < 1s", "a.whole_first >= 100%"),
                "no [follow]",
            ),
            (
                VALID.replace("a.p50 < 1s", "a.whole == 100%"),
                "(kept, whole), but the scenario has no [collector]",
            ),
            (
                VALID.replace(
                    "about = \"a test\"",
                    "about = \"a test\"\n[collector]\nsamplers = 1",
                ),
                "collector.samplers = 1: from 2 to 8",
            ),
            (
                VALID.replace(
                    "about = \"a test\"",
                    "about = \"a test\"\n[collector]\nsamplers = 2\noverlays = [\"o.yaml\"]",
                ),
                "collector.overlays: the samplers run deploy/configs/sampler.yaml",
            ),
            (
                VALID.replace(
                    "does = \"slower\"",
                    "does = \"slower\"\nfollow_wait = \"1s\"",
                ),
                "control.follow_wait: the scenario has no [follow]",
            ),
            (
                VALID.replace(
                    "about = \"a test\"",
                    "about = \"a test\"\n[follow]\nexport_delay = \"soon\"",
                ),
                "follow.export_delay",
            ),
        ] {
            let error = error(&text);
            assert!(error.contains(says), "{says:?} not in {error}");
            assert!(error.starts_with("x.toml: "), "{error}");
        }
    }
}
