//! Offline validation of the Kubernetes manifests (`deploy/kustomization.yaml`): `kustomize
//! build` renders them, generated ConfigMaps included, and `kubeconform -strict` checks every
//! resource against the Kubernetes API's JSON schemas.
//!
//! Why these tools and this way: no cluster runs in CI, and kubeconform's default schema
//! download cannot work offline. Both tools are Go modules, built on demand into the cache
//! (like Jaeger, [`crate::jaeger_binary`]); the schemas come from the `kubernetes-validate`
//! package on PyPI, rewritten once so that they resolve locally ([`schemas`]).

mod schemas;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use crate::locate::{cache_root, find_on_path, go_command, is_executable_file};
use crate::{for_tests, repo_file};

pub use schemas::{KUBERNETES_VALIDATE_VERSION, SCHEMA_KUBERNETES_VERSION};

/// kubeconform's Go package and the release built.
pub const KUBECONFORM_PACKAGE: &str = "github.com/yannh/kubeconform/cmd/kubeconform";
/// The kubeconform release built.
pub const KUBECONFORM_VERSION: &str = "v0.8.0";
/// kustomize's Go package (the standalone CLI, newer than the copy inside kubectl).
pub const KUSTOMIZE_PACKAGE: &str = "sigs.k8s.io/kustomize/kustomize/v5";
/// The kustomize release built.
pub const KUSTOMIZE_VERSION: &str = "v5.8.0";
/// The folder holding `kustomization.yaml`, relative to the workspace root.
pub const KUSTOMIZATION_DIR: &str = "deploy";

/// Serialises the on-demand builds of one process (a test binary's tests run in parallel).
static BUILD_MUTEX: Mutex<()> = Mutex::new(());

/// What can go wrong while getting the tools or running them.
#[derive(Debug, thiserror::Error)]
pub enum KubernetesError {
    /// Neither `LATENCY_LAB_CACHE`, `XDG_CACHE_HOME` nor `HOME` is set.
    #[error("cannot choose a cache directory: set LATENCY_LAB_CACHE, XDG_CACHE_HOME or HOME")]
    NoCacheDir,
    /// A program needed to build or fetch a tool is not on `PATH`.
    #[error("no `{program}` on PATH: {hint}")]
    Missing { program: String, hint: String },
    /// A command ran and failed.
    #[error("`{command}` failed ({status}):\n{output}")]
    CommandFailed {
        command: String,
        status: std::process::ExitStatus,
        output: String,
    },
    /// A schema file is not the JSON it should be.
    #[error("{path}: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// The package did not hold the schema folder expected.
    #[error("{0} is missing: has the layout of kubernetes-validate changed?")]
    SchemaLayout(PathBuf),
    /// An I/O operation failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl KubernetesError {
    fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        KubernetesError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Runs `command` to completion; its output is the error's text when it fails.
fn run(command: &mut Command, shown: &str) -> Result<std::process::Output, KubernetesError> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| KubernetesError::io(format!("cannot run `{shown}`"), e))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(KubernetesError::CommandFailed {
            command: shown.to_owned(),
            status: output.status,
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        })
    }
}

/// The three things validation needs.
#[derive(Debug, Clone)]
pub struct KubeTools {
    /// The `kustomize` binary.
    pub kustomize: PathBuf,
    /// The `kubeconform` binary.
    pub kubeconform: PathBuf,
    /// Folder of the rewritten schemas (`v<version>-local` and `v<version>-local-strict`).
    pub schemas: PathBuf,
}

/// What kubeconform said about a set of manifests.
#[derive(Debug, Clone)]
pub struct Validation {
    /// kubeconform exited 0: every resource valid, none skipped for want of a schema.
    pub valid: bool,
    /// Its report: one line per invalid resource, then the summary line.
    pub report: String,
}

impl KubeTools {
    /// `kustomize build dir`: the manifests as `kubectl apply -k` would send them.
    pub fn build(&self, dir: &Path) -> Result<String, KubernetesError> {
        let output = run(
            Command::new(&self.kustomize).arg("build").arg(dir),
            &format!("kustomize build {}", dir.display()),
        )?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// `kustomize build` of the repository's `deploy/`.
    pub fn build_repository(&self) -> Result<String, KubernetesError> {
        self.build(&repo_file(KUSTOMIZATION_DIR))
    }

    /// `kubeconform -strict` over `manifests` (YAML documents), with the local schemas only:
    /// unknown fields, wrong types, and kinds without a schema all fail.
    pub fn validate(&self, manifests: &str) -> Result<Validation, KubernetesError> {
        let location = format!(
            "{}/v{SCHEMA_KUBERNETES_VERSION}-local{{{{ .StrictSuffix }}}}/{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json",
            self.schemas.display()
        );
        let mut child = Command::new(&self.kubeconform)
            .args(["-strict", "-summary", "-output", "text"])
            .args(["-kubernetes-version", SCHEMA_KUBERNETES_VERSION])
            .arg("-schema-location")
            .arg(&location)
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| KubernetesError::io("cannot run kubeconform", e))?;
        // Written from a thread while the output is read, so neither pipe can fill up and
        // stall the other.
        let writer = child.stdin.take().map(|mut stdin| {
            let manifests = manifests.to_owned();
            std::thread::spawn(move || stdin.write_all(manifests.as_bytes()))
        });
        let output = child
            .wait_with_output()
            .map_err(|e| KubernetesError::io("kubeconform did not finish", e))?;
        if let Some(writer) = writer {
            writer
                .join()
                .unwrap_or(Ok(()))
                .map_err(|e| KubernetesError::io("cannot write to kubeconform", e))?;
        }
        Ok(Validation {
            valid: output.status.success(),
            report: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        })
    }
}

/// The tools, each from its variable (`KUSTOMIZE_BIN`, `KUBECONFORM_BIN`,
/// `KUBERNETES_SCHEMAS_DIR`) when set, else from the cache, built or fetched there when missing:
/// the Go tools with `go install` (about 1.5 min cold for both), the schemas with `pip` from a
/// virtual environment made for it (a few seconds).
pub fn kube_tools() -> Result<KubeTools, KubernetesError> {
    let cache = cache_root().map_err(|_| KubernetesError::NoCacheDir)?;
    let _in_process = BUILD_MUTEX
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    Ok(KubeTools {
        kustomize: from_env("KUSTOMIZE_BIN").map_or_else(
            || go_tool(&cache, "kustomize", KUSTOMIZE_PACKAGE, KUSTOMIZE_VERSION),
            Ok,
        )?,
        kubeconform: from_env("KUBECONFORM_BIN").map_or_else(
            || {
                go_tool(
                    &cache,
                    "kubeconform",
                    KUBECONFORM_PACKAGE,
                    KUBECONFORM_VERSION,
                )
            },
            Ok,
        )?,
        schemas: from_env("KUBERNETES_SCHEMAS_DIR")
            .map_or_else(|| schemas::local_schemas(&cache), Ok)?,
    })
}

/// [`kube_tools`] for a test: under `CI=true` a failure PANICS (the test fails); elsewhere
/// this prints [`crate::skipped_line`] and returns `None`.
pub fn kube_tools_for_tests() -> Option<KubeTools> {
    for_tests(
        kube_tools().map_err(|e| e.to_string()),
        "no kustomize/kubeconform/schemas",
    )
}

fn from_env(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// `<cache>/<name>-<version>/<name>`, built with `go install package@version` when missing.
/// The binary is installed into a scratch folder and renamed into place, so a half-built one
/// is never seen; two processes building at once both succeed, the last rename wins.
fn go_tool(
    cache: &Path,
    name: &str,
    package: &str,
    version: &str,
) -> Result<PathBuf, KubernetesError> {
    let dir = cache.join(format!("{name}-{version}"));
    let target = dir.join(name);
    if is_executable_file(&target) {
        return Ok(target);
    }
    let go = find_on_path("go", std::env::var_os("PATH").as_deref()).ok_or_else(|| {
        KubernetesError::Missing {
            program: "go".to_owned(),
            hint: format!(
                "install Go to build {name} {version}, or set {}_BIN",
                name.to_uppercase()
            ),
        }
    })?;
    std::fs::create_dir_all(&dir)
        .map_err(|e| KubernetesError::io(format!("cannot create {}", dir.display()), e))?;
    let scratch = tempfile::Builder::new()
        .prefix("build-")
        .tempdir_in(&dir)
        .map_err(|e| KubernetesError::io(format!("a build folder in {}", dir.display()), e))?;
    let started = std::time::Instant::now();
    eprintln!(
        "jaeger-harness: building {name} {version} into {}",
        target.display()
    );
    let shown = format!("go install {package}@{version}");
    run(
        go_command(&go)
            .args(["install", "-trimpath", &format!("{package}@{version}")])
            .env("GOBIN", scratch.path())
            .current_dir(scratch.path()),
        &shown,
    )?;
    std::fs::rename(scratch.path().join(name), &target)
        .map_err(|e| KubernetesError::io(format!("cannot move {name} into place"), e))?;
    eprintln!(
        "jaeger-harness: built {} in {:.0?}",
        target.display(),
        started.elapsed()
    );
    Ok(target)
}
