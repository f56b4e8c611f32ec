//! Prometheus (and promtool) for tests: found on `PATH`, started on a free loopback port with the
//! repository's `prometheus/prometheus.yml` and `prometheus/alerts.yml`.
//!
//! Prometheus does not expand environment variables in its config, so the scrape target and
//! the intervals are rewritten in a copy of the file; everything else is the repository's.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_norway::Value;

use crate::process::{free_loopback_addrs, http_url, start_with_retries};
use crate::{
    find_program, for_tests, repo_file, HarnessError, JaegerProcess, PROMETHEUS_ALERTS,
    PROMETHEUS_CONFIG,
};

/// The scrape job in `prometheus/prometheus.yml` that reads the collector's exporter.
pub const COLLECTOR_SCRAPE_JOB: &str = "otel-collector";

/// What to install when Prometheus is missing.
const INSTALL_HINT: &str = "install Prometheus 2.x with promtool (Debian/Ubuntu: `apt-get install \
                            prometheus`), or set PROMETHEUS_BIN and PROMTOOL_BIN";

/// The `prometheus` and `promtool` binaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrometheusTools {
    /// The server.
    pub prometheus: PathBuf,
    /// The config/rules checker and rule unit-test runner.
    pub promtool: PathBuf,
}

/// `PROMETHEUS_BIN` / `PROMTOOL_BIN` when set, else `prometheus` / `promtool` on `PATH`; the
/// error says which is missing and what to install.
pub fn prometheus_tools() -> Result<PrometheusTools, String> {
    let find = |variable: &str, program: &str| find_program(variable, program, INSTALL_HINT);
    Ok(PrometheusTools {
        prometheus: find("PROMETHEUS_BIN", "prometheus")?,
        promtool: find("PROMTOOL_BIN", "promtool")?,
    })
}

/// [`prometheus_tools`] for a test: under `CI=true` a missing tool PANICS (the test fails);
/// elsewhere this prints [`crate::skipped_line`] and returns `None`.
pub fn prometheus_for_tests() -> Option<PrometheusTools> {
    for_tests(prometheus_tools(), "Prometheus is missing")
}

/// A copy of `prometheus/prometheus.yml` that scrapes `target` in the collector job and
/// scrapes and evaluates every `interval`.
pub fn config_for(target: SocketAddr, interval: Duration) -> Result<String, HarnessError> {
    let path = repo_file(PROMETHEUS_CONFIG);
    let invalid = |reason: String| HarnessError::Config {
        path: path.clone(),
        reason,
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| HarnessError::io(format!("cannot read {}", path.display()), e))?;
    let mut config: Value = serde_norway::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    let every = Value::String(format!("{}ms", interval.as_millis().max(1)));
    let global = config
        .get_mut("global")
        .and_then(Value::as_mapping_mut)
        .ok_or_else(|| invalid("no `global` map".into()))?;
    global.insert("scrape_interval".into(), every.clone());
    global.insert("evaluation_interval".into(), every);
    let job = config
        .get_mut("scrape_configs")
        .and_then(Value::as_sequence_mut)
        .and_then(|jobs| {
            jobs.iter_mut()
                .find(|job| job["job_name"].as_str() == Some(COLLECTOR_SCRAPE_JOB))
        })
        .and_then(Value::as_mapping_mut)
        .ok_or_else(|| invalid(format!("no scrape job {COLLECTOR_SCRAPE_JOB:?}")))?;
    job.remove("scrape_interval");
    let static_configs: Value =
        serde_norway::from_str(&format!("[{{targets: [\"{target}\"]}}]"))
            .map_err(|e| invalid(format!("cannot build static_configs for {target}: {e}")))?;
    job.insert("static_configs".into(), static_configs);
    serde_norway::to_string(&config).map_err(|e| invalid(e.to_string()))
}

/// Prometheus started with the repository's config and alert rules (see [`config_for`]),
/// exemplar storage on, a fresh TSDB in a temporary directory, on a free loopback port.
#[derive(Debug)]
pub struct Prometheus {
    /// The process (killed on drop).
    pub process: JaegerProcess,
    /// Where its HTTP API listens.
    pub addr: SocketAddr,
    // Last field: removed after the process is killed.
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts `binary` scraping the collector exporter at `target` every `interval`, on a free
    /// loopback port.
    pub fn start(
        binary: &Path,
        target: SocketAddr,
        interval: Duration,
    ) -> Result<Self, HarnessError> {
        let (prometheus, _) = start_with_retries(
            || free_loopback_addrs(1).map(|a| a[0]),
            |addr| Self::start_on(binary, addr, target, interval),
        )?;
        Ok(prometheus)
    }

    /// Like [`start`](Self::start), listening on `listen`: for a Jaeger that must be told the
    /// Prometheus URL before Prometheus can start (it scrapes the collector, which exports to
    /// that Jaeger). No retry: another process may have taken `listen` meanwhile.
    pub fn start_on(
        binary: &Path,
        listen: SocketAddr,
        target: SocketAddr,
        interval: Duration,
    ) -> Result<Self, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix("prometheus-harness-")
            .tempdir()
            .map_err(|e| HarnessError::io("cannot create a temporary directory", e))?;
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config_for(target, interval)?)
            .map_err(|e| HarnessError::io(format!("cannot write {}", config_path.display()), e))?;
        // rule_files are relative to the config file: the rules go next to the copy.
        let rules = repo_file(PROMETHEUS_ALERTS);
        let rules_copy = dir.path().join("alerts.yml");
        std::fs::copy(&rules, &rules_copy)
            .map_err(|e| HarnessError::io(format!("cannot copy {}", rules.display()), e))?;
        let storage = dir.path().join("data");
        let flag = |name: &str, value: &Path| {
            let mut arg = OsString::from(format!("--{name}="));
            arg.push(value);
            arg
        };
        let process = JaegerProcess::builder(binary)
            .name("prometheus")
            .arg(flag("config.file", &config_path))
            .arg(flag("storage.tsdb.path", &storage))
            .arg(format!("--web.listen-address={listen}"))
            // Exemplars (trace ids on histogram buckets) are dropped without this.
            .arg("--enable-feature=exemplar-storage")
            .health_check(listen, "/-/ready")
            .query_url(http_url(listen))
            .start()?;
        Ok(Prometheus {
            process,
            addr: listen,
            _dir: dir,
        })
    }

    /// The base URL of the HTTP API, e.g. `http://127.0.0.1:9090`.
    pub fn url(&self) -> String {
        http_url(self.addr)
    }
}
