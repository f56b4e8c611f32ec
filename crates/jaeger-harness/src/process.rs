//! Running the Jaeger binary as a child process.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use trace_view::{JaegerClient, JaegerError};

use crate::{repo_file, HarnessError, COLLECTOR_CONFIG, JAEGER_CONFIG, JAEGER_UI_CONFIG};

/// Default time a process gets to become ready.
const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Lines of the log shown in errors and when a test panics.
const LOG_TAIL_LINES: usize = 40;
/// How often a port clash (another process took a port between allocation and start) is retried.
const START_ATTEMPTS: usize = 3;

/// `n` distinct free TCP ports on 127.0.0.1. All are held open until all are chosen, so they
/// differ; another process may still take one before the caller binds it (see [`Jaeger::start`],
/// which retries).
pub fn free_loopback_addrs(n: usize) -> Result<Vec<SocketAddr>, HarnessError> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| HarnessError::io("cannot bind a free loopback port", e))?;
    listeners
        .iter()
        .map(TcpListener::local_addr)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| HarnessError::io("cannot read a bound port", e))
}

/// Configures and starts a [`JaegerProcess`].
#[derive(Debug, Clone)]
pub struct JaegerProcessBuilder {
    name: String,
    binary: PathBuf,
    configs: Vec<PathBuf>,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    health: Option<(SocketAddr, String)>,
    ports: Vec<SocketAddr>,
    query_url: Option<String>,
    ready_timeout: Duration,
}

impl JaegerProcessBuilder {
    /// A process name for messages and the log file name (default `jaeger`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Adds a `--config` file (several are merged in order: maps merge, lists are replaced).
    pub fn config(mut self, path: impl Into<PathBuf>) -> Self {
        self.configs.push(path.into());
        self
    }

    /// Adds another command-line argument (after the `--config` arguments).
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Sets an environment variable for the child (on top of the inherited environment).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Sets several environment variables.
    pub fn envs<K, V>(mut self, vars: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<OsString>,
        V: Into<OsString>,
    {
        self.env
            .extend(vars.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Ready only once `GET http://<addr><path>` answers 200 (healthcheckv2 with `use_v2`
    /// serves `/status`, which turns 200 once every component has started).
    pub fn health_check(mut self, addr: SocketAddr, path: impl Into<String>) -> Self {
        self.health = Some((addr, path.into()));
        self
    }

    /// Ready only once `addr` accepts TCP connections (may be given several times).
    pub fn wait_for_port(mut self, addr: SocketAddr) -> Self {
        self.ports.push(addr);
        self
    }

    /// The base URL of the query API that [`JaegerProcess::query_url`] reports.
    pub fn query_url(mut self, url: impl Into<String>) -> Self {
        self.query_url = Some(url.into());
        self
    }

    /// How long [`start`](Self::start) waits for readiness (default 60 s).
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// Starts the binary in a fresh temporary directory, output to `<dir>/<name>.log`, and
    /// waits until it is ready. On failure the process is killed and the error carries the log
    /// tail.
    pub fn start(self) -> Result<JaegerProcess, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix("jaeger-harness-")
            .tempdir()
            .map_err(|e| HarnessError::io("cannot create a temporary directory", e))?;
        let log_path = dir.path().join(format!("{}.log", self.name));
        let stdout = File::create(&log_path)
            .map_err(|e| HarnessError::io(format!("cannot create {}", log_path.display()), e))?;
        let stderr = stdout
            .try_clone()
            .map_err(|e| HarnessError::io("cannot duplicate the log file handle", e))?;

        let mut command = Command::new(&self.binary);
        for config in &self.configs {
            // The child runs in the temporary directory: hand it absolute paths.
            let absolute = std::path::absolute(config)
                .map_err(|e| HarnessError::io(format!("cannot resolve {}", config.display()), e))?;
            let mut arg = OsString::from("--config=");
            arg.push(absolute);
            command.arg(arg);
        }
        command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        let child = command
            .spawn()
            .map_err(|e| HarnessError::io(format!("cannot start {}", self.binary.display()), e))?;

        let mut process = JaegerProcess {
            name: self.name,
            child,
            log_path,
            query_url: self.query_url,
            _dir: dir,
        };
        process.wait_ready(self.health.as_ref(), &self.ports, self.ready_timeout)?;
        Ok(process)
    }
}

/// A running Jaeger binary (as Jaeger or as a plain collector). Killed when dropped.
#[derive(Debug)]
pub struct JaegerProcess {
    name: String,
    child: Child,
    log_path: PathBuf,
    query_url: Option<String>,
    // Last field: dropped after the child is killed.
    _dir: tempfile::TempDir,
}

impl JaegerProcess {
    /// A builder for `binary`.
    pub fn builder(binary: impl Into<PathBuf>) -> JaegerProcessBuilder {
        JaegerProcessBuilder {
            name: "jaeger".to_owned(),
            binary: binary.into(),
            configs: Vec::new(),
            args: Vec::new(),
            env: Vec::new(),
            health: None,
            ports: Vec::new(),
            query_url: None,
            ready_timeout: DEFAULT_READY_TIMEOUT,
        }
    }

    /// The base URL of the query API (e.g. `http://127.0.0.1:16686`), if this process has one.
    pub fn query_url(&self) -> Option<&str> {
        self.query_url.as_deref()
    }

    /// The process name given to the builder.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The file holding the child's stdout and stderr (deleted when this value is dropped).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail_of(&self.log_path, lines)
    }

    /// Whether the child is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn wait_ready(
        &mut self,
        health: Option<&(SocketAddr, String)>,
        ports: &[SocketAddr],
        timeout: Duration,
    ) -> Result<(), HarnessError> {
        let deadline = Instant::now() + timeout;
        let mut waiting_for = "nothing".to_owned();
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    return Err(HarnessError::ProcessExited {
                        name: self.name.clone(),
                        status,
                        log: self.log_path.clone(),
                        log_tail: self.log_tail(LOG_TAIL_LINES),
                    })
                }
                Ok(None) => {}
                Err(e) => return Err(HarnessError::io("cannot poll the child process", e)),
            }
            let pending_port = ports.iter().find(|addr| !port_open(addr));
            let health_ok = match health {
                Some((addr, path)) => match http_status(addr, path) {
                    Some(200) => true,
                    status => {
                        waiting_for = format!(
                            "GET http://{addr}{path} answered {}",
                            status.map_or("nothing".to_owned(), |s| s.to_string())
                        );
                        false
                    }
                },
                None => true,
            };
            match pending_port {
                Some(addr) => waiting_for = format!("port {addr} not open"),
                None if health_ok => return Ok(()),
                None => {}
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::ReadinessTimeout {
                    name: self.name.clone(),
                    timeout,
                    waiting_for,
                    log: self.log_path.clone(),
                    log_tail: self.log_tail(LOG_TAIL_LINES),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for JaegerProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- last lines of {} ({}) ---\n{}\n--- end of {} log ---",
                self.name,
                self.log_path.display(),
                self.log_tail(LOG_TAIL_LINES),
                self.name
            );
        }
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn tail_of(path: &Path, lines: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

fn port_open(addr: &SocketAddr) -> bool {
    TcpStream::connect_timeout(addr, Duration::from_millis(500)).is_ok()
}

/// The status code of `GET http://addr/path`, or `None` when there is no HTTP answer.
fn http_status(addr: &SocketAddr, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(addr, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut head = [0u8; 64];
    let mut filled = 0;
    while filled < 12 {
        match stream.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(_) => return None,
        }
    }
    // "HTTP/1.1 200 OK"
    let line = std::str::from_utf8(&head[..filled]).ok()?;
    line.strip_prefix("HTTP/1.")?.get(2..5)?.parse().ok()
}

pub(crate) fn http_url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

/// Loopback addresses for every port `jaeger/config.yaml` opens, and the matching environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JaegerPorts {
    /// `JAEGER_OTLP_GRPC_ENDPOINT`
    pub otlp_grpc: SocketAddr,
    /// `JAEGER_OTLP_HTTP_ENDPOINT`
    pub otlp_http: SocketAddr,
    /// `JAEGER_QUERY_HTTP_ENDPOINT`
    pub query_http: SocketAddr,
    /// `JAEGER_QUERY_GRPC_ENDPOINT`
    pub query_grpc: SocketAddr,
    /// `JAEGER_HEALTHCHECK_ENDPOINT`
    pub health: SocketAddr,
    /// `JAEGER_METRICS_HOST` / `JAEGER_METRICS_PORT`
    pub metrics: SocketAddr,
}

impl JaegerPorts {
    /// Six free loopback ports.
    pub fn allocate() -> Result<Self, HarnessError> {
        let a = free_loopback_addrs(6)?;
        Ok(JaegerPorts {
            otlp_grpc: a[0],
            otlp_http: a[1],
            query_http: a[2],
            query_grpc: a[3],
            health: a[4],
            metrics: a[5],
        })
    }

    /// The environment variables of `jaeger/config.yaml` for these ports.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "JAEGER_OTLP_GRPC_ENDPOINT".into(),
                self.otlp_grpc.to_string(),
            ),
            (
                "JAEGER_OTLP_HTTP_ENDPOINT".into(),
                self.otlp_http.to_string(),
            ),
            (
                "JAEGER_QUERY_HTTP_ENDPOINT".into(),
                self.query_http.to_string(),
            ),
            (
                "JAEGER_QUERY_GRPC_ENDPOINT".into(),
                self.query_grpc.to_string(),
            ),
            (
                "JAEGER_HEALTHCHECK_ENDPOINT".into(),
                self.health.to_string(),
            ),
            ("JAEGER_METRICS_HOST".into(), self.metrics.ip().to_string()),
            (
                "JAEGER_METRICS_PORT".into(),
                self.metrics.port().to_string(),
            ),
        ]
    }
}

/// Loopback addresses for every port `otel-collector.yaml` opens, and the matching environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CollectorPorts {
    /// `OTELCOL_OTLP_GRPC_ENDPOINT`
    pub otlp_grpc: SocketAddr,
    /// `OTELCOL_OTLP_HTTP_ENDPOINT`
    pub otlp_http: SocketAddr,
    /// `OTELCOL_HEALTHCHECK_ENDPOINT`
    pub health: SocketAddr,
    /// `OTELCOL_METRICS_HOST` / `OTELCOL_METRICS_PORT`
    pub metrics: SocketAddr,
    /// `OTELCOL_PROMETHEUS_ENDPOINT`: the `prometheus` exporter Prometheus scrapes (spanmetrics
    /// and the services' OTLP metrics, OpenMetrics with exemplars).
    pub prometheus: SocketAddr,
}

impl CollectorPorts {
    /// Five free loopback ports.
    pub fn allocate() -> Result<Self, HarnessError> {
        let a = free_loopback_addrs(5)?;
        Ok(CollectorPorts {
            otlp_grpc: a[0],
            otlp_http: a[1],
            health: a[2],
            metrics: a[3],
            prometheus: a[4],
        })
    }

    /// The environment variables of `otel-collector.yaml` for these ports, exporting to
    /// `jaeger_otlp_grpc` (`JAEGER_OTLP_ENDPOINT`).
    pub fn env(&self, jaeger_otlp_grpc: SocketAddr) -> Vec<(String, String)> {
        vec![
            (
                "OTELCOL_OTLP_GRPC_ENDPOINT".into(),
                self.otlp_grpc.to_string(),
            ),
            (
                "OTELCOL_OTLP_HTTP_ENDPOINT".into(),
                self.otlp_http.to_string(),
            ),
            (
                "OTELCOL_HEALTHCHECK_ENDPOINT".into(),
                self.health.to_string(),
            ),
            ("OTELCOL_METRICS_HOST".into(), self.metrics.ip().to_string()),
            (
                "OTELCOL_METRICS_PORT".into(),
                self.metrics.port().to_string(),
            ),
            (
                "OTELCOL_PROMETHEUS_ENDPOINT".into(),
                self.prometheus.to_string(),
            ),
            ("JAEGER_OTLP_ENDPOINT".into(), jaeger_otlp_grpc.to_string()),
        ]
    }
}

/// Retries `start` with fresh ports when the log says a port was taken meanwhile.
pub(crate) fn start_with_retries<P: Copy, T>(
    allocate: impl Fn() -> Result<P, HarnessError>,
    start: impl Fn(P) -> Result<T, HarnessError>,
) -> Result<(T, P), HarnessError> {
    let mut attempt = 1;
    loop {
        let ports = allocate()?;
        match start(ports) {
            Ok(process) => return Ok((process, ports)),
            Err(e) if attempt < START_ATTEMPTS && is_port_clash(&e) => {
                eprintln!("jaeger-harness: a port was taken meanwhile, retrying: {e}");
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

fn is_port_clash(error: &HarnessError) -> bool {
    match error {
        HarnessError::ProcessExited { log_tail, .. }
        | HarnessError::ReadinessTimeout { log_tail, .. } => {
            log_tail.contains("address already in use")
        }
        _ => false,
    }
}

/// Jaeger started with the repository's `jaeger/config.yaml` (and `jaeger/ui-config.json`) on
/// free loopback ports.
#[derive(Debug)]
pub struct Jaeger {
    /// The process (killed on drop).
    pub process: JaegerProcess,
    /// Its ports.
    pub ports: JaegerPorts,
}

impl Jaeger {
    /// Starts `binary` with the repository's Jaeger config.
    pub fn start(binary: &Path) -> Result<Self, HarnessError> {
        Self::start_with_env(binary, &[])
    }

    /// Like [`start`](Self::start), with extra environment variables (e.g. `JAEGER_MAX_TRACES`).
    pub fn start_with_env(binary: &Path, extra_env: &[(&str, &str)]) -> Result<Self, HarnessError> {
        let (process, ports) = start_with_retries(JaegerPorts::allocate, |ports| {
            JaegerProcess::builder(binary)
                .name("jaeger")
                .config(repo_file(JAEGER_CONFIG))
                .env("JAEGER_UI_CONFIG_FILE", repo_file(JAEGER_UI_CONFIG))
                .envs(ports.env())
                .envs(extra_env.iter().copied())
                .health_check(ports.health, "/status")
                .wait_for_port(ports.otlp_grpc)
                .wait_for_port(ports.otlp_http)
                .wait_for_port(ports.query_http)
                .query_url(http_url(ports.query_http))
                .start()
        })?;
        Ok(Jaeger { process, ports })
    }

    /// The query API's base URL, e.g. `http://127.0.0.1:16686`.
    pub fn query_url(&self) -> String {
        http_url(self.ports.query_http)
    }

    /// A client for the query API (trace-view's: the one the `latency-lab
    /// trace` command uses too).
    pub fn query(&self) -> Result<JaegerClient, JaegerError> {
        JaegerClient::new(&self.query_url())
    }

    /// OTLP/gRPC endpoint for an exporter, e.g. `http://127.0.0.1:4317`.
    pub fn otlp_grpc_endpoint(&self) -> String {
        http_url(self.ports.otlp_grpc)
    }

    /// OTLP/HTTP base endpoint (an exporter appends `/v1/traces` only when it reads it from
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub fn otlp_http_endpoint(&self) -> String {
        http_url(self.ports.otlp_http)
    }
}

/// A second Jaeger-binary instance running the repository's `otel-collector.yaml` (plus
/// overlays), exporting to a [`Jaeger`].
#[derive(Debug)]
pub struct Collector {
    /// The process (killed on drop).
    pub process: JaegerProcess,
    /// Its ports.
    pub ports: CollectorPorts,
}

impl Collector {
    /// Starts `binary` as a collector that exports to `jaeger`.
    pub fn start(binary: &Path, jaeger: &Jaeger) -> Result<Self, HarnessError> {
        Self::start_with(binary, jaeger.ports.otlp_grpc, &[], &[])
    }

    /// Starts `binary` with `otel-collector.yaml`, then each of `overlays` as a further
    /// `--config`, exporting to `jaeger_otlp_grpc`, with extra environment variables (e.g.
    /// `TAIL_SAMPLING_PERCENT`).
    pub fn start_with(
        binary: &Path,
        jaeger_otlp_grpc: SocketAddr,
        overlays: &[PathBuf],
        extra_env: &[(&str, &str)],
    ) -> Result<Self, HarnessError> {
        let (process, ports) = start_with_retries(CollectorPorts::allocate, |ports| {
            let mut builder = JaegerProcess::builder(binary)
                .name("otel-collector")
                .config(repo_file(COLLECTOR_CONFIG));
            for overlay in overlays {
                builder = builder.config(overlay);
            }
            builder
                .envs(ports.env(jaeger_otlp_grpc))
                .envs(extra_env.iter().copied())
                .health_check(ports.health, "/status")
                .wait_for_port(ports.otlp_grpc)
                .wait_for_port(ports.otlp_http)
                .wait_for_port(ports.prometheus)
                .start()
        })?;
        Ok(Collector { process, ports })
    }

    /// The `prometheus` exporter's address, the target Prometheus scrapes.
    pub fn prometheus_exporter(&self) -> SocketAddr {
        self.ports.prometheus
    }

    /// OTLP/gRPC endpoint for an exporter, e.g. `http://127.0.0.1:4317`.
    pub fn otlp_grpc_endpoint(&self) -> String {
        http_url(self.ports.otlp_grpc)
    }

    /// OTLP/HTTP base endpoint, e.g. `http://127.0.0.1:4318` (traces go to `<this>/v1/traces`).
    pub fn otlp_http_endpoint(&self) -> String {
        http_url(self.ports.otlp_http)
    }
}
