//! `latency-lab explain`: why the slow requests are slow, over many traces.
//!
//! One trace's critical path says what decided *that* request. Over a
//! population the question is which operations own the time of the slow
//! requests, and how that differs from the typical ones (Uber's CRISP,
//! USENIX ATC '22). `explain` computes every trace's critical path
//! (trace-view's, as Jaeger's UI draws it), attributes it to operations,
//! splits one endpoint's traces into the typical ones (≤ p50) and the tail
//! (≥ `--split`, p99 by default), and prints each operation's share of the
//! critical path and its exclusive time in both, and what differs.
//!
//! * [`skew`]: each service's clock moved into its caller's first.
//! * [`attribute`]: one trace's critical path by operation.
//! * [`groups`]: the split, the shares, the differences.
//! * [`whatif`]: an operation made faster, each trace replayed.
//! * [`flame`]: a group's critical path as a flame graph (`--out`).

pub(crate) mod attribute;
mod flame;
pub(crate) mod groups;
mod skew;
mod whatif;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use clap::Args;
use serde_json::json;
use trace_view::{jaeger_json, Trace, TraceId};

use attribute::Attribution;
use groups::Group;

#[derive(Debug, Clone, Args)]
pub struct ExplainArgs {
    /// Saved traces: folders of Jaeger JSON files (`up`'s
    /// latency-lab-traces/, `scenario --save`'s) or single files.
    #[arg(value_name = "PATH", required_unless_present = "jaeger")]
    pub paths: Vec<PathBuf>,
    /// Read the traces from this Jaeger instead (its UI and query API, e.g.
    /// http://localhost:16686): a search by --service (and --operation)
    /// over the last --since, or the traces --requests names.
    #[arg(long, value_name = "URL", conflicts_with = "paths")]
    pub jaeger: Option<String>,
    /// With --jaeger: the service whose traces to search.
    #[arg(long, requires = "jaeger")]
    pub service: Option<String>,
    /// With --jaeger: the root operation (span name) to search for.
    #[arg(long, requires = "service")]
    pub operation: Option<String>,
    /// With --jaeger: how far back to search (10m, 1h).
    #[arg(long, default_value = "1h", value_parser = service_kit::cli::parse_duration)]
    pub since: std::time::Duration,
    /// With --jaeger: at most this many traces.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub limit: u64,
    /// Only the traces of a load run: its requests.csv (`latency-lab load
    /// --out DIR`) names each request's trace.
    #[arg(long, value_name = "CSV")]
    pub requests: Option<PathBuf>,
    /// The endpoint, as `SERVICE SPAN-NAME` of the root span (e.g.
    /// 'profile-aggregator GET /user-profile/{id}') [default: the most
    /// common root].
    #[arg(long, value_name = "OPERATION")]
    pub endpoint: Option<String>,
    /// The tail: traces at or above this quantile of the endpoint's latency
    /// (p90, p99, p99.9).
    #[arg(long, default_value = "p99", value_parser = parse_split)]
    pub split: f64,
    /// The operation of the what-if line [default: the one with the
    /// largest share of the tail's critical path].
    #[arg(long, value_name = "OPERATION")]
    pub what_if: Option<String>,
    /// How much faster the what-if makes it: a share of its exclusive time
    /// (50%).
    #[arg(long, default_value = "50%", value_parser = parse_faster)]
    pub faster: f64,
    /// Print the groups and shares as JSON (for other tools).
    #[arg(long)]
    pub json: bool,
    /// Also write each group's critical path as a flame graph,
    /// DIR/typical.svg and DIR/tail.svg (any browser opens them: hover for
    /// the time, click to zoom).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// `50%` → 0.5; 1 % to 100 %.
fn parse_faster(value: &str) -> Result<f64, String> {
    let pct: f64 = value
        .strip_suffix('%')
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| format!("{value:?}: a percentage such as 50%"))?;
    if !(1.0..=100.0).contains(&pct) {
        return Err(format!("{value:?}: between 1% and 100%"));
    }
    Ok(pct / 100.0)
}

/// The what-if's answer: the set's p50 and tail quantile now and under
/// the model (`whatif`), µs.
struct WhatIf {
    operation: String,
    faster: f64,
    label: String,
    now: (u64, u64),
    then: (u64, u64),
}

/// `p99` → 0.99; above p50, below p100.
fn parse_split(value: &str) -> Result<f64, String> {
    let number = value
        .strip_prefix('p')
        .ok_or_else(|| format!("{value:?}: a quantile such as p90, p99 or p99.9"))?;
    let pct: f64 = number
        .parse()
        .map_err(|_| format!("{value:?}: a quantile such as p90, p99 or p99.9"))?;
    if !(pct > 50.0 && pct < 100.0) {
        return Err(format!("{value:?}: the tail is above p50 and below p100"));
    }
    Ok(pct / 100.0)
}

pub async fn command(args: ExplainArgs) -> anyhow::Result<()> {
    let wanted = args.requests.as_deref().map(requested_traces).transpose()?;
    let traces = match &args.jaeger {
        Some(url) => from_jaeger(url, &args, wanted.as_ref()).await?,
        None => load(&args.paths)?,
    };
    let traces: Vec<Trace> = match &wanted {
        Some(ids) => traces
            .into_iter()
            .filter(|t| ids.contains(&t.trace_id))
            .collect(),
        None => traces,
    };
    if traces.is_empty() {
        bail!(
            "none of the traces read is one that {} names",
            describe_csv(&args)
        );
    }
    let (traces, skewed) = adjust_clocks(&traces);
    let endpoint = match (&args.endpoint, &args.service, &args.operation) {
        (Some(endpoint), _, _) => Some(endpoint.clone()),
        (None, Some(service), Some(operation)) => Some(format!("{service} {operation}")),
        _ => None,
    };
    let Explained {
        endpoint,
        set,
        typical,
        tail,
        orphaned,
    } = explain_set(&traces, endpoint, args.split)?;
    let skewed = skewed_in(&skewed, &set);
    let differences = groups::differences(&typical, &tail);
    let what_if_op = args
        .what_if
        .clone()
        .or_else(|| tail.operations.first().map(|o| o.operation.clone()));
    let what_if = what_if_op.map(|op| {
        let ids: std::collections::HashSet<TraceId> = set.iter().map(|a| a.trace_id).collect();
        let in_set: Vec<&Trace> = traces
            .iter()
            .filter(|t| ids.contains(&t.trace_id))
            .collect();
        let mut now: Vec<u64> = set.iter().map(|a| a.latency_us).collect();
        let mut then: Vec<u64> = in_set
            .iter()
            .filter_map(|t| whatif::latency_if_faster(t, &op, args.faster))
            .collect();
        now.sort_unstable();
        then.sort_unstable();
        let q = |v: &[u64], q: f64| groups::nearest_rank(v, q).unwrap_or(0);
        WhatIf {
            label: tail.label.clone(),
            now: (q(&now, 0.5), q(&now, args.split)),
            then: (q(&then, 0.5), q(&then, args.split)),
            operation: op,
            faster: args.faster,
        }
    });
    let mut drawn = Vec::new();
    if let Some(dir) = &args.out {
        for (name, group, members) in [
            (
                "typical",
                &typical,
                set.iter()
                    .filter(|a| a.latency_us <= typical.bound_us)
                    .collect::<Vec<_>>(),
            ),
            (
                "tail",
                &tail,
                set.iter()
                    .filter(|a| a.latency_us >= tail.bound_us)
                    .collect::<Vec<_>>(),
            ),
        ] {
            let title = format!(
                "critical path of {endpoint}: the {} traces {} {} ({})",
                group.traces,
                if name == "tail" {
                    "at or over"
                } else {
                    "at or under"
                },
                group.label,
                ms(group.bound_us)
            );
            drawn.push(flame::write(dir, name, &title, &members)?);
        }
    }
    if args.json {
        let json = json!({
            "endpoint": endpoint,
            "traces": set.len(),
            "traces_with_orphaned_spans": orphaned,
            "traces_with_skewed_clocks": skewed,
            "typical": group_json(&typical),
            "tail": group_json(&tail),
            "differences": differences,
            "flame_graphs": drawn.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "what_if": what_if.as_ref().map(|w| json!({
                "operation": w.operation,
                "faster": w.faster,
                "p50_ms": { "now": w.now.0 as f64 / 1000.0, "estimate": w.then.0 as f64 / 1000.0 },
                "tail_ms": { "quantile": w.label, "now": w.now.1 as f64 / 1000.0, "estimate": w.then.1 as f64 / 1000.0 },
            })),
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(());
    }
    print!(
        "{}",
        render(
            &endpoint,
            set.len(),
            orphaned,
            skewed,
            &typical,
            &tail,
            &differences
        )
    );
    for path in &drawn {
        println!("flame graph: {}", path.display());
    }
    if let Some(w) = &what_if {
        println!(
            "what if {} were {} faster: {} about {} (now {}), p50 about {} (now {}) — an estimate: its spans shrink and what waited for them starts earlier; nothing else changes",
            w.operation,
            groups::percent(w.faster),
            w.label,
            ms(w.then.1),
            ms(w.now.1),
            ms(w.then.0),
            ms(w.now.0)
        );
    }
    Ok(())
}

fn describe_csv(args: &ExplainArgs) -> String {
    args.requests
        .as_ref()
        .map_or("the input".to_owned(), |p| p.display().to_string())
}

/// The trace ids a load run's `requests.csv` names.
fn requested_traces(csv: &Path) -> anyhow::Result<std::collections::HashSet<TraceId>> {
    let mut reader =
        csv::Reader::from_path(csv).with_context(|| format!("cannot read {}", csv.display()))?;
    let mut ids = std::collections::HashSet::new();
    for row in reader.deserialize::<crate::load::output::RequestRow>() {
        let row =
            row.with_context(|| format!("{}: not a load run's requests.csv", csv.display()))?;
        if let Some(id) = row
            .trace_id
            .as_deref()
            .and_then(|id| TraceId::parse(id).ok())
        {
            ids.insert(id);
        }
    }
    if ids.is_empty() {
        bail!(
            "{} names no trace (were the requests traced?)",
            csv.display()
        );
    }
    Ok(ids)
}

/// The traces from Jaeger: those `wanted` names, each by id, or a search.
async fn from_jaeger(
    url: &str,
    args: &ExplainArgs,
    wanted: Option<&std::collections::HashSet<TraceId>>,
) -> anyhow::Result<Vec<Trace>> {
    let client = trace_view::JaegerClient::new(url)?;
    if let Some(ids) = wanted {
        let mut traces = Vec::new();
        for id in ids {
            traces.extend(client.find_trace(*id).await?);
        }
        return Ok(traces);
    }
    let service = args
        .service
        .as_deref()
        .context("--jaeger needs --service (the service whose traces to search), or --requests")?;
    let limit = usize::try_from(args.limit).unwrap_or(usize::MAX);
    let traces = client
        .search(service, args.operation.as_deref(), args.since, limit)
        .await?;
    if traces.is_empty() {
        bail!(
            "Jaeger at {url} has no trace of {service}{} in the last {}",
            args.operation
                .as_deref()
                .map(|o| format!(" {o}"))
                .unwrap_or_default(),
            ms(args.since.as_micros() as u64)
        );
    }
    Ok(traces)
}

/// Every trace in `paths`: each folder's `*.json` files, and each file.
fn load(paths: &[PathBuf]) -> anyhow::Result<Vec<Trace>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("cannot read the folder {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    let mut traces = Vec::new();
    for file in &files {
        traces.extend(read(file)?);
    }
    if traces.is_empty() {
        bail!("no trace in {}", describe_paths(paths));
    }
    Ok(traces)
}

fn read(file: &Path) -> anyhow::Result<Vec<Trace>> {
    jaeger_json::read_file(file).with_context(|| format!("{}", file.display()))
}

fn describe_paths(paths: &[PathBuf]) -> String {
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    names.join(", ")
}

/// The typical group and the tail (at or over `split`) of the most common
/// endpoint of `traces`, and the report `explain` prints for them: what a
/// scenario shows and measures. `None` without a trace.
pub(crate) fn summarize(traces: &[Trace], split: f64) -> Option<(Group, Group, String)> {
    let (traces, skewed) = adjust_clocks(traces);
    let Explained {
        endpoint,
        set,
        typical,
        tail,
        orphaned,
    } = explain_set(&traces, None, split).ok()?;
    let text = render(
        &endpoint,
        set.len(),
        orphaned,
        skewed_in(&skewed, &set),
        &typical,
        &tail,
        &groups::differences(&typical, &tail),
    );
    Some((typical, tail, text))
}

/// `traces` with every service's clock moved into its caller's
/// ([`skew`]), and the ids of those that needed it.
fn adjust_clocks(traces: &[Trace]) -> (Vec<Trace>, std::collections::HashSet<TraceId>) {
    let mut skewed = std::collections::HashSet::new();
    let adjusted = traces
        .iter()
        .map(|t| {
            let (adjusted, moved) = skew::adjust(t);
            if moved > 0 {
                skewed.insert(t.trace_id);
            }
            adjusted
        })
        .collect();
    (adjusted, skewed)
}

/// How many of `set` had a clock moved.
fn skewed_in(skewed: &std::collections::HashSet<TraceId>, set: &[Attribution]) -> usize {
    set.iter().filter(|a| skewed.contains(&a.trace_id)).count()
}

/// One endpoint's traces, attributed and split.
struct Explained {
    endpoint: String,
    set: Vec<Attribution>,
    typical: Group,
    tail: Group,
    /// Traces with spans whose parent is missing.
    orphaned: usize,
}

/// The traces of `endpoint` (the most common root operation when `None`)
/// among `traces`, each critical path attributed, split at `split`.
fn explain_set(
    traces: &[Trace],
    endpoint: Option<String>,
    split: f64,
) -> anyhow::Result<Explained> {
    let attributions: Vec<Attribution> = traces.iter().filter_map(attribute::attribute).collect();
    let endpoint = match endpoint {
        Some(endpoint) => endpoint,
        None => {
            most_common_endpoint(&attributions).context("no trace with spans in the given paths")?
        }
    };
    let set: Vec<Attribution> = attributions
        .into_iter()
        .filter(|a| a.endpoint == endpoint)
        .collect();
    let Some((typical, tail)) = groups::split(&set, split) else {
        bail!("no trace of the endpoint {endpoint:?} (--endpoint names a root span as `SERVICE SPAN-NAME`)");
    };
    let orphaned = set.iter().filter(|a| a.orphaned_spans > 0).count();
    Ok(Explained {
        endpoint,
        set,
        typical,
        tail,
        orphaned,
    })
}

/// The root operation most traces answer (ties: the first by name).
fn most_common_endpoint(set: &[Attribution]) -> Option<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for a in set {
        *counts.entry(a.endpoint.as_str()).or_insert(0) += 1;
    }
    counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(a.0)))
        .map(|(endpoint, _)| endpoint.to_owned())
}

fn group_json(group: &Group) -> serde_json::Value {
    json!({
        "label": group.label,
        "bound_ms": group.bound_us as f64 / 1000.0,
        "traces": group.traces,
        "traces_with_errors": group.failed,
        "operations": group.operations.iter().map(|o| json!({
            "operation": o.operation,
            "share": o.share,
            "traces": o.traces,
            "exclusive_p50_ms": o.exclusive_p50_us as f64 / 1000.0,
            "exclusive_p99_ms": o.exclusive_p99_us as f64 / 1000.0,
            "traces_with_errors": o.failed,
        })).collect::<Vec<_>>(),
    })
}

fn ms(us: u64) -> String {
    crate::load::format_duration(std::time::Duration::from_micros(us))
}

/// The report: the two groups side by side, one row per operation that
/// holds either group's critical path, largest tail share first.
fn render(
    endpoint: &str,
    traces: usize,
    orphaned: usize,
    skewed: usize,
    typical: &Group,
    tail: &Group,
    differences: &[String],
) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "explain: {traces} traces of {endpoint}");
    if orphaned > 0 {
        let _ = writeln!(
            out,
            "  {orphaned} of them have spans whose parent is missing: their time is not on the root's critical path"
        );
    }
    if skewed > 0 {
        let _ = writeln!(
            out,
            "  {skewed} of them have a service whose clock disagrees with its caller's: its spans were moved into the call (as Jaeger's clock-skew adjuster does)"
        );
    }
    let _ = writeln!(
        out,
        "  typical: the {} at or under {} ({}); tail: the {} at or over {} ({})",
        typical.traces,
        typical.label,
        ms(typical.bound_us),
        tail.traces,
        tail.label,
        ms(tail.bound_us)
    );
    if typical.failed + tail.failed > 0 {
        let failing = |g: &Group| {
            let ops: Vec<String> = g
                .operations
                .iter()
                .filter(|o| o.failed > 0)
                .map(|o| format!("{} in {}", o.operation, o.failed))
                .collect();
            if ops.is_empty() {
                String::new()
            } else {
                format!(" ({})", ops.join(", "))
            }
        };
        let _ = writeln!(
            out,
            "  with an error: {} of the typical{}, {} of the tail{}",
            typical.failed,
            failing(typical),
            tail.failed,
            failing(tail)
        );
    }
    let share_of = |g: &Group, op: &str| g.operations.iter().find(|o| o.operation == op).cloned();
    let mut rows: Vec<&str> = tail
        .operations
        .iter()
        .chain(&typical.operations)
        .filter(|o| o.share > 0.0)
        .map(|o| o.operation.as_str())
        .collect();
    let mut seen = std::collections::HashSet::new();
    rows.retain(|op| seen.insert(*op));
    let width = rows
        .iter()
        .map(|r| r.chars().count())
        .max()
        .unwrap_or(9)
        .max(9);
    let _ = writeln!(
        out,
        "  {:width$}  {:>8}  {:>8}  {:>21}  {:>21}",
        "operation", "typical", "tail", "exclusive p50 / p99", "tail excl. p50 / p99"
    );
    for op in rows {
        let t = share_of(typical, op);
        let l = share_of(tail, op);
        let excl = |o: &Option<groups::OperationShare>| match o {
            Some(o) => format!("{} / {}", ms(o.exclusive_p50_us), ms(o.exclusive_p99_us)),
            None => "-".to_owned(),
        };
        let _ = writeln!(
            out,
            "  {:width$}  {:>8}  {:>8}  {:>21}  {:>21}",
            op,
            t.as_ref()
                .map_or("-".to_owned(), |o| groups::percent(o.share)),
            l.as_ref()
                .map_or("-".to_owned(), |o| groups::percent(o.share)),
            excl(&t),
            excl(&l)
        );
    }
    let _ = writeln!(
        out,
        "  share: the operation's time on the critical path over the group's; exclusive: its self time per trace it appears in"
    );
    for line in differences {
        let _ = writeln!(out, "{line}");
    }
    out
}

#[cfg(test)]
mod tests;
