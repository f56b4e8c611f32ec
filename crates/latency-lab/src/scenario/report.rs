//! What a run prints as it goes, and the JSON of `--json`.

use std::fmt::Write as _;

use serde_json::json;
use trace_view::{Trace, TraceId};

use super::expr::Unit;
use super::figures::PhaseResult;
use super::spec::{Phase, Show};
use crate::load::{self, record::Run};

/// Phases with at least this many requests print their distribution.
const DISTRIBUTION_FROM: usize = 20;

/// At most this many traces of a phase are drawn with `show = "all"`.
const SHOW_ALL_LIMIT: usize = 5;

/// The text report, printed as the run goes (a long phase is not a silent
/// one); nothing with `--json`, which prints the verdict's JSON instead.
pub struct Out {
    pub quiet: bool,
}

impl std::fmt::Write for Out {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if !self.quiet {
            print!("{s}");
        }
        Ok(())
    }
}

/// The file `--save` writes a phase's shown traces to: `SCENARIO.PHASE.json`
/// (`SCENARIO.control.PHASE.json` for the control), also the name of a
/// trace shipped in `docs/traces/`.
pub fn saved_name(scenario: &str, control: bool, phase: &str) -> String {
    if control {
        format!("{scenario}.control.{phase}.json")
    } else {
        format!("{scenario}.{phase}.json")
    }
}

/// How `--json` names a unit.
pub fn unit_name(unit: Unit) -> &'static str {
    match unit {
        Unit::Seconds => "seconds",
        Unit::Fraction => "fraction",
        Unit::Count => "count",
        Unit::PerRequest => "per_request",
        Unit::Ratio => "ratio",
        Unit::Number => "number",
    }
}

/// The traces a phase draws, per its `show`.
pub fn shown_traces(phase: &Phase, result: &PhaseResult) -> Vec<Trace> {
    let by_id = |id: Option<TraceId>| {
        let id = id?;
        result.traces.iter().find(|t| t.trace_id == id).cloned()
    };
    let answered = result.records.iter().filter(|r| r.trace_id.is_some());
    match phase.show {
        Show::None => Vec::new(),
        Show::All => result.traces.iter().take(SHOW_ALL_LIMIT).cloned().collect(),
        Show::First => by_id(result.records.first().and_then(|r| r.trace_id))
            .into_iter()
            .collect(),
        Show::Last => by_id(result.records.last().and_then(|r| r.trace_id))
            .into_iter()
            .collect(),
        Show::Slowest => by_id(answered.max_by_key(|r| r.latency).and_then(|r| r.trace_id))
            .into_iter()
            .collect(),
    }
}

/// The phase's heading and answers: a line for a few requests, the
/// distribution for many.
pub fn describe_phase(out: &mut Out, phase: &Phase, url: &reqwest::Url, run: &Run, width: usize) {
    let pacing = match phase.rate {
        Some(rate) => format!("an open loop at {rate}/s"),
        None => match phase.concurrency.unwrap_or(1) {
            1 => "one at a time".to_owned(),
            n if n >= phase.requests => "all at once".to_owned(),
            n => format!("{n} in flight"),
        },
    };
    let baggage = if phase.baggage.is_empty() {
        String::new()
    } else {
        let entries: Vec<String> = phase
            .baggage
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!(", baggage {}", entries.join(","))
    };
    let _ = writeln!(
        out,
        "phase {}: {} {}, {pacing} — GET {}{}{baggage}",
        phase.name,
        phase.requests,
        if phase.requests == 1 {
            "request"
        } else {
            "requests"
        },
        url.path(),
        url.query().map(|q| format!("?{q}")).unwrap_or_default(),
    );
    let report = load::LoadReport::of(run, 0);
    if run.records.len() >= DISTRIBUTION_FROM {
        let _ = write!(out, "{}", load::render(&report, &phase.name, width));
        let _ = writeln!(out, "{}", load::pacing_line(run));
        return;
    }
    let mut answers: Vec<String> = report
        .statuses
        .iter()
        .map(|(s, n)| format!("{s} ×{n}"))
        .collect();
    answers.extend(report.failures.iter().map(|(k, n)| format!("{k} ×{n}")));
    let latencies: Vec<String> = run
        .records
        .iter()
        .map(|r| load::format_duration(r.latency))
        .collect();
    let _ = writeln!(out, "  answers  {}", answers.join(", "));
    let _ = writeln!(out, "  latency  {}", latencies.join(", "));
}

pub fn phase_json(
    phase: &Phase,
    run: &Run,
    result: &PhaseResult,
    shown: &[Trace],
) -> serde_json::Value {
    let report = load::LoadReport::of(run, 0);
    let ms = |q: f64| report.quantile(q).map(|d| d.as_secs_f64() * 1000.0);
    json!({
        "name": phase.name,
        "requests": run.records.len(),
        "answers": report.statuses.iter().map(|(s, n)| (s.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "failures": report.failures,
        "p50_ms": ms(0.5),
        "p90_ms": ms(0.9),
        "p99_ms": ms(0.99),
        "traces": result.traces.len(),
        "shown_traces": shown.iter().map(|t| t.trace_id.to_string()).collect::<Vec<_>>(),
    })
}
