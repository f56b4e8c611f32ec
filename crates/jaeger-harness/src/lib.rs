//! Jaeger for latency-lab's tests and tools.
//!
//! * [`jaeger_binary`] finds a Jaeger v2 binary (`JAEGER_BIN`, then the cache) or builds one with
//!   the Go toolchain from the Go module `github.com/jaegertracing/jaeger@v1.76.0` (the same code
//!   as Jaeger 2.13.0). `cargo xtask jaeger` is its command-line face.
//! * [`jaeger_for_tests`] is the test-side wrapper: it panics under `CI=true` when no binary can
//!   be had, and otherwise prints `SKIPPED (not run): <reason>` and returns `None`.
//! * [`JaegerProcess`] runs the binary as a child process (killed on drop); [`Jaeger`] and
//!   [`Collector`] start it with the repository's `jaeger/config.yaml` or `otel-collector.yaml`
//!   on free loopback ports.
//! * [`Prometheus`] runs Prometheus (found on `PATH` by [`prometheus_for_tests`], which skips or
//!   fails like [`jaeger_for_tests`]) with `prometheus/prometheus.yml` scraping a [`Collector`]'s
//!   `prometheus` exporter, so a [`Jaeger`] started with `JAEGER_PROMETHEUS_URL` serves the
//!   Monitor tab's `/api/metrics/*`.
//! * [`kafka`]: a real Apache Kafka broker (jars from Maven, single-node KRaft) and the Jaeger
//!   binary's Kafka roles (collector -> Kafka -> ingester with Badger), for the Kafka pipeline.
//! * [`chromium_for_tests`] and [`dump_dom`] open a page in a real headless browser.
//! * [`compose_loader_for_tests`] builds Docker Compose's own loader (compose-go) to check
//!   `docker-compose.yml` as `docker compose config` would.
//! * [`kube_tools_for_tests`] gives `kustomize`, `kubeconform` and local Kubernetes schemas
//!   (built or fetched into the cache) to validate `deploy/`'s manifests offline.
//! * [`otelcol_binary`] builds `deploy/collector/` (the scale-out pipeline's collector, with the
//!   contrib `loadbalancing` exporter); [`Front`] and [`Sampler`] run its two tiers.
//! * [`Jaeger::query`] gives trace-view's [`trace_view::JaegerClient`] for the running Jaeger's
//!   HTTP API (`/api/services`, `/api/traces/{id}`, and the `wait_for_*` polling tests need).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use jaeger_harness::{jaeger_for_tests, Collector, Jaeger};
//!
//! let Some(bin) = jaeger_for_tests() else { return Ok(()) };
//! let jaeger = Jaeger::start(&bin)?;
//! let collector = Collector::start(&bin, &jaeger)?;
//! // ... point an OTLP exporter at collector.otlp_grpc_endpoint() and export a trace ...
//! # let trace_id = trace_view::TraceId(1);
//! let trace = jaeger.query()?.wait_for_trace(trace_id, 3, Duration::from_secs(30)).await?;
//! # let _ = (collector, trace);
//! # Ok(()) }
//! ```

mod browser;
mod compose_loader;
mod config_env;
mod error;
mod hash_ring;
pub mod kafka;
mod kubernetes;
mod locate;
mod otelcol;
mod process;
mod prometheus;

use std::path::{Path, PathBuf};

pub use browser::{chromium, chromium_for_tests, dump_dom};
pub use compose_loader::{
    compose_loader, compose_loader_for_tests, load_compose, Loaded, COMPOSE_CHECK_DIR,
    COMPOSE_GO_VERSION,
};
pub use config_env::{env_references, substitute as substitute_env, EnvReference};
pub use error::HarnessError;
pub use hash_ring::HashRing;
pub use kubernetes::{
    kube_tools, kube_tools_for_tests, KubeTools, KubernetesError, Validation, KUBECONFORM_VERSION,
    KUBERNETES_VALIDATE_VERSION, KUSTOMIZATION_DIR, KUSTOMIZE_VERSION, SCHEMA_KUBERNETES_VERSION,
};
pub use locate::{
    availability, cache_root, cached_binary_path, jaeger_binary, jaeger_binary_in,
    jaeger_for_tests, running_in_ci, skipped_line, Availability, LocateEnv,
};
pub use otelcol::{
    otelcol_binary, otelcol_for_tests, Front, FrontPorts, Sampler, SamplerPorts, ScaleOut,
    FRONT_CONFIG, OTELCOL_RELEASE, OTELCOL_SOURCE_DIR, SAMPLER_CONFIG,
};
pub use process::{
    free_loopback_addrs, Collector, CollectorPorts, Jaeger, JaegerPorts, JaegerProcess,
    JaegerProcessBuilder,
};
pub use prometheus::{
    config_for as prometheus_config_for, prometheus_for_tests, prometheus_tools, Prometheus,
    PrometheusTools, COLLECTOR_SCRAPE_JOB,
};

/// `variable` when set (it must name a file), else `program` on `PATH`; the error says which
/// is missing and `hint`, what to install.
fn find_program(variable: &str, program: &str, hint: &str) -> Result<PathBuf, String> {
    if let Some(value) = std::env::var_os(variable).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(&value);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("{variable}={} is not a file", path.display()))
        };
    }
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(program))
                .find(|candidate| candidate.is_file())
        })
        .ok_or_else(|| format!("no `{program}` on PATH: {hint}"))
}

/// A tool a test needs: `found`'s value, or, without it, a PANIC under `CI=true` (the test
/// fails, naming `what` and the reason) and elsewhere [`skipped_line`] on stderr and `None`.
fn for_tests<T>(found: Result<T, String>, what: &str) -> Option<T> {
    match found {
        Ok(tool) => Some(tool),
        Err(reason) => {
            if running_in_ci() {
                panic!("CI=true and {what}: {reason}");
            }
            eprintln!("{}", skipped_line(&reason));
            None
        }
    }
}

/// Go module that holds Jaeger.
pub const JAEGER_MODULE: &str = "github.com/jaegertracing/jaeger";
/// Module version built: the newest one the Go module proxy serves (no `/v2` module path exists).
pub const JAEGER_MODULE_VERSION: &str = "v1.76.0";
/// The Jaeger v2 release with the same code as [`JAEGER_MODULE_VERSION`] (Collector core v0.140).
pub const JAEGER_RELEASE: &str = "2.13.0";
/// The `go` directive of jaeger v1.76.0's go.mod: the oldest Go that can build it.
pub const MIN_GO_VERSION: &str = "1.24.6";

/// Jaeger's own config, relative to the workspace root.
pub const JAEGER_CONFIG: &str = "jaeger/config.yaml";
/// Jaeger UI config, relative to the workspace root.
pub const JAEGER_UI_CONFIG: &str = "jaeger/ui-config.json";
/// The collector's config, relative to the workspace root.
pub const COLLECTOR_CONFIG: &str = "otel-collector.yaml";
/// The tail-sampling overlay for [`COLLECTOR_CONFIG`], relative to the workspace root.
pub const TAIL_SAMPLING_OVERLAY: &str = "otel-collector.tail-sampling.yaml";

/// Prometheus' scrape config, relative to the workspace root.
pub const PROMETHEUS_CONFIG: &str = "prometheus/prometheus.yml";
/// Prometheus' alert rules, relative to the workspace root.
pub const PROMETHEUS_ALERTS: &str = "prometheus/alerts.yml";
/// promtool unit tests of [`PROMETHEUS_ALERTS`], relative to the workspace root.
pub const PROMETHEUS_ALERTS_TEST: &str = "prometheus/alerts_test.yml";

/// The workspace root (two levels above this crate's manifest).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest.to_path_buf())
}

/// A file of the repository, e.g. `repo_file(JAEGER_CONFIG)`.
pub fn repo_file(relative: &str) -> PathBuf {
    workspace_root().join(relative)
}
