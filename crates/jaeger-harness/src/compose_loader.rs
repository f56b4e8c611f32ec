//! Docker Compose's own loader for the static checks of `docker-compose.yml`: `compose-check`
//! (the Go program in `crates/jaeger-harness/compose-check/`, on
//! `github.com/compose-spec/compose-go/v2`) loads the file as `docker compose config` would —
//! schema, interpolation, anchors, profiles, references between services — where no Docker
//! engine runs. Built on demand into the cache, named by a hash of its sources.

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use crate::locate::{
    cache_root, find_on_path, is_executable_file, move_into_place, progress, run_step_with,
    BuildLock, RemoveOnDrop,
};
use crate::{for_tests, repo_file, HarnessError};

/// The program's sources, relative to the workspace root.
pub const COMPOSE_CHECK_DIR: &str = "crates/jaeger-harness/compose-check";
/// The compose-go release it is built with (go.mod pins it, go.sum its hash).
pub const COMPOSE_GO_VERSION: &str = "v2.16.2";

/// The files whose content names the cached build.
const SOURCES: &[&str] = &["go.mod", "go.sum", "main.go"];

static BUILD_MUTEX: Mutex<()> = Mutex::new(());

/// What the loader made of a compose file.
#[derive(Debug, Clone)]
pub enum Loaded {
    /// Accepted: `{"services": {name: {"profiles", "environment", "depends_on"}}}` for the
    /// services the profiles enable, environment interpolated.
    Accepted(serde_json::Value),
    /// Refused, with the loader's message.
    Refused(String),
}

/// The `compose-check` binary, built with `go build` (about 15 s with Go's caches warm) when
/// the cache has none for the current sources.
pub fn compose_loader() -> Result<PathBuf, HarnessError> {
    let source = repo_file(COMPOSE_CHECK_DIR);
    let target = cache_root()?
        .join(format!(
            "compose-check-{COMPOSE_GO_VERSION}-{:016x}",
            sources_hash(&source)?
        ))
        .join("compose-check");
    if is_executable_file(&target) {
        return Ok(target);
    }
    let _in_process = BUILD_MUTEX
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if is_executable_file(&target) {
        return Ok(target);
    }
    let go = find_on_path("go", std::env::var_os("PATH").as_deref())
        .ok_or(HarnessError::GoNotFound { off_path: None })?;
    let dir = target.parent().expect("the cached binary has a folder");
    fs::create_dir_all(dir)
        .map_err(|e| HarnessError::io(format!("cannot create {}", dir.display()), e))?;
    let Some(_lock) = BuildLock::acquire(dir, &target)? else {
        return Ok(target);
    };
    let started = std::time::Instant::now();
    progress(format!(
        "building compose-check (compose-go {COMPOSE_GO_VERSION}) into {}",
        target.display()
    ));
    let tmp = RemoveOnDrop(dir.join(format!(".compose-check.{}.tmp", std::process::id())));
    let tmp_str = tmp.0.to_string_lossy().into_owned();
    // -mod=readonly: go.sum must already hold every module's hash; nothing is added unchecked.
    run_step_with(
        &go,
        &source,
        &["build", "-trimpath", "-o", &tmp_str, "."],
        &[("GOFLAGS", "-mod=readonly -buildvcs=false")],
    )?;
    move_into_place(&tmp.0, &target, started)?;
    Ok(target)
}

/// [`compose_loader`] for a test: `None` (with a skip line) when it cannot be had, a panic
/// under `CI=true`.
pub fn compose_loader_for_tests() -> Option<PathBuf> {
    for_tests(
        compose_loader().map_err(|e| e.to_string()),
        "no compose-check (Docker Compose's loader) could be built",
    )
}

/// Loads `file` with `profiles` enabled, in an environment of exactly `env` (so the caller's
/// shell cannot change what `${VAR:-default}` becomes).
pub fn load_compose(
    loader: &Path,
    file: &Path,
    profiles: &[&str],
    env: &[(&str, &str)],
) -> Result<Loaded, HarnessError> {
    let output = Command::new(loader)
        .arg(file)
        .args(profiles)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .map_err(|e| HarnessError::io(format!("cannot run {}", loader.display()), e))?;
    if !output.status.success() {
        return Ok(Loaded::Refused(
            String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        ));
    }
    serde_json::from_slice(&output.stdout)
        .map(Loaded::Accepted)
        .map_err(|e| HarnessError::Config {
            path: file.to_path_buf(),
            reason: format!("compose-check printed no JSON: {e}"),
        })
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
