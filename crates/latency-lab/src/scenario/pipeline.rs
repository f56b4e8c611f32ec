//! A scenario's own pipeline, for what only a collector does (tail
//! sampling): the Jaeger binary twice, as Jaeger and as the OpenTelemetry
//! Collector with the repository's `otel-collector.yaml` and overlays — the
//! very files `docker compose` and the end-to-end tests use.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use jaeger_harness::{Collector, Jaeger};
use trace_view::{JaegerClient, TraceId};

use super::spec::CollectorSpec;

/// How often Jaeger is asked for the traces still missing.
const POLL: Duration = Duration::from_millis(500);

/// After the decision wait, how long a kept trace may still take to reach
/// Jaeger (the collector batches, then exports).
const AFTER_DECISION: Duration = Duration::from_secs(6);

pub struct Pipeline {
    // Both processes are killed when dropped.
    jaeger: Jaeger,
    collector: Collector,
    decision_wait: Duration,
}

impl Pipeline {
    /// Starts Jaeger, then the collector exporting to it (the Jaeger binary
    /// is located or built as `cargo xtask jaeger` does: `JAEGER_BIN`, else
    /// the cache, else built from the Go module proxy, which takes minutes).
    pub async fn start(spec: &CollectorSpec) -> anyhow::Result<Pipeline> {
        let spec = spec.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<Pipeline> {
            let binary = jaeger_harness::jaeger_binary().context(
                "this scenario runs the real collector and Jaeger: the Jaeger binary is needed (JAEGER_BIN=PATH, or `cargo xtask jaeger` builds it)",
            )?;
            let jaeger = Jaeger::start(&binary).context("cannot start Jaeger")?;
            let overlays: Vec<_> = spec
                .overlays
                .iter()
                .map(|o| jaeger_harness::repo_file(o))
                .collect();
            let env: Vec<(&str, &str)> = spec
                .env
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let collector = Collector::start_with(&binary, jaeger.ports.otlp_grpc, &overlays, &env)
                .context("cannot start the collector")?;
            let decision_wait = spec
                .env
                .get("TAIL_SAMPLING_DECISION_WAIT")
                .map(|v| service_kit::cli::parse_duration(v))
                .transpose()
                .map_err(anyhow::Error::msg)?
                .unwrap_or(Duration::from_secs(2));
            Ok(Pipeline {
                jaeger,
                collector,
                decision_wait,
            })
        })
        .await
        .context("the pipeline's start-up")?
    }

    /// Where the services export: the collector's OTLP/gRPC endpoint.
    pub fn endpoint(&self) -> String {
        self.collector.otlp_grpc_endpoint()
    }

    pub fn query_url(&self) -> String {
        self.jaeger.query_url()
    }

    /// Which of `ids` Jaeger holds once every decision is due: polled until
    /// all are there, or until the decision wait and the export after it
    /// have passed (a trace not there by then was dropped).
    pub async fn kept(&self, ids: &[TraceId]) -> anyhow::Result<HashSet<TraceId>> {
        let client = JaegerClient::new(&self.jaeger.query_url())?;
        let deadline = Instant::now() + self.decision_wait + AFTER_DECISION;
        let mut kept = HashSet::new();
        let mut failed: HashMap<TraceId, String> = HashMap::new();
        loop {
            let missing: Vec<TraceId> = ids
                .iter()
                .filter(|id| !kept.contains(*id))
                .copied()
                .collect();
            for id in &missing {
                match client.find_trace(*id).await {
                    Ok(Some(_)) => {
                        kept.insert(*id);
                        failed.remove(id);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        failed.insert(*id, e.to_string());
                    }
                }
            }
            if kept.len() == ids.len() || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        if let Some((id, error)) = failed.into_iter().next() {
            anyhow::bail!("cannot ask Jaeger for trace {id}: {error}");
        }
        Ok(kept)
    }
}
