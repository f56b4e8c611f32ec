//! Runs one scenario: the suite, each phase's requests, the traces they
//! made, the figures the claim reads, and the verdict.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use otlp_receiver::RunningReceiver;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use trace_view::terminal::Display;
use trace_view::{jaeger_json, waterfall, TraceId};

use super::expr::Checked as CheckedCondition;
use super::figures::{self, PhaseResult, RunFigures};
use super::follow::Following;
use super::from_jaeger;
use super::pipeline::Pipeline;
use super::report::{self, Out};
use super::request;
use super::spec::{Checked, Phase, Scenario};
use super::suite::{self, Started};
use crate::load::{self, engine};

/// How long the services' metrics may take to count every request sent.
const METRICS_WAIT: Duration = Duration::from_secs(20);

/// How a run is asked for.
pub struct Options {
    pub seed: u64,
    pub control: bool,
    /// An already running suite's aggregator.
    pub target: Option<reqwest::Url>,
    /// That suite's Jaeger, where the traces of its requests are read.
    pub jaeger: Option<reqwest::Url>,
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
                pipeline.as_ref().map(Pipeline::endpoint),
                pipeline.as_ref().is_some_and(|p| !p.carries_metrics()),
                scenario.follow.as_ref().map(|f| f.export_delay()),
            )
            .await?,
        ),
    };
    let base = match (&options.target, &started) {
        (Some(url), _) => url.clone(),
        (None, Some(s)) => s.aggregator.clone(),
        (None, None) => unreachable!("a suite is started without --target"),
    };
    print_header(&mut out, scenario, options, pipeline.as_ref());

    let client = load::client()?;
    // The receiver gets the spans unless a collector does.
    let receiver = started
        .as_ref()
        .filter(|_| pipeline.is_none())
        .map(|s| &s.receiver);
    // A running suite's traces, read back from its Jaeger when the claim
    // reads spans.
    let jaeger = match (&options.jaeger, checked.needs().traces) {
        (Some(url), true) => Some(trace_view::JaegerClient::new(url.as_str())?),
        _ => None,
    };
    let sources = TraceSources {
        receiver,
        jaeger: jaeger.as_ref(),
    };
    let mut results: BTreeMap<String, PhaseResult> = BTreeMap::new();
    let mut phases_json = Vec::new();
    for phase in &scenario.phases {
        let (result, json) =
            run_phase(&mut out, &client, &base, phase, &sources, scenario, options).await?;
        phases_json.push(json);
        results.insert(phase.name.clone(), result);
    }
    if let Some(p) = &pipeline {
        note_kept(&mut out, p, scenario, &mut results).await?;
    }
    // The services' metrics: every request counted, then every service
    // stopped so the last export is in.
    if let (Some(s), true) = (started.as_mut(), checked.needs().metrics) {
        let sent = results.values().map(|r| r.records.len() as u64).sum();
        settle_metrics(&mut out, s, sent).await;
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
    let outcome = judge(&mut out, checked, options, &values, phases_json);
    if let Some(s) = started {
        s.stop().await;
    }
    Ok(outcome)
}

/// Where a phase's traces come from: the receiver of a suite this run
/// started, or a running suite's Jaeger.
struct TraceSources<'a> {
    receiver: Option<&'a RunningReceiver>,
    jaeger: Option<&'a trace_view::JaegerClient>,
}

/// What runs, on which suite, with which settings.
fn print_header(
    out: &mut Out,
    scenario: &Scenario,
    options: &Options,
    pipeline: Option<&Pipeline>,
) {
    let settings = |env: &BTreeMap<String, String>| -> String {
        env.iter()
            .map(|(k, v)| format!(", {k}={v}"))
            .collect::<String>()
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
    let _ = match &options.target {
        Some(url) => writeln!(
            out,
            "  suite: the running one at {url} (its mocks draw with their own seed){}",
            options
                .jaeger
                .as_ref()
                .map(|j| format!("; its traces read from Jaeger at {j}"))
                .unwrap_or_default()
        ),
        None => writeln!(
            out,
            "  suite: started for this run, mocks seeded with {}{}",
            options.seed,
            settings(&scenario.env)
        ),
    };
    match (&scenario.collector, pipeline) {
        (Some(spec), Some(p)) if spec.samplers.is_some() => {
            let _ = writeln!(
                out,
                "  spans: through the front tier (deploy/configs/front.yaml) into {} tail samplers \
                 (deploy/configs/sampler.yaml){}, each into its own Jaeger: {}",
                p.query_urls().len(),
                settings(&spec.env),
                p.query_urls().join(", ")
            );
        }
        (Some(spec), Some(p)) => {
            let mut files = vec!["otel-collector.yaml".to_owned()];
            files.extend(spec.overlays.iter().cloned());
            let _ = writeln!(
                out,
                "  spans: through the OpenTelemetry Collector ({}{}) into Jaeger at {}",
                files.join(" + "),
                settings(&spec.env),
                p.query_urls().join(", ")
            );
        }
        _ => {}
    }
    let _ = writeln!(out);
}

/// Sends one phase's requests, gathers the traces they made, prints the
/// answers and the drawn traces (saved with `--save`).
async fn run_phase(
    out: &mut Out,
    client: &reqwest::Client,
    base: &reqwest::Url,
    phase: &Phase,
    sources: &TraceSources<'_>,
    scenario: &Scenario,
    options: &Options,
) -> anyhow::Result<(PhaseResult, serde_json::Value)> {
    let receiver = sources.receiver;
    let url = request::phase_url(base, phase)?;
    let headers = request::phase_headers(phase);
    let known = receiver.map(suite::known_traces).unwrap_or_default();
    // Subscribed before the first request, so no span slips past.
    let following = match (receiver, &scenario.follow) {
        (Some(r), Some(follow)) => {
            Some((Following::start(r.store().clone(), follow.timing()), follow))
        }
        _ => None,
    };
    let run = engine::run(
        client,
        &request::plan(phase, &url, &headers),
        CancellationToken::new(),
    )
    .await
    .with_context(|| format!("phase {}: no request to {url} was answered", phase.name))?;
    let expected: Vec<TraceId> = run.records.iter().filter_map(|r| r.trace_id).collect();
    // Every trace printed once, then long enough for its late spans to
    // come and print it again.
    let shown = match following {
        Some((following, follow)) => {
            let timing = follow.timing();
            let late = follow.export_delay() + timing.quiet + Duration::from_secs(1);
            let limit = follow.export_delay() + timing.max_wait + Duration::from_secs(10);
            Some(following.finish(&expected, late, limit).await)
        }
        None => None,
    };
    let traces = match (receiver, sources.jaeger) {
        (Some(r), _) => suite::new_traces(r, &known, &expected).await,
        (None, Some(jaeger)) => from_jaeger::traces(jaeger, &expected)
            .await
            .with_context(|| format!("phase {}: the traces in Jaeger", phase.name))?,
        (None, None) => Vec::new(),
    };
    let sent_trace_id = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("traceparent"))
        .and_then(|(_, v)| v.split('-').nth(1))
        .and_then(|id| TraceId::parse(id).ok());
    let mut result = PhaseResult::new(run.records.clone(), traces, sent_trace_id);
    result.shown = shown;
    let shown = report::shown_traces(phase, &result);
    report::describe_phase(out, phase, &url, &run, options.display.width);
    if phase.explain {
        if let Some((_, _, text)) = result.explained() {
            let _ = write!(out, "{text}");
        }
    }
    for trace in &shown {
        let _ = write!(
            out,
            "{}",
            waterfall::render(trace, options.display.width, options.display.colour)
        );
    }
    if let (Some(dir), false) = (&options.save, shown.is_empty()) {
        let path = dir.join(report::saved_name(
            &scenario.name,
            options.control,
            &phase.name,
        ));
        std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&path, jaeger_json::to_string(&shown)))
            .with_context(|| format!("cannot save the traces as {}", path.display()))?;
        let _ = writeln!(out, "saved as {}", path.display());
    }
    let _ = writeln!(out);
    let json = report::phase_json(phase, &run, &result, &shown);
    Ok((result, json))
}

/// What the collector(s) let through to Jaeger, once the decisions are due:
/// each phase's `kept` and `whole`; a trace kept in pieces is shown with
/// its span count in each Jaeger.
async fn note_kept(
    out: &mut Out,
    pipeline: &Pipeline,
    scenario: &Scenario,
    results: &mut BTreeMap<String, PhaseResult>,
) -> anyhow::Result<()> {
    let ids: Vec<TraceId> = results
        .values()
        .flat_map(|r| r.records.iter().filter_map(|rec| rec.trace_id))
        .collect();
    let held = pipeline.held(&ids).await?;
    let jaegers = pipeline.query_urls().len();
    for phase in &scenario.phases {
        let result = results.get_mut(&phase.name).expect("every phase ran");
        let mine = |set: &HashSet<TraceId>| -> HashSet<TraceId> {
            result
                .records
                .iter()
                .filter_map(|r| r.trace_id)
                .filter(|id| set.contains(id))
                .collect()
        };
        let (kept, whole) = (mine(&held.kept), mine(&held.whole));
        let _ = writeln!(
            out,
            "phase {}: {} of its {} traces kept, {} whole{}",
            phase.name,
            kept.len(),
            result.records.len(),
            whole.len(),
            if jaegers > 1 {
                " in exactly one Jaeger"
            } else {
                ""
            }
        );
        let mut split: Vec<&TraceId> = kept.iter().filter(|id| !whole.contains(id)).collect();
        split.sort();
        for id in split.iter().take(SHOWN_IN_PIECES) {
            let (counts, missing) = &held.pieces[*id];
            let counts: Vec<String> = counts
                .iter()
                .enumerate()
                .map(|(i, n)| format!("{n} in Jaeger {}", i + 1))
                .collect();
            let _ = writeln!(out, "  trace {id}: spans {}; {missing}", counts.join(", "));
        }
        result.kept = Some(kept);
        result.whole = Some(whole);
    }
    let _ = writeln!(out);
    Ok(())
}

/// How many traces kept in pieces a phase lists.
const SHOWN_IN_PIECES: usize = 3;

/// Waits for the services' histograms to count every request, stops the
/// services so their last export is in, and prints the endpoint table.
async fn settle_metrics(out: &mut Out, suite: &mut Started, sent: u64) {
    if !crate::up::stats::wait_for_requests(&suite.receiver, sent, METRICS_WAIT).await {
        let _ = writeln!(
            out,
            "(the services' metrics did not count all {sent} requests within {METRICS_WAIT:?})"
        );
    }
    suite.stop_services().await;
    if let Some(table) = crate::up::stats::table_text(&suite.receiver, "at the end of the run") {
        let _ = writeln!(out, "{table}");
    }
}

/// Checks every condition, prints the verdict, and builds `--json`.
fn judge(
    out: &mut Out,
    checked: &Checked,
    options: &Options,
    values: &RunFigures,
    phases_json: Vec<serde_json::Value>,
) -> Outcome {
    let checks: Vec<CheckedCondition> =
        checked.conditions.iter().map(|c| c.check(values)).collect();
    let holds = checks.iter().all(|c| c.holds);
    let says = checked.says.fill(values);
    let as_expected = holds != options.control;
    let verdict = match (holds, options.control) {
        (true, false) => "the claim holds",
        (false, false) => "the claim does NOT hold",
        (false, true) => "the claim does not hold, as the control must not",
        (true, true) => {
            "the claim HOLDS under the control: it was not the remedy or the fault that made it hold"
        }
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
        figures::listed(all_figures, values)
            .into_iter()
            .map(|(name, value)| {
                let value = match value {
                    Some((v, unit)) => json!({ "value": v, "unit": report::unit_name(unit) }),
                    None => serde_json::Value::Null,
                };
                (name, value)
            })
            .collect();
    let scenario = &checked.scenario;
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
    Outcome {
        holds,
        as_expected,
        json,
    }
}
