use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use crate::{JAEGER_MODULE_VERSION, MIN_GO_VERSION};

/// Everything that can go wrong while locating, building or running Jaeger (querying it is
/// trace-view's [`trace_view::JaegerError`]).
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// `JAEGER_BIN` names something that is not an executable file.
    #[error("JAEGER_BIN={path} {reason}")]
    InvalidJaegerBin { path: PathBuf, reason: String },

    /// No Jaeger binary in the cache and no Go toolchain to build one.
    #[error(
        "no Jaeger binary: JAEGER_BIN is not set, none is cached, and `go` is not on PATH to \
         build one{}: install Go >= {MIN_GO_VERSION} (what the go.mod of jaeger \
         {JAEGER_MODULE_VERSION} requires), or set JAEGER_BIN to the path of a Jaeger v2 binary",
        off_path_hint(off_path.as_deref())
    )]
    GoNotFound {
        /// A folder with a `go` that is not on `PATH`.
        off_path: Option<PathBuf>,
    },

    /// No collector of `deploy/collector/` in the cache and no Go toolchain to build one.
    #[error(
        "no otelcol-latency-lab binary: OTELCOL_BIN is not set, none is cached for the current \
         deploy/collector/ sources, and `go` is not on PATH to build one: install Go >= \
         {MIN_GO_VERSION}, or set OTELCOL_BIN to a build of deploy/collector/ (its build.sh)"
    )]
    GoNotFoundForOtelcol,

    /// The Go toolchain on PATH is older than jaeger's go.mod asks for.
    #[error(
        "no Jaeger binary: `{go}` is {found}, but building jaeger {JAEGER_MODULE_VERSION} needs \
         Go >= {MIN_GO_VERSION}: install a newer Go, or set JAEGER_BIN to the path of a Jaeger \
         v2 binary"
    )]
    GoTooOld { go: PathBuf, found: String },

    /// Neither `LATENCY_LAB_CACHE`, `XDG_CACHE_HOME` nor `HOME` is set.
    #[error("cannot choose a cache directory: set LATENCY_LAB_CACHE, XDG_CACHE_HOME or HOME")]
    NoCacheDir,

    /// A build step (`go mod init`, `go get`, `go build`, ...) failed.
    #[error("`{command}` failed ({status}); its output is above on stderr")]
    CommandFailed { command: String, status: ExitStatus },

    /// A configuration file of the repository cannot be used as expected.
    #[error("{path}: {reason}")]
    Config { path: PathBuf, reason: String },

    /// An I/O operation failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    /// The child process exited before it became ready.
    #[error("{name} exited before it was ready ({status}); last lines of {log}:\n{log_tail}")]
    ProcessExited {
        name: String,
        status: ExitStatus,
        log: PathBuf,
        log_tail: String,
    },

    /// The child process did not become ready in time.
    #[error(
        "{name} was not ready within {timeout:?} ({waiting_for}); last lines of {log}:\n{log_tail}"
    )]
    ReadinessTimeout {
        name: String,
        timeout: Duration,
        waiting_for: String,
        log: PathBuf,
        log_tail: String,
    },

    /// The Kafka broker or one of its tools failed.
    #[error(transparent)]
    Kafka(#[from] crate::kafka::KafkaError),
}

/// ` (a Go is in DIR: add DIR to PATH)`, when one is.
fn off_path_hint(dir: Option<&std::path::Path>) -> String {
    dir.map(|dir| {
        format!(
            " (a Go is installed in {0}: add {0} to PATH)",
            dir.display()
        )
    })
    .unwrap_or_default()
}

impl HarnessError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        HarnessError::Io {
            context: context.into(),
            source,
        }
    }
}
