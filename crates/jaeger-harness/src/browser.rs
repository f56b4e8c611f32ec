//! A real browser for tests: Debian's `chromium`, headless, to check that what the lab writes
//! for a browser (a flame graph's SVG and its script) opens and runs there.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{find_program, for_tests};

/// What to install when the browser is missing.
const INSTALL_HINT: &str =
    "install Debian's chromium (`apt-get install chromium`), or set CHROMIUM_BIN";

/// `CHROMIUM_BIN` when set, else `chromium` on `PATH`.
pub fn chromium() -> Result<PathBuf, String> {
    find_program("CHROMIUM_BIN", "chromium", INSTALL_HINT)
}

/// [`chromium`] for a test: under `CI=true` a missing browser PANICS (the test fails);
/// elsewhere this prints [`crate::skipped_line`] and returns `None`.
pub fn chromium_for_tests() -> Option<PathBuf> {
    for_tests(chromium(), "no browser")
}

/// Opens `file` in headless `chromium`, lets its scripts run, and returns the document as the
/// browser then holds it (`--dump-dom`). A browser that has not answered within `timeout` is
/// killed and that is an error, so a test cannot hang on it.
pub fn dump_dom(chromium: &Path, file: &Path, timeout: Duration) -> Result<String, String> {
    // A profile of its own: a user's running browser, or another test's, cannot interfere.
    let profile = tempfile::tempdir().map_err(|e| format!("a profile folder: {e}"))?;
    let file = file
        .canonicalize()
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let out = tempfile::NamedTempFile::new().map_err(|e| format!("an output file: {e}"))?;
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            // Root in a container has no user namespace for the sandbox.
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("file://{}", file.display()))
        .stdin(Stdio::null())
        .stdout(out.reopen().map_err(|e| e.to_string())?)
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", chromium.display()))?;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("chromium did not answer within {timeout:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if !status.success() {
        return Err(format!("chromium exited with {status}"));
    }
    std::fs::read_to_string(out.path()).map_err(|e| e.to_string())
}
