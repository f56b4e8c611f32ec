//! Finding or building the Jaeger binary.

use std::ffi::{OsStr, OsString};
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{HarnessError, JAEGER_MODULE, JAEGER_MODULE_VERSION, JAEGER_RELEASE, MIN_GO_VERSION};

/// Name of the scratch Go module the binary is built in.
const SCRATCH_MODULE: &str = "latency-lab-jaeger-build";
/// A build lock older than this is taken to be left over from a killed build.
const STALE_LOCK_AFTER: Duration = Duration::from_secs(30 * 60);

/// Serialises builds within one process (tests of one binary run on parallel threads).
static BUILD_MUTEX: Mutex<()> = Mutex::new(());

pub(crate) fn progress(message: impl AsRef<str>) {
    eprintln!("jaeger-harness: {}", message.as_ref());
}

fn non_empty_env(name: &str) -> Option<std::ffi::OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}

/// The cache root: `$LATENCY_LAB_CACHE`, else `${XDG_CACHE_HOME:-$HOME/.cache}/latency-lab`.
pub fn cache_root() -> Result<PathBuf, HarnessError> {
    if let Some(dir) = non_empty_env("LATENCY_LAB_CACHE") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = non_empty_env("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(dir).join("latency-lab"));
    }
    if let Some(home) = non_empty_env("HOME") {
        return Ok(PathBuf::from(home).join(".cache").join("latency-lab"));
    }
    Err(HarnessError::NoCacheDir)
}

/// Where the built binary lives: `<cache root>/jaeger-v1.76.0/jaeger`.
pub fn cached_binary_path() -> Result<PathBuf, HarnessError> {
    Ok(cached_binary_under(&cache_root()?))
}

fn cached_binary_under(cache_root: &Path) -> PathBuf {
    cache_root
        .join(format!("jaeger-{JAEGER_MODULE_VERSION}"))
        .join("jaeger")
}

/// Where Go's own install instructions put the toolchain; a `go` there but
/// not on `PATH` (a non-login shell) gets a hint instead of "install Go".
const USUAL_GO_DIRS: &[&str] = &["/usr/local/go/bin"];

/// Everything locating Jaeger depends on, so that the decision — and the
/// line a test prints when it is skipped — can be checked with any `PATH`
/// and environment, without uninstalling Go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocateEnv {
    /// `JAEGER_BIN`, when set and non-empty.
    pub jaeger_bin: Option<OsString>,
    /// `PATH`.
    pub path: Option<OsString>,
    /// [`cache_root`], or `None` when no cache directory can be chosen.
    pub cache_root: Option<PathBuf>,
    /// Folders where a `go` off `PATH` is worth a hint.
    pub usual_go_dirs: Vec<PathBuf>,
}

impl LocateEnv {
    /// This process's environment.
    pub fn of_this_process() -> LocateEnv {
        LocateEnv {
            jaeger_bin: non_empty_env("JAEGER_BIN"),
            path: std::env::var_os("PATH"),
            cache_root: cache_root().ok(),
            usual_go_dirs: USUAL_GO_DIRS.iter().map(PathBuf::from).collect(),
        }
    }
}

pub(crate) fn is_executable_file(path: &Path) -> bool {
    match fs::metadata(path) {
        Ok(meta) => meta.is_file() && is_executable(&meta),
        Err(_) => false,
    }
}

#[cfg(unix)]
fn is_executable(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_meta: &fs::Metadata) -> bool {
    true
}

/// Looks a program up on the given `PATH`.
pub(crate) fn find_on_path(program: &str, path: Option<&OsStr>) -> Option<PathBuf> {
    std::env::split_paths(path?)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable_file(candidate))
}

/// Checks `JAEGER_BIN`: an existing executable file (a bare name is looked up on `PATH`).
fn validate_jaeger_bin(value: &OsStr, path: Option<&OsStr>) -> Result<PathBuf, HarnessError> {
    let given = PathBuf::from(value);
    let invalid = |reason: &str| HarnessError::InvalidJaegerBin {
        path: given.clone(),
        reason: reason.to_owned(),
    };
    let candidate = if given.components().count() == 1 && !given.exists() {
        find_on_path(&given.to_string_lossy(), path)
            .ok_or_else(|| invalid("does not exist (neither as a path nor on PATH)"))?
    } else {
        given.clone()
    };
    let meta = fs::metadata(&candidate).map_err(|e| invalid(&format!("cannot be read: {e}")))?;
    if !meta.is_file() {
        return Err(invalid("is not a file"));
    }
    if !is_executable(&meta) {
        return Err(invalid("is not executable"));
    }
    // Absolute, because JaegerProcess runs the binary from a temporary directory.
    fs::canonicalize(&candidate).map_err(|e| invalid(&format!("cannot be resolved: {e}")))
}

/// The path of a Jaeger v2 binary, building it when needed.
///
/// 1. `JAEGER_BIN` set (non-empty): it must be an executable file; its absolute path is returned.
/// 2. The cached binary [`cached_binary_path`] if it exists.
/// 3. Otherwise the binary is built with `go` from `PATH` into a scratch module under the cache
///    and renamed into place atomically, so a half-built binary is never seen and a concurrent
///    build cannot corrupt it. Progress goes to stderr. This takes minutes the first time.
pub fn jaeger_binary() -> Result<PathBuf, HarnessError> {
    jaeger_binary_in(&LocateEnv::of_this_process())
}

/// [`jaeger_binary`] in the given environment.
pub fn jaeger_binary_in(env: &LocateEnv) -> Result<PathBuf, HarnessError> {
    let path = env.path.as_deref();
    if let Some(value) = &env.jaeger_bin {
        return validate_jaeger_bin(value, path);
    }
    let target = cached_binary_under(env.cache_root.as_deref().ok_or(HarnessError::NoCacheDir)?);
    if is_executable_file(&target) {
        return Ok(target);
    }
    let _in_process = BUILD_MUTEX
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if is_executable_file(&target) {
        return Ok(target);
    }
    let go = find_on_path("go", path).ok_or_else(|| HarnessError::GoNotFound {
        off_path: env
            .usual_go_dirs
            .iter()
            .find(|dir| is_executable_file(&dir.join("go")))
            .cloned(),
    })?;
    check_go_version(&go)?;
    build(&go, &target)?;
    Ok(target)
}

/// Parses `go1.24.6`, `go1.25rc1`, `go1.26` into (major, minor, patch).
fn parse_go_version(text: &str) -> Option<(u32, u32, u32)> {
    let rest = text.trim().strip_prefix("go")?;
    let mut numbers = rest.split('.').map(|part| {
        let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<u32>().ok()
    });
    let major = numbers.next()??;
    let minor = numbers.next().flatten().unwrap_or(0);
    let patch = numbers.next().flatten().unwrap_or(0);
    Some((major, minor, patch))
}

pub(crate) fn check_go_version(go: &Path) -> Result<(), HarnessError> {
    let output = go_command(go)
        .args(["env", "GOVERSION"])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| HarnessError::io(format!("cannot run `{} env GOVERSION`", go.display()), e))?;
    let found = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let required = parse_go_version(&format!("go{MIN_GO_VERSION}"));
    match (parse_go_version(&found), required) {
        (Some(have), Some(need)) if have < need => Err(HarnessError::GoTooOld {
            go: go.to_path_buf(),
            found,
        }),
        // Unparsable (e.g. a development build): let the build itself decide.
        _ => Ok(()),
    }
}

/// A `go` command with the settings every build step uses.
pub(crate) fn go_command(go: &Path) -> Command {
    let mut command = Command::new(go);
    command
        .env("CGO_ENABLED", "0")
        // Never download another toolchain; fail clearly instead.
        .env("GOTOOLCHAIN", "local")
        // A go.work above the cache directory must not take part.
        .env("GOWORK", "off")
        // The scratch module may sit inside some checkout; no VCS stamping.
        .env("GOFLAGS", "-buildvcs=false")
        .stdin(Stdio::null());
    command
}

fn run_step(go: &Path, dir: &Path, args: &[&str]) -> Result<(), HarnessError> {
    run_step_with(go, dir, args, &[])
}

/// [`run_step`] with extra environment variables (they win over [`go_command`]'s).
pub(crate) fn run_step_with(
    go: &Path,
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<(), HarnessError> {
    let shown = format!("go {}", args.join(" "));
    progress(format!("running `{shown}`"));
    let status = go_command(go)
        .envs(env.iter().copied())
        .args(args)
        .current_dir(dir)
        // Only the binary's path may go to stdout: the build's own output goes to stderr.
        .stdout(Stdio::from(io::stderr()))
        .stderr(Stdio::inherit())
        .status()
        .map_err(|e| HarnessError::io(format!("cannot run `{shown}`"), e))?;
    if status.success() {
        Ok(())
    } else {
        Err(HarnessError::CommandFailed {
            command: shown,
            status,
        })
    }
}

/// Removes a temporary output file unless it was renamed into place.
pub(crate) struct RemoveOnDrop(pub(crate) PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

fn build(go: &Path, target: &Path) -> Result<(), HarnessError> {
    let dir = target
        .parent()
        .ok_or_else(|| HarnessError::io("cache path has no parent", io::ErrorKind::Other.into()))?;
    fs::create_dir_all(dir)
        .map_err(|e| HarnessError::io(format!("cannot create {}", dir.display()), e))?;

    let Some(_lock) = BuildLock::acquire(dir, target)? else {
        // Another process finished the build while this one waited.
        return Ok(());
    };

    clean_leftovers(dir);
    let started = std::time::Instant::now();
    progress(format!(
        "building Jaeger {JAEGER_RELEASE} ({JAEGER_MODULE}@{JAEGER_MODULE_VERSION}) into {}; \
         the first build downloads modules and compiles for a few minutes",
        target.display()
    ));
    let scratch = tempfile::Builder::new()
        .prefix("build-")
        .tempdir_in(dir)
        .map_err(|e| {
            HarnessError::io(
                format!("cannot create a build directory in {}", dir.display()),
                e,
            )
        })?;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp_binary = RemoveOnDrop(dir.join(format!(".jaeger.{}.{nanos}.tmp", std::process::id())));
    let tool = format!("{JAEGER_MODULE}/cmd/jaeger");
    let ldflags = format!(
        "-ldflags=-X {JAEGER_MODULE}/internal/version.latestVersion={JAEGER_MODULE_VERSION}"
    );
    let tmp_str = tmp_binary.0.to_string_lossy().into_owned();

    run_step(go, scratch.path(), &["mod", "init", SCRATCH_MODULE])?;
    run_step(
        go,
        scratch.path(),
        &["get", "-tool", &format!("{tool}@{JAEGER_MODULE_VERSION}")],
    )?;
    run_step(
        go,
        scratch.path(),
        &["build", "-trimpath", &ldflags, "-o", &tmp_str, &tool],
    )?;
    move_into_place(&tmp_binary.0, target, started)
}

/// Moves a freshly built binary to `target`, once it is there.
pub(crate) fn move_into_place(
    built: &Path,
    target: &Path,
    started: std::time::Instant,
) -> Result<(), HarnessError> {
    if !is_executable_file(built) {
        return Err(HarnessError::io(
            format!("`go build` left no executable at {}", built.display()),
            io::ErrorKind::NotFound.into(),
        ));
    }
    // rename(2) within one directory is atomic: readers see the old state or the whole binary.
    fs::rename(built, target).map_err(|e| {
        HarnessError::io(format!("cannot move the binary to {}", target.display()), e)
    })?;
    progress(format!(
        "built {} in {:.0?}",
        target.display(),
        started.elapsed()
    ));
    Ok(())
}

/// Removes scratch directories and partial binaries of builds that were killed. Only called
/// while holding the build lock, so no other build is using them.
fn clean_leftovers(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let path = entry.path();
        if name.starts_with("build-") && path.is_dir() {
            let _ = fs::remove_dir_all(&path);
        } else if name.starts_with(".jaeger.") && name.ends_with(".tmp") {
            let _ = fs::remove_file(&path);
        }
    }
}

/// A cross-process build lock: a file created with `create_new`, removed on drop.
pub(crate) struct BuildLock(PathBuf);

impl BuildLock {
    /// `Ok(None)` when the target appeared while waiting for another build.
    pub(crate) fn acquire(dir: &Path, target: &Path) -> Result<Option<BuildLock>, HarnessError> {
        let path = dir.join(".build.lock");
        let mut told = false;
        loop {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    let _ = writeln!(file, "{}", std::process::id());
                    let lock = BuildLock(path);
                    // The build this process waited for may have just finished.
                    if is_executable_file(target) {
                        return Ok(None);
                    }
                    return Ok(Some(lock));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if is_executable_file(target) {
                        return Ok(None);
                    }
                    if lock_is_stale(&path) {
                        progress(format!("removing stale build lock {}", path.display()));
                        let _ = fs::remove_file(&path);
                        continue;
                    }
                    if !told {
                        progress(format!(
                            "another process is building (lock {}); waiting",
                            path.display()
                        ));
                        told = true;
                    }
                    std::thread::sleep(Duration::from_secs(2));
                }
                Err(e) => {
                    return Err(HarnessError::io(
                        format!("cannot create {}", path.display()),
                        e,
                    ))
                }
            }
        }
    }
}

impl Drop for BuildLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

fn lock_is_stale(path: &Path) -> bool {
    // On Linux a lock whose owner process is gone is stale at once.
    if Path::new("/proc/self").exists() {
        if let Ok(text) = fs::read_to_string(path) {
            if let Ok(pid) = text.trim().parse::<u32>() {
                if !Path::new("/proc").join(pid.to_string()).exists() {
                    return true;
                }
            }
        }
    }
    fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|modified| modified.elapsed().ok())
        .is_some_and(|age| age > STALE_LOCK_AFTER)
}

/// Whether tests run under CI (`CI=true` or `CI=1`): then a missing binary is a failure.
pub fn running_in_ci() -> bool {
    std::env::var("CI")
        .map(|v| v.eq_ignore_ascii_case("true") || v == "1")
        .unwrap_or(false)
}

/// Whether a Jaeger binary can be had, and why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    /// The binary's path.
    Available(PathBuf),
    /// Why there is none.
    Unavailable(String),
}

/// [`jaeger_binary`] as an [`Availability`], evaluated once per process.
pub fn availability() -> Availability {
    static ONCE: OnceLock<Availability> = OnceLock::new();
    ONCE.get_or_init(|| match jaeger_binary() {
        Ok(path) => Availability::Available(path),
        Err(e) => Availability::Unavailable(e.to_string()),
    })
    .clone()
}

/// The one line a test prints when it cannot run for want of Jaeger: the
/// reason says what is missing and what to install or set.
pub fn skipped_line(reason: &str) -> String {
    format!("SKIPPED (not run): {reason} (under CI=true this test fails instead)")
}

/// The Jaeger binary for a test, or `None` when the test should be skipped.
///
/// Without a binary: under `CI=true` this PANICS with the reason, so the test fails instead of
/// passing silently; elsewhere it prints [`skipped_line`] to stderr and returns `None`.
pub fn jaeger_for_tests() -> Option<PathBuf> {
    match availability() {
        Availability::Available(path) => Some(path),
        Availability::Unavailable(reason) => {
            if running_in_ci() {
                panic!("CI=true and no Jaeger binary could be had: {reason}");
            }
            eprintln!("{}", skipped_line(&reason));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_versions_parse() {
        assert_eq!(parse_go_version("go1.24.6"), Some((1, 24, 6)));
        assert_eq!(parse_go_version("go1.26"), Some((1, 26, 0)));
        assert_eq!(parse_go_version("go1.25rc1"), Some((1, 25, 0)));
        assert_eq!(parse_go_version("devel go1.27-abc"), None);
        assert!(parse_go_version("go1.24.5") < parse_go_version("go1.24.6"));
        assert!(parse_go_version("go1.25.0") > parse_go_version("go1.24.6"));
    }

    /// A folder to stand for `PATH`, and an empty cache: nothing to find.
    fn bare_env() -> (tempfile::TempDir, LocateEnv) {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("bin")).unwrap();
        fs::create_dir_all(dir.path().join("cache")).unwrap();
        let env = LocateEnv {
            jaeger_bin: None,
            path: Some(dir.path().join("bin").into_os_string()),
            cache_root: Some(dir.path().join("cache")),
            usual_go_dirs: Vec::new(),
        };
        (dir, env)
    }

    #[cfg(unix)]
    fn write_script(path: &Path, body: &str) {
        use std::os::unix::fs::PermissionsExt;
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn skipped(env: &LocateEnv) -> String {
        let reason = jaeger_binary_in(env).unwrap_err().to_string();
        let line = skipped_line(&reason);
        assert_eq!(line.lines().count(), 1, "{line}");
        assert!(line.starts_with("SKIPPED (not run): "), "{line}");
        line
    }

    #[test]
    fn without_go_the_line_says_what_to_install_or_set() {
        let (_dir, env) = bare_env();
        let line = skipped(&env);
        for part in [
            "`go` is not on PATH",
            &format!("install Go >= {MIN_GO_VERSION}"),
            "set JAEGER_BIN",
        ] {
            assert!(line.contains(part), "{part:?} in {line}");
        }
        assert!(!line.contains("add "), "{line}");
    }

    #[cfg(unix)]
    #[test]
    fn a_go_off_path_is_pointed_at() {
        let (dir, mut env) = bare_env();
        let usual = dir.path().join("go/bin");
        write_script(&usual.join("go"), "exit 1");
        env.usual_go_dirs = vec![usual.clone()];
        let line = skipped(&env);
        assert!(
            line.contains(&format!("add {} to PATH", usual.display())),
            "{line}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_go_too_old_is_named_with_the_version_needed() {
        let (dir, env) = bare_env();
        write_script(&dir.path().join("bin/go"), "echo go1.22.1");
        let line = skipped(&env);
        for part in [
            "go1.22.1",
            &format!("needs Go >= {MIN_GO_VERSION}"),
            "install a newer Go",
            "set JAEGER_BIN",
        ] {
            assert!(line.contains(part), "{part:?} in {line}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn jaeger_bin_and_the_cache_come_before_go() {
        let (dir, mut env) = bare_env();
        let cached = cached_binary_under(env.cache_root.as_deref().unwrap());
        write_script(&cached, "exit 0");
        assert_eq!(jaeger_binary_in(&env).unwrap(), cached);
        let given = dir.path().join("my-jaeger");
        write_script(&given, "exit 0");
        env.jaeger_bin = Some(given.clone().into_os_string());
        assert_eq!(
            jaeger_binary_in(&env).unwrap(),
            fs::canonicalize(&given).unwrap()
        );
        env.jaeger_bin = Some(dir.path().join("nowhere").into_os_string());
        let line = skipped(&env);
        assert!(line.contains("JAEGER_BIN="), "{line}");
    }

    #[test]
    fn no_cache_folder_says_which_variables() {
        let (_dir, mut env) = bare_env();
        env.cache_root = None;
        assert!(skipped(&env).contains("set LATENCY_LAB_CACHE"));
    }
}
