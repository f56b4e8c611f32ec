//! Finding or building `otelcol-latency-lab`, the collector distribution of `deploy/collector/`
//! (front tier with the contrib `loadbalancing` exporter, tail-sampling tier), and running the
//! two tiers of `deploy/configs/` as child processes.
//!
//! Why a build of our own rather than the Jaeger binary the other tests run: Jaeger v2 carries
//! `tail_sampling` but not the `loadbalancing` exporter, and that exporter is the point of the
//! front tier. `deploy/collector/go.mod` pins every module it shares with Jaeger at the version
//! Jaeger's build selects, so after the Jaeger build Go's caches hold all but the exporter and
//! its resolvers' clients, and the build takes about a minute on 2 cores (four to five minutes
//! from empty caches).

use std::collections::hash_map::DefaultHasher;
use std::collections::HashSet;
use std::fs;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use crate::locate::{
    cache_root, check_go_version, find_on_path, is_executable_file, move_into_place, progress,
    run_step_with, BuildLock, RemoveOnDrop,
};
use crate::process::{http_url, start_with_retries};
use crate::{
    for_tests, free_loopback_addrs, repo_file, HarnessError, HashRing, Jaeger, JaegerProcess,
};

/// The distribution's sources, relative to the workspace root.
pub const OTELCOL_SOURCE_DIR: &str = "deploy/collector";
/// The front tier's config, relative to the workspace root.
pub const FRONT_CONFIG: &str = "deploy/configs/front.yaml";
/// The tail-sampling tier's config, relative to the workspace root.
pub const SAMPLER_CONFIG: &str = "deploy/configs/sampler.yaml";
/// The contrib release the distribution is built at (its `BuildInfo.Version`).
pub const OTELCOL_RELEASE: &str = "0.140.1";

/// The files whose content names the cached build: an edit to any of them builds anew.
const SOURCES: &[&str] = &["go.mod", "go.sum", "main.go"];

static BUILD_MUTEX: Mutex<()> = Mutex::new(());

/// The path of an `otelcol-latency-lab` binary: `OTELCOL_BIN` when set (an executable file),
/// else the cached build of the current sources, else a fresh `go build` of
/// `deploy/collector/` into the cache (the same command as `deploy/collector/build.sh`).
pub fn otelcol_binary() -> Result<PathBuf, HarnessError> {
    if let Some(value) = std::env::var_os("OTELCOL_BIN").filter(|v| !v.is_empty()) {
        let path = PathBuf::from(&value);
        return if is_executable_file(&path) {
            std::path::absolute(&path)
                .map_err(|e| HarnessError::io(format!("cannot resolve {}", path.display()), e))
        } else {
            Err(HarnessError::Config {
                path,
                reason: "(OTELCOL_BIN) is not an executable file".into(),
            })
        };
    }
    let source = repo_file(OTELCOL_SOURCE_DIR);
    let target = cache_root()?
        .join(format!(
            "otelcol-latency-lab-{OTELCOL_RELEASE}-{:016x}",
            sources_hash(&source)?
        ))
        .join("otelcol-latency-lab");
    if is_executable_file(&target) {
        return Ok(target);
    }
    let _in_process = BUILD_MUTEX
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if is_executable_file(&target) {
        return Ok(target);
    }
    let path = std::env::var_os("PATH");
    let go =
        find_on_path("go", path.as_deref()).ok_or(HarnessError::GoNotFound { off_path: None })?;
    check_go_version(&go)?;
    build(&go, &source, &target)?;
    Ok(target)
}

fn sources_hash(dir: &Path) -> Result<u64, HarnessError> {
    // SipHash with fixed keys: the same sources give the same name on every run.
    let mut hasher = DefaultHasher::new();
    for name in SOURCES {
        let path = dir.join(name);
        let bytes = fs::read(&path)
            .map_err(|e| HarnessError::io(format!("cannot read {}", path.display()), e))?;
        name.hash(&mut hasher);
        bytes.hash(&mut hasher);
    }
    Ok(hasher.finish())
}

fn build(go: &Path, source: &Path, target: &Path) -> Result<(), HarnessError> {
    let dir = target
        .parent()
        .expect("the cached binary's path has a parent");
    fs::create_dir_all(dir)
        .map_err(|e| HarnessError::io(format!("cannot create {}", dir.display()), e))?;
    let Some(_lock) = BuildLock::acquire(dir, target)? else {
        return Ok(());
    };
    let started = std::time::Instant::now();
    progress(format!(
        "building the collector of {OTELCOL_SOURCE_DIR} (contrib {OTELCOL_RELEASE}) into {}",
        target.display()
    ));
    let tmp = RemoveOnDrop(dir.join(format!(".otelcol.{}.tmp", std::process::id())));
    let tmp_str = tmp.0.to_string_lossy().into_owned();
    // GOSUMDB=off: the checksum database answers 404 for some contrib modules of this release
    // (the loadbalancing exporter among them). go.sum pins every module's hash, and
    // -mod=readonly refuses to add one, so nothing goes unchecked. build.sh says the same.
    let env = [
        ("GOSUMDB", "off"),
        ("GOFLAGS", "-mod=readonly -buildvcs=false"),
    ];
    run_step_with(
        go,
        source,
        &["build", "-trimpath", "-ldflags=-s -w", "-o", &tmp_str, "."],
        &env,
    )?;
    move_into_place(&tmp.0, target, started)
}

/// [`otelcol_binary`] for a test: `None` (with a skip line) when it cannot be had, a panic
/// under `CI=true`. Evaluated once per process.
pub fn otelcol_for_tests() -> Option<PathBuf> {
    static ONCE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = ONCE
        .get_or_init(|| otelcol_binary().map_err(|e| e.to_string()))
        .clone();
    for_tests(found, "no otelcol-latency-lab binary could be had")
}

/// Loopback ports of one tail-sampling collector (`deploy/configs/sampler.yaml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SamplerPorts {
    /// `SAMPLER_OTLP_GRPC_ENDPOINT`: where the front tier sends.
    pub otlp_grpc: SocketAddr,
    /// `SAMPLER_HEALTHCHECK_ENDPOINT`
    pub health: SocketAddr,
    /// `SAMPLER_METRICS_PORT`: the collector's own metrics.
    pub metrics: SocketAddr,
}

/// A tail-sampling collector exporting what it keeps to one OTLP/gRPC address.
#[derive(Debug)]
pub struct Sampler {
    /// The process (killed on drop).
    pub process: JaegerProcess,
    /// Its ports.
    pub ports: SamplerPorts,
}

impl Sampler {
    /// Starts `binary` with `deploy/configs/sampler.yaml`, exporting to `export_to`, with extra
    /// environment (the `TAIL_SAMPLING_*` policy knobs).
    pub fn start(
        binary: &Path,
        name: &str,
        export_to: SocketAddr,
        extra_env: &[(&str, &str)],
    ) -> Result<Self, HarnessError> {
        let allocate = || {
            let a = free_loopback_addrs(3)?;
            Ok(SamplerPorts {
                otlp_grpc: a[0],
                health: a[1],
                metrics: a[2],
            })
        };
        let (process, ports) = start_with_retries(allocate, |ports: SamplerPorts| {
            JaegerProcess::builder(binary)
                .name(name)
                .config(repo_file(SAMPLER_CONFIG))
                .env("SAMPLER_OTLP_GRPC_ENDPOINT", ports.otlp_grpc.to_string())
                .env("SAMPLER_HEALTHCHECK_ENDPOINT", ports.health.to_string())
                .env("SAMPLER_METRICS_PORT", ports.metrics.port().to_string())
                .env("SAMPLER_EXPORT_ENDPOINT", export_to.to_string())
                .envs(extra_env.iter().copied())
                .health_check(ports.health, "/status")
                .wait_for_port(ports.otlp_grpc)
                .start()
        })?;
        Ok(Sampler { process, ports })
    }
}

/// Loopback ports of the front tier (`deploy/configs/front.yaml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrontPorts {
    /// `FRONT_OTLP_GRPC_ENDPOINT`
    pub otlp_grpc: SocketAddr,
    /// `FRONT_OTLP_HTTP_ENDPOINT`
    pub otlp_http: SocketAddr,
    /// `FRONT_HEALTHCHECK_ENDPOINT`
    pub health: SocketAddr,
    /// `FRONT_METRICS_PORT`
    pub metrics: SocketAddr,
}

/// The front tier: OTLP in, the `loadbalancing` exporter out to every sampler.
#[derive(Debug)]
pub struct Front {
    /// The process (killed on drop).
    pub process: JaegerProcess,
    /// Its ports.
    pub ports: FrontPorts,
}

impl Front {
    /// Starts `binary` with `deploy/configs/front.yaml`, sending to `samplers`, with extra
    /// environment (`LB_ROUTING_KEY`: `traceID` by default, `service`, ...).
    pub fn start(
        binary: &Path,
        samplers: &[SocketAddr],
        extra_env: &[(&str, &str)],
    ) -> Result<Self, HarnessError> {
        let endpoints = format!(
            "[{}]",
            samplers
                .iter()
                .map(SocketAddr::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
        let allocate = || {
            let a = free_loopback_addrs(4)?;
            Ok(FrontPorts {
                otlp_grpc: a[0],
                otlp_http: a[1],
                health: a[2],
                metrics: a[3],
            })
        };
        let (process, ports) = start_with_retries(allocate, |ports: FrontPorts| {
            JaegerProcess::builder(binary)
                .name("otel-front")
                .config(repo_file(FRONT_CONFIG))
                .env("FRONT_OTLP_GRPC_ENDPOINT", ports.otlp_grpc.to_string())
                .env("FRONT_OTLP_HTTP_ENDPOINT", ports.otlp_http.to_string())
                .env("FRONT_HEALTHCHECK_ENDPOINT", ports.health.to_string())
                .env("FRONT_METRICS_PORT", ports.metrics.port().to_string())
                .env("SAMPLER_ENDPOINTS", &endpoints)
                .envs(extra_env.iter().copied())
                .health_check(ports.health, "/status")
                .wait_for_port(ports.otlp_grpc)
                .wait_for_port(ports.otlp_http)
                .start()
        })?;
        Ok(Front { process, ports })
    }

    /// OTLP/gRPC endpoint for an exporter, e.g. `http://127.0.0.1:4317`.
    pub fn otlp_grpc_endpoint(&self) -> String {
        http_url(self.ports.otlp_grpc)
    }

    /// OTLP/HTTP base endpoint.
    pub fn otlp_http_endpoint(&self) -> String {
        http_url(self.ports.otlp_http)
    }
}

/// The two collector tiers of `deploy/`, each sampler writing what it keeps to a [`Jaeger`] of
/// its own, so that where a trace's spans went shows in which Jaeger holds them.
#[derive(Debug)]
pub struct ScaleOut {
    /// One per sampler, in the samplers' order.
    pub jaegers: Vec<Jaeger>,
    pub samplers: Vec<Sampler>,
    pub front: Front,
    /// The front tier's ring, replayed: which sampler a routing key goes to.
    pub ring: HashRing,
}

/// How many times [`ScaleOut::start`] draws sampler addresses to keep services apart.
const APART_ATTEMPTS: usize = 20;

impl ScaleOut {
    /// Starts `samplers` Jaegers, a sampler in front of each and the front tier. `env` goes to
    /// every collector (`TAIL_SAMPLING_*` for the samplers, `LB_ROUTING_KEY` for the front).
    ///
    /// `apart`: service names that must not all hash to one sampler. Routed by service, where
    /// a service lands depends on the samplers' addresses (free ports, new each run); the
    /// samplers are started again on fresh ports until the ring spreads these names, so a
    /// control run that routes by service splits traces every time, not three times in four.
    pub fn start(
        jaeger: &Path,
        otelcol: &Path,
        samplers: usize,
        env: &[(&str, &str)],
        apart: &[&str],
    ) -> Result<Self, HarnessError> {
        let jaegers = (0..samplers)
            .map(|_| Jaeger::start(jaeger))
            .collect::<Result<Vec<_>, _>>()?;
        let mut attempt = 0;
        let (started, ring) = loop {
            attempt += 1;
            let started = jaegers
                .iter()
                .enumerate()
                .map(|(i, j)| {
                    Sampler::start(otelcol, &format!("sampler-{i}"), j.ports.otlp_grpc, env)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let ring = HashRing::new(
                &started
                    .iter()
                    .map(|s| s.ports.otlp_grpc.to_string())
                    .collect::<Vec<_>>(),
            );
            let landed: HashSet<Option<&str>> = apart
                .iter()
                .map(|name| ring.backend_for(name.as_bytes()))
                .collect();
            if apart.is_empty() || landed.len() > 1 || attempt == APART_ATTEMPTS {
                break (started, ring);
            }
        };
        let addresses: Vec<SocketAddr> = started.iter().map(|s| s.ports.otlp_grpc).collect();
        let front = Front::start(otelcol, &addresses, env)?;
        Ok(ScaleOut {
            jaegers,
            samplers: started,
            front,
            ring,
        })
    }

    /// The index of the sampler (and Jaeger) a routing key goes to.
    pub fn sampler_for(&self, key: &[u8]) -> Option<usize> {
        let backend = self.ring.backend_for(key)?;
        self.samplers
            .iter()
            .position(|s| s.ports.otlp_grpc.to_string() == backend)
    }
}
