//! One run of `latency-lab load` (open loop at a rate, or closed loop with
//! N in flight), read back from its `summary.json`.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use serde::Deserialize;

/// How a run paces its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    /// Open loop: this many requests per second whatever the answers do.
    Fixed(u32),
    /// Closed loop: this many in flight, each replaced when answered.
    Saturating(u32),
}

/// What `summary.json` holds that the benchmark uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Summary {
    pub requests: u64,
    pub achieved_per_s: f64,
    pub variants: Vec<VariantSummary>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct VariantSummary {
    pub errors: u64,
    /// Answers by HTTP status (JSON object keys are the status codes).
    pub statuses: std::collections::BTreeMap<String, u64>,
    pub latency_us: Option<Percentiles>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Percentiles {
    pub p50: u64,
    pub p99: u64,
    #[serde(rename = "p99.9")]
    pub p99_9: u64,
}

impl Summary {
    pub fn errors(&self) -> u64 {
        self.variants.iter().map(|v| v.errors).sum()
    }

    /// Requests that got an HTTP answer, whatever its status: each reached
    /// the aggregator and made its spans.
    pub fn answered(&self) -> u64 {
        self.variants.iter().flat_map(|v| v.statuses.values()).sum()
    }

    pub fn latency(&self) -> anyhow::Result<Percentiles> {
        self.variants
            .first()
            .and_then(|v| v.latency_us)
            .context("the load run answered no request")
    }
}

/// Runs the load against `url` for `duration` and returns its summary.
pub async fn run(
    lab: &Path,
    url: &str,
    pacing: Pacing,
    duration: Duration,
    dir: &Path,
) -> anyhow::Result<Summary> {
    let mut cmd = tokio::process::Command::new(lab);
    cmd.arg("load")
        .arg(url)
        .arg("--duration")
        .arg(format!("{}ms", duration.as_millis()))
        .arg("--slowest")
        .arg("0")
        .arg("--out")
        .arg(dir);
    match pacing {
        Pacing::Fixed(rate) => cmd.arg("--rate").arg(rate.to_string()),
        Pacing::Saturating(n) => cmd.arg("--concurrency").arg(n.to_string()),
    };
    let output = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .context("cannot run latency-lab load")?;
    if !output.status.success() {
        anyhow::bail!(
            "latency-lab load failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let path = dir.join("summary.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("unexpected {}", path.display()))
}
