//! A scenario's own pipeline, for what only collectors do (tail sampling):
//!
//! * one collector: the Jaeger binary twice, as Jaeger and as the
//!   OpenTelemetry Collector with the repository's `otel-collector.yaml` and
//!   overlays — the very files `docker compose` and the end-to-end tests use;
//! * the scale-out pipeline of `deploy/` (`samplers = N`): a front tier
//!   routing by `LB_ROUTING_KEY` to N tail samplers, each writing to a Jaeger
//!   of its own, so which Jaeger holds what shows where the spans went.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use jaeger_harness::{Collector, Jaeger, ScaleOut};
use trace_view::completeness::missing_pieces;
use trace_view::{JaegerClient, TraceId};

use super::spec::CollectorSpec;

/// How often Jaeger is asked for the traces still missing.
const POLL: Duration = Duration::from_millis(500);

/// After the decision wait, how long a kept trace may still take to reach
/// Jaeger (the collector batches, then exports).
const AFTER_DECISION: Duration = Duration::from_secs(6);

/// Once every kept trace has shown up somewhere, how long its other pieces
/// (other samplers' batches) may still take before the pieces are counted.
const PIECES_SETTLE: Duration = Duration::from_secs(1);

/// The suite's services: routed by service, they must not all land on one
/// sampler (see [`ScaleOut::start`]).
const SERVICES: &[&str] = &["profile-aggregator", "user-service", "order-service"];

// One value per scenario run: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum Stages {
    // Every process is killed when dropped.
    One {
        jaeger: Jaeger,
        collector: Collector,
    },
    Tiers(ScaleOut),
}

pub struct Pipeline {
    stages: Stages,
    decision_wait: Duration,
}

/// What the Jaegers hold of some traces.
#[derive(Debug, Default)]
pub struct Held {
    /// In at least one Jaeger.
    pub kept: HashSet<TraceId>,
    /// Whole in exactly one Jaeger, absent from the others.
    pub whole: HashSet<TraceId>,
    /// For each kept trace that is not: its span count in each Jaeger, and
    /// what its biggest piece misses.
    pub pieces: HashMap<TraceId, (Vec<usize>, String)>,
}

impl Pipeline {
    /// Starts the Jaeger(s), then the collector(s) exporting to them. The
    /// Jaeger binary is located or built as `cargo xtask jaeger` does, the
    /// scale-out collector as `cargo xtask otelcol` does (`JAEGER_BIN`,
    /// `OTELCOL_BIN`, else the cache, else built with Go: minutes).
    pub async fn start(spec: &CollectorSpec) -> anyhow::Result<Pipeline> {
        let spec = spec.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<Pipeline> {
            let binary = jaeger_harness::jaeger_binary().context(
                "this scenario runs the real collector and Jaeger: the Jaeger binary is needed (JAEGER_BIN=PATH, or `cargo xtask jaeger` builds it)",
            )?;
            let env: Vec<(&str, &str)> = spec
                .env
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let stages = match spec.samplers {
                Some(n) => {
                    let otelcol = jaeger_harness::otelcol_binary().context(
                        "this scenario runs the scale-out collectors of deploy/: their binary is needed (OTELCOL_BIN=PATH, or `cargo xtask otelcol` builds it)",
                    )?;
                    Stages::Tiers(
                        ScaleOut::start(&binary, &otelcol, n, &env, SERVICES)
                            .context("cannot start the scale-out pipeline")?,
                    )
                }
                None => {
                    let jaeger = Jaeger::start(&binary).context("cannot start Jaeger")?;
                    let overlays: Vec<_> = spec
                        .overlays
                        .iter()
                        .map(|o| jaeger_harness::repo_file(o))
                        .collect();
                    let collector =
                        Collector::start_with(&binary, jaeger.ports.otlp_grpc, &overlays, &env)
                            .context("cannot start the collector")?;
                    Stages::One { jaeger, collector }
                }
            };
            let decision_wait = spec
                .env
                .get("TAIL_SAMPLING_DECISION_WAIT")
                .map(|v| service_kit::cli::parse_duration(v))
                .transpose()
                .map_err(anyhow::Error::msg)?
                .unwrap_or(Duration::from_secs(2));
            Ok(Pipeline {
                stages,
                decision_wait,
            })
        })
        .await
        .context("the pipeline's start-up")?
    }

    /// Where the services export: the (front) collector's OTLP/gRPC endpoint.
    pub fn endpoint(&self) -> String {
        match &self.stages {
            Stages::One { collector, .. } => collector.otlp_grpc_endpoint(),
            Stages::Tiers(tiers) => tiers.front.otlp_grpc_endpoint(),
        }
    }

    /// Whether the services' metrics go through it too (one collector), or
    /// only their spans (the scale-out tiers are a traces pipeline).
    pub fn carries_metrics(&self) -> bool {
        matches!(self.stages, Stages::One { .. })
    }

    /// Every Jaeger's query URL (one per sampler with the scale-out pipeline).
    pub fn query_urls(&self) -> Vec<String> {
        match &self.stages {
            Stages::One { jaeger, .. } => vec![jaeger.query_url()],
            Stages::Tiers(tiers) => tiers.jaegers.iter().map(Jaeger::query_url).collect(),
        }
    }

    /// What the Jaegers hold of `ids` once every decision is due: polled
    /// until each is somewhere, or until the decision wait and the export
    /// after it have passed (a trace not there by then was dropped); then,
    /// a moment later, each kept one is read from every Jaeger.
    pub async fn held(&self, ids: &[TraceId]) -> anyhow::Result<Held> {
        let clients = self
            .query_urls()
            .iter()
            .map(|url| JaegerClient::new(url))
            .collect::<Result<Vec<_>, _>>()?;
        let ask = |client: &JaegerClient, id: TraceId| {
            let client = client.clone();
            async move {
                client
                    .find_trace(id)
                    .await
                    .with_context(|| format!("cannot ask Jaeger for trace {id}"))
            }
        };
        let deadline = Instant::now() + self.decision_wait + AFTER_DECISION;
        let mut held = Held::default();
        loop {
            let missing: Vec<TraceId> = ids
                .iter()
                .filter(|id| !held.kept.contains(*id))
                .copied()
                .collect();
            for id in &missing {
                for client in &clients {
                    if ask(client, *id).await?.is_some() {
                        held.kept.insert(*id);
                        break;
                    }
                }
            }
            if held.kept.len() == ids.len() || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        tokio::time::sleep(PIECES_SETTLE).await;
        for id in &held.kept {
            let mut counts = Vec::new();
            let mut whole_in = 0;
            let mut biggest: Option<trace_view::Trace> = None;
            for client in &clients {
                let piece = ask(client, *id).await?;
                counts.push(piece.as_ref().map_or(0, |t| t.spans.len()));
                if let Some(trace) = piece {
                    if missing_pieces(&trace).is_none() {
                        whole_in += 1;
                    }
                    if biggest
                        .as_ref()
                        .is_none_or(|b| b.spans.len() < trace.spans.len())
                    {
                        biggest = Some(trace);
                    }
                }
            }
            let holders = counts.iter().filter(|&&n| n > 0).count();
            if whole_in == 1 && holders == 1 {
                held.whole.insert(*id);
            } else {
                let missing = biggest
                    .as_ref()
                    .and_then(missing_pieces)
                    .unwrap_or_else(|| "whole, and in more than one Jaeger".to_owned());
                held.pieces.insert(*id, (counts, missing));
            }
        }
        Ok(held)
    }
}
