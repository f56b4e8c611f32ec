//! `latency-lab scenario`: the lessons' situations, live, one command each,
//! with the lesson's claim measured and judged on the spot.
//!
//! A scenario is data, not code: `scenarios/NAME.toml` says which start-up
//! settings the suite needs, which requests each phase sends (query,
//! baggage, headers, how many, how paced), what the lesson claims as
//! conditions on figures the run measures, and a control — the same
//! scenario with the remedy or the fault switched off — under which the
//! claim must not hold.
//!
//! * [`spec`]: the description, read strictly.
//! * [`expr`]: the claim's small language (figures, units, comparisons).
//! * [`catalog`]: every description, embedded at build time.
//! * [`suite`]: the suite started for a run, and the traces it receives.
//! * [`run`]: the run: suite, phases, figures, verdict.
//! * [`request`]: what a phase sends.
//! * [`report`]: what a run prints, and its JSON.
//! * [`figures`]: what is measured of a phase.
//! * [`pipeline`]: a real collector and Jaeger, for a scenario that needs them.
//! * [`from_jaeger`]: with `--target --jaeger`, a phase's traces read back from Jaeger.

mod catalog;
mod expr;
mod figures;
mod follow;
mod from_jaeger;
mod pipeline;
mod report;
mod request;
mod run;
mod spec;
mod suite;

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use clap::Args;
use trace_view::terminal::DisplayArgs;

use crate::up::children::Stop;

#[derive(Debug, Clone, Args)]
pub struct ScenarioArgs {
    /// The scenario to run; without one, the list.
    pub name: Option<String>,
    /// Run the control instead: the same scenario with its remedy or fault
    /// switched off, under which the claim must not hold.
    #[arg(long)]
    pub control: bool,
    /// Seed for the mocks' random draws (latency models, injected faults),
    /// so a verdict can be repeated.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Run against an already running suite: its aggregator's URL (e.g.
    /// http://127.0.0.1:8080). Refused for a scenario that needs start-up
    /// settings, or that reads the suite's spans or metrics (they go to
    /// that suite's own receiver or collector, not here).
    #[arg(long, value_name = "URL")]
    pub target: Option<reqwest::Url>,
    /// With --target: the running suite's Jaeger (its UI and query API, e.g.
    /// http://localhost:16686), where a scenario whose claim reads spans
    /// finds its requests' traces.
    #[arg(long, value_name = "URL", requires = "target")]
    pub jaeger: Option<reqwest::Url>,
    /// Print the verdict and the figures as JSON (for other tools) instead
    /// of the report.
    #[arg(long)]
    pub json: bool,
    /// Save the traces each phase draws as Jaeger JSON (Jaeger UI: Search →
    /// JSON File), one file per phase: DIR/SCENARIO.PHASE.json.
    #[arg(long, value_name = "DIR")]
    pub save: Option<PathBuf>,
    /// Run every scenario that ships traces with the docs and write them
    /// into DIR (docs/traces): how the shipped traces are regenerated.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["name", "control", "target", "save"])]
    pub ship: Option<PathBuf>,
    #[command(flatten)]
    pub display: DisplayArgs,
}

pub async fn command(args: ScenarioArgs) -> anyhow::Result<()> {
    let mut stop = Stop::install()?;
    tokio::select! {
        result = dispatch(args) => result,
        // The suite's children stop when their handles drop, on the way out.
        _ = stop.wait() => bail!("interrupted"),
    }
}

async fn dispatch(args: ScenarioArgs) -> anyhow::Result<()> {
    if let Some(dir) = &args.ship {
        return ship(&args, dir).await;
    }
    let Some(name) = &args.name else {
        return list(args.json);
    };
    let found = catalog::find(name)?;
    let checked = if args.control { found.control() } else { found };
    if args.target.is_some() {
        refuse_on_target(&checked, args.jaeger.is_some())?;
    }
    let options = run::Options {
        seed: args.seed,
        control: args.control,
        target: args.target.clone(),
        jaeger: args.jaeger.clone(),
        save: args.save.clone(),
        json: args.json,
        display: args.display.resolve(),
    };
    let outcome = run::run(&checked, &options).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome.json)?);
    }
    if !outcome.as_expected {
        bail!(
            "scenario {name}{}: {}",
            if args.control { " --control" } else { "" },
            if outcome.holds {
                "the claim held under its control"
            } else {
                "the claim did not hold"
            }
        );
    }
    Ok(())
}

/// One line per scenario; `--json`: an array of them.
fn list(json: bool) -> anyhow::Result<()> {
    let mut all = catalog::all()?;
    // In the order of the lessons; by name within one.
    all.sort_by(|a, b| a.scenario.lesson.cmp(&b.scenario.lesson));
    if json {
        let list: Vec<serde_json::Value> = all
            .iter()
            .map(|c| {
                serde_json::json!({
                    "name": c.scenario.name,
                    "lesson": c.scenario.lesson,
                    "about": c.scenario.about,
                    "targetable": targetable(c, false).is_ok(),
                    "targetable_with_jaeger": targetable(c, true).is_ok(),
                    "collector": c.scenario.collector.is_some(),
                    "ships": c
                        .scenario
                        .phases
                        .iter()
                        .filter(|p| p.ship)
                        .map(|p| report::saved_name(&c.scenario.name, false, &p.name))
                        .collect::<Vec<_>>(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    let width = all.iter().map(|c| c.scenario.name.len()).max().unwrap_or(0);
    for c in &all {
        let lesson = c.scenario.lesson.split('-').next().unwrap_or("");
        println!(
            "{:width$}  lesson {}  {}",
            c.scenario.name,
            lesson.trim_start_matches('0'),
            c.scenario.about
        );
    }
    println!();
    println!("run one: latency-lab scenario NAME   (its control: --control; other runs: --seed N)");
    Ok(())
}

/// Why a scenario cannot run against a running suite (whose Jaeger is
/// known when `jaeger`), in one line.
fn targetable(checked: &spec::Checked, jaeger: bool) -> Result<(), String> {
    let s = &checked.scenario;
    if !s.env.is_empty() {
        let settings: Vec<String> = s.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        return Err(format!(
            "scenario {} needs start-up settings a running suite cannot take ({}): run it without --target",
            s.name,
            settings.join(" ")
        ));
    }
    if s.collector.is_some() {
        return Err(format!(
            "scenario {} runs its own collector and Jaeger for the suite it starts: run it without --target",
            s.name
        ));
    }
    if s.follow.is_some() {
        return Err(format!(
            "scenario {} follows its traces as they arrive, with the aggregator exporting late, which only a suite it starts does: run it without --target",
            s.name
        ));
    }
    let needs = checked.needs();
    if needs.metrics {
        return Err(format!(
            "scenario {} reads the suite's metrics, which a running suite sends to its own receiver, not here: run it without --target",
            s.name
        ));
    }
    if needs.orphans {
        return Err(format!(
            "scenario {} counts traces that no answer names (orphaned calls), which only the receiver of a suite it starts sees: run it without --target",
            s.name
        ));
    }
    if needs.traces && !jaeger {
        return Err(format!(
            "scenario {} reads the suite's spans, which a running suite sends to its own receiver, not here: give its Jaeger with --jaeger URL, or run it without --target",
            s.name
        ));
    }
    Ok(())
}

fn refuse_on_target(checked: &spec::Checked, jaeger: bool) -> anyhow::Result<()> {
    targetable(checked, jaeger).map_err(anyhow::Error::msg)
}

/// Resource attributes that identify the machine and the process that
/// recorded a trace: left out of the traces shipped with the docs.
const MACHINE_KEYS: [&str; 4] = ["host.id", "host.name", "process.pid", "service.instance.id"];

/// `--ship DIR`: every scenario with a shipped phase, run, its shipped
/// phases' traces written into DIR.
async fn ship(args: &ScenarioArgs, dir: &std::path::Path) -> anyhow::Result<()> {
    // Removed when dropped, also when a scenario fails.
    let scratch = tempfile::tempdir().context("cannot create a temporary folder")?;
    for checked in catalog::all()? {
        let shipped: Vec<&str> = checked
            .scenario
            .phases
            .iter()
            .filter(|p| p.ship)
            .map(|p| p.name.as_str())
            .collect();
        if shipped.is_empty() {
            continue;
        }
        let options = run::Options {
            seed: args.seed,
            control: false,
            target: None,
            jaeger: None,
            save: Some(scratch.path().to_path_buf()),
            json: true,
            display: args.display.resolve(),
        };
        let outcome = run::run(&checked, &options).await?;
        if !outcome.holds {
            bail!(
                "scenario {}: the claim did not hold; its traces were not shipped",
                checked.scenario.name
            );
        }
        std::fs::create_dir_all(dir)?;
        for phase in shipped {
            let name = report::saved_name(&checked.scenario.name, false, phase);
            let mut traces = trace_view::jaeger_json::read_file(&scratch.path().join(&name))?;
            for span in traces.iter_mut().flat_map(|t| t.spans.iter_mut()) {
                span.resource
                    .retain(|key, _| !MACHINE_KEYS.contains(&key.as_str()));
            }
            std::fs::write(dir.join(&name), trace_view::jaeger_json::to_string(&traces))?;
            println!("wrote {}", dir.join(&name).display());
        }
    }
    Ok(())
}
