//! Runs one scenario: the suite, each phase's requests, the traces they
//! made, the figures the claim reads, and the verdict.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use trace_view::terminal::Display;
use trace_view::{jaeger_json, waterfall, Trace, TraceId};

use super::expr::{Checked as CheckedCondition, Unit};
use super::figures::{self, PhaseResult, RunFigures};
use super::pipeline::Pipeline;
use super::spec::{Checked, Phase, Show};
use super::suite::{self, Started};
use crate::load::{self, engine, record::Variant};

/// How long one request may take before it counts as unanswered.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the services' metrics may take to count every request sent.
const METRICS_WAIT: Duration = Duration::from_secs(20);

/// Phases with at least this many requests print their distribution.
const DISTRIBUTION_FROM: usize = 20;

/// At most this many traces of a phase are drawn with `show = "all"`.
const SHOW_ALL_LIMIT: usize = 5;

/// How a run is asked for.
pub struct Options {
    pub seed: u64,
    pub control: bool,
    /// An already running suite's aggregator.
    pub target: Option<reqwest::Url>,
    pub save: Option<PathBuf>,
    pub json: bool,
    pub display: Display,
}

/// What a run found.
pub struct Outcome {
    pub holds: bool,
    /// The scenario's claim must hold; its control's must not.
    pub as_expected: bool,
    pub json: serde_json::Value,
}

/// The text report, printed as the run goes (a long phase is not a silent
/// one); nothing with `--json`, which prints [`Outcome::json`] instead.
struct Out {
    quiet: bool,
}

impl std::fmt::Write for Out {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if !self.quiet {
            print!("{s}");
        }
        Ok(())
    }
}

/// Runs `checked` (already turned into its control when `options.control`).
pub async fn run(checked: &Checked, options: &Options) -> anyhow::Result<Outcome> {
    let scenario = &checked.scenario;
    let mut out = Out {
        quiet: options.json,
    };
    let pipeline = match (&scenario.collector, &options.target) {
        (Some(spec), None) => Some(Pipeline::start(spec).await?),
        _ => None,
    };
    let mut started = match &options.target {
        Some(_) => None,
        None => Some(
            Started::start(
                &scenario.env,
                options.seed,
                true,
                pipeline.as_ref().map(Pipeline::endpoint),
            )
            .await?,
        ),
    };
    let base = match (&options.target, &started) {
        (Some(url), _) => url.clone(),
        (None, Some(s)) => s.aggregator.clone(),
        (None, None) => unreachable!("a suite is started without --target"),
    };
    let _ = writeln!(
        out,
        "scenario {}{} — docs/lessons/{}.md",
        scenario.name,
        if options.control { " (control)" } else { "" },
        scenario.lesson
    );
    let _ = writeln!(out, "  {}", scenario.about);
    if options.control {
        let _ = writeln!(
            out,
            "  control: {}; the claim must not hold",
            scenario.control.does
        );
    }
    match &options.target {
        Some(url) => {
            let _ = writeln!(
                out,
                "  suite: the running one at {url} (its mocks draw with their own seed)"
            );
        }
        None => {
            let settings: Vec<String> = scenario
                .env
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let _ = writeln!(
                out,
                "  suite: started for this run, mocks seeded with {}{}",
                options.seed,
                if settings.is_empty() {
                    String::new()
                } else {
                    format!(", {}", settings.join(" "))
                }
            );
        }
    }
    if let (Some(spec), Some(p)) = (&scenario.collector, &pipeline) {
        let settings: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut files = vec!["otel-collector.yaml".to_owned()];
        files.extend(spec.overlays.iter().cloned());
        let _ = writeln!(
            out,
            "  spans: through the OpenTelemetry Collector ({}{}) into Jaeger at {}",
            files.join(" + "),
            if settings.is_empty() {
                String::new()
            } else {
                format!(", {}", settings.join(" "))
            },
            p.query_url()
        );
    }
    let _ = writeln!(out);

    let client = load::client()?;
    // The receiver gets the spans unless a collector does.
    let receiver = started
        .as_ref()
        .filter(|_| pipeline.is_none())
        .map(|s| &s.receiver);
    let mut results: BTreeMap<String, PhaseResult> = BTreeMap::new();
    let mut phases_json = Vec::new();
    let mut sent = 0u64;
    for phase in &scenario.phases {
        let url = phase_url(&base, phase)?;
        let headers = phase_headers(phase);
        let known = receiver.map(suite::known_traces).unwrap_or_default();
        let plan = engine::Plan {
            loop_: match phase.rate {
                Some(rate) => engine::Loop::Open {
                    rate: load::schedule::Rate {
                        start: rate,
                        end: rate,
                    },
                    max_in_flight: 256,
                },
                None => engine::Loop::Closed {
                    concurrency: phase.concurrency.unwrap_or(1),
                },
            },
            variants: vec![Variant {
                label: url.to_string(),
                url: url.clone(),
                headers: headers.clone(),
            }],
            requests: Some(phase.requests),
            duration: None,
            warmup: engine::Warmup::NONE,
            request_timeout: REQUEST_TIMEOUT,
            observer: None,
        };
        let run = engine::run(&client, &plan, CancellationToken::new())
            .await
            .with_context(|| format!("phase {}: no request to {url} was answered", phase.name))?;
        sent += run.records.len() as u64;
        let expected: Vec<TraceId> = run.records.iter().filter_map(|r| r.trace_id).collect();
        let traces = match receiver {
            Some(r) => suite::new_traces(r, &known, &expected).await,
            None => Vec::new(),
        };
        let sent_trace_id = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("traceparent"))
            .and_then(|(_, v)| v.split('-').nth(1))
            .and_then(|id| TraceId::parse(id).ok());
        let result = PhaseResult {
            records: run.records.clone(),
            traces,
            sent_trace_id,
            kept: None,
        };
        let shown = shown_traces(phase, &result);
        describe_phase(&mut out, phase, &url, &run, options.display.width);
        for trace in &shown {
            let _ = write!(
                out,
                "{}",
                waterfall::render(trace, options.display.width, options.display.colour)
            );
        }
        if let (Some(dir), false) = (&options.save, shown.is_empty()) {
            let path = dir.join(saved_name(&scenario.name, options.control, &phase.name));
            std::fs::create_dir_all(dir)
                .and_then(|()| std::fs::write(&path, jaeger_json::to_string(&shown)))
                .with_context(|| format!("cannot save the traces as {}", path.display()))?;
            let _ = writeln!(out, "saved as {}", path.display());
        }
        let _ = writeln!(out);
        phases_json.push(phase_json(phase, &run, &result, &shown));
        results.insert(phase.name.clone(), result);
    }

    // What the collector let through to Jaeger, once its decisions are due.
    if let Some(p) = &pipeline {
        let ids: Vec<TraceId> = results
            .values()
            .flat_map(|r| r.records.iter().filter_map(|rec| rec.trace_id))
            .collect();
        let kept = p.kept(&ids).await?;
        for phase in &scenario.phases {
            let result = results.get_mut(&phase.name).expect("every phase ran");
            let mine: std::collections::HashSet<TraceId> = result
                .records
                .iter()
                .filter_map(|r| r.trace_id)
                .filter(|id| kept.contains(id))
                .collect();
            let _ = writeln!(
                out,
                "phase {}: Jaeger holds {} of its {} traces",
                phase.name,
                mine.len(),
                result.records.len()
            );
            result.kept = Some(mine);
        }
        let _ = writeln!(out);
    }

    // The services' metrics: every request counted, then every service
    // stopped so the last export is in.
    let needs = checked.needs();
    if let (Some(s), true) = (started.as_mut(), needs.metrics) {
        if !crate::up::stats::wait_for_requests(&s.receiver, sent, METRICS_WAIT).await {
            let _ = writeln!(
                out,
                "(the services' metrics did not count all {sent} requests within {METRICS_WAIT:?})"
            );
        }
        s.stop_services().await;
        if let Some(table) = crate::up::stats::table_text(&s.receiver, "at the end of the run") {
            let _ = writeln!(out, "{table}");
        }
    }
    let metric = |service: &str, q: f64| {
        started
            .as_ref()
            .and_then(|s| crate::up::stats::endpoint_quantile(&s.receiver, service, q))
    };
    let values = RunFigures {
        phases: &results,
        metric: &metric,
    };
    let checks: Vec<CheckedCondition> = checked
        .conditions
        .iter()
        .map(|c| c.check(&values))
        .collect();
    let holds = checks.iter().all(|c| c.holds);
    let says = checked.says.fill(&values);
    let as_expected = holds != options.control;
    let verdict = match (holds, options.control) {
        (true, false) => "the claim holds".to_owned(),
        (false, false) => "the claim does NOT hold".to_owned(),
        (false, true) => "the claim does not hold, as the control must not".to_owned(),
        (true, true) => "the claim HOLDS under the control: it was not the remedy or the fault that made it hold".to_owned(),
    };
    let _ = writeln!(out, "verdict: {verdict}");
    let _ = writeln!(out, "  {says}");
    for c in &checks {
        let _ = writeln!(out, "  {} {}", if c.holds { "✓" } else { "✗" }, c.shown);
    }
    let all_figures = checked
        .conditions
        .iter()
        .flat_map(|c| c.figures())
        .chain(checked.says.figures());
    let figure_json: serde_json::Map<String, serde_json::Value> =
        figures::listed(all_figures, &values)
            .into_iter()
            .map(|(name, value)| {
                let value = match value {
                    Some((v, unit)) => json!({ "value": v, "unit": unit_name(unit) }),
                    None => serde_json::Value::Null,
                };
                (name, value)
            })
            .collect();
    let json = json!({
        "scenario": scenario.name,
        "lesson": scenario.lesson,
        "control": options.control,
        "seed": options.target.is_none().then_some(options.seed),
        "target": options.target.as_ref().map(|u| u.to_string()),
        "phases": phases_json,
        "figures": figure_json,
        "conditions": checks.iter().map(|c| json!({
            "condition": c.text,
            "holds": c.holds,
            "measured": c.shown,
        })).collect::<Vec<_>>(),
        "says": says,
        "holds": holds,
        "as_expected": as_expected,
    });
    if let Some(s) = started {
        s.stop().await;
    }
    Ok(Outcome {
        holds,
        as_expected,
        json,
    })
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

fn unit_name(unit: Unit) -> &'static str {
    match unit {
        Unit::Seconds => "seconds",
        Unit::Fraction => "fraction",
        Unit::Count => "count",
        Unit::PerRequest => "per_request",
        Unit::Ratio => "ratio",
        Unit::Number => "number",
    }
}

fn phase_url(base: &reqwest::Url, phase: &Phase) -> anyhow::Result<reqwest::Url> {
    let mut url = base
        .join(&phase.path)
        .with_context(|| format!("phase {}: path {:?}", phase.name, phase.path))?;
    url.set_query((!phase.query.is_empty()).then_some(phase.query.as_str()));
    Ok(url)
}

/// The phase's headers, its baggage entries percent-encoded into one
/// `baggage` header.
fn phase_headers(phase: &Phase) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = phase
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !phase.baggage.is_empty() {
        let entries: Vec<String> = phase
            .baggage
            .iter()
            .map(|(k, v)| format!("{k}={}", encode_baggage_value(v)))
            .collect();
        headers.push(("baggage".to_owned(), entries.join(",")));
    }
    headers
}

/// W3C baggage: a value's `,` `;` `=` `%` spaces and quotes are
/// percent-encoded (the mocks' specs are full of `,` and `=`).
fn encode_baggage_value(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        match byte {
            b'!' | b'#'..=b'+' | b'-'..=b':' | b'<' | b'>'..=b'[' | b']'..=b'~' if byte != b'%' => {
                out.push(byte as char)
            }
            _ => {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
    out
}

/// The traces a phase draws, per its `show`.
fn shown_traces(phase: &Phase, result: &PhaseResult) -> Vec<Trace> {
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
fn describe_phase(
    out: &mut Out,
    phase: &Phase,
    url: &reqwest::Url,
    run: &crate::load::record::Run,
    width: usize,
) {
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

fn phase_json(
    phase: &Phase,
    run: &crate::load::record::Run,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baggage_values_are_percent_encoded_where_the_grammar_needs_it() {
        assert_eq!(
            encode_baggage_value("200ms+spike(p=0.05,1s)"),
            "200ms+spike(p%3D0.05%2C1s)"
        );
        assert_eq!(encode_baggage_value("a b;c%\"\\"), "a%20b%3Bc%25%22%5C");
        assert_eq!(encode_baggage_value("1"), "1");
    }
}
