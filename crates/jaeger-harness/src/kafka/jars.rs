//! Java and the Kafka jars.
//!
//! The jars come from Maven Central through `mvn dependency:copy-dependencies` on the
//! repository's `deploy/kafka/pom.xml`, once, into the cache (as the Jaeger binary is built
//! once): a developer running the test gets exactly what CI gets, with nothing to install by
//! hand but Java and Maven. The copy goes to a scratch folder that is renamed into place, so a
//! half-copied folder is never used and two processes copying at once both end with a whole
//! one (the loser's copy is dropped).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::{KafkaError, KAFKA_POM, KAFKA_VERSION};
use crate::{cache_root, find_program, for_tests, repo_file, HarnessError};

/// The oldest Java the Kafka 4 broker runs on.
const MIN_JAVA: u32 = 17;
/// What to install when Java or Maven is missing.
const INSTALL_HINT: &str = "install Java >= 17 and Maven (Debian/Ubuntu: `apt-get install \
                            openjdk-17-jre-headless maven`), or set KAFKA_LIBS to a folder of \
                            the Kafka 4.1.1 jars";

/// Serialises copies within one process (tests of one binary run on parallel threads).
static COPY_MUTEX: Mutex<()> = Mutex::new(());

/// What it takes to run Kafka: a `java` and a folder of jars (the broker, its tools, logging).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaTools {
    /// The `java` launcher.
    pub java: PathBuf,
    /// The folder holding the jars (the class path is `<libs>/*`).
    pub libs: PathBuf,
}

impl KafkaTools {
    /// A `java` command with the jars on the class path and `log4j2` as its logging config.
    pub(crate) fn java_command(&self, log4j2: &Path) -> Command {
        let mut command = Command::new(&self.java);
        command
            .arg("-cp")
            .arg(self.libs.join("*"))
            .arg(format!("-Dlog4j2.configurationFile={}", log4j2.display()))
            .stdin(Stdio::null());
        command
    }
}

/// Java (`$JAVA_HOME/bin/java`, else `java` on `PATH`, at least 17) and the jars
/// (`KAFKA_LIBS`, else the cache, else copied by `mvn` into the cache). The error says what is
/// missing and what to install.
pub fn kafka_tools() -> Result<KafkaTools, String> {
    let java = find_java()?;
    check_java_version(&java)?;
    let libs = match std::env::var_os("KAFKA_LIBS").filter(|v| !v.is_empty()) {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if !has_jars(&dir) {
                return Err(format!("KAFKA_LIBS={} holds no jars", dir.display()));
            }
            dir
        }
        None => {
            let (pom, libs) = cached_libs().map_err(|e| e.to_string())?;
            if !has_jars(&libs) {
                let mvn = find_program("MVN_BIN", "mvn", INSTALL_HINT)?;
                copy_jars_once(&mvn, &pom, &libs).map_err(|e| e.to_string())?;
            }
            libs
        }
    };
    Ok(KafkaTools { java, libs })
}

/// [`kafka_tools`] for a test: under `CI=true` a missing piece PANICS (the test fails);
/// elsewhere this prints [`crate::skipped_line`] and returns `None`.
pub fn kafka_for_tests() -> Option<KafkaTools> {
    for_tests(kafka_tools(), "Kafka cannot be run")
}

fn find_java() -> Result<PathBuf, String> {
    if let Some(home) = std::env::var_os("JAVA_HOME").filter(|v| !v.is_empty()) {
        let java = PathBuf::from(home).join("bin").join("java");
        if java.is_file() {
            return Ok(java);
        }
    }
    find_program("JAVA_BIN", "java", INSTALL_HINT)
}

/// The major version in `java -version`'s first line: `openjdk version "17.0.15" ...` is 17,
/// `java version "1.8.0_402"` is 8.
fn parse_java_major(text: &str) -> Option<u32> {
    let quoted = text.lines().next()?.split('"').nth(1)?;
    let mut parts = quoted.split(['.', '-', '+', '_']);
    let first: u32 = parts.next()?.parse().ok()?;
    if first == 1 {
        parts.next()?.parse().ok()
    } else {
        Some(first)
    }
}

fn check_java_version(java: &Path) -> Result<(), String> {
    let output = Command::new(java)
        .arg("-version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `{} -version`: {e}", java.display()))?;
    // `java -version` writes to stderr.
    let text = String::from_utf8_lossy(&output.stderr);
    match parse_java_major(&text) {
        Some(major) if major < MIN_JAVA => Err(format!(
            "`{}` is Java {major}, Kafka {KAFKA_VERSION} needs Java >= {MIN_JAVA}: {INSTALL_HINT}",
            java.display()
        )),
        // Unparsable: let the broker itself decide.
        _ => Ok(()),
    }
}

fn has_jars(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".jar"))
    })
}

/// FNV-1a of the POM: the cache folder changes when the POM does, so an edited jar list is
/// copied afresh instead of running the old one.
fn fingerprint(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |hash, &byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

/// The POM and `<cache>/kafka-4.1.1-<fingerprint of the POM>/libs` (which may not exist yet).
fn cached_libs() -> Result<(PathBuf, PathBuf), HarnessError> {
    let pom = repo_file(KAFKA_POM);
    let pom_bytes = fs::read(&pom)
        .map_err(|e| HarnessError::io(format!("cannot read {}", pom.display()), e))?;
    let dir = cache_root()?.join(format!(
        "kafka-{KAFKA_VERSION}-{:08x}",
        fingerprint(&pom_bytes)
    ));
    Ok((pom, dir.join("libs")))
}

/// Copies the jars into `libs` unless another thread of this process did meanwhile.
fn copy_jars_once(mvn: &Path, pom: &Path, libs: &Path) -> Result<(), HarnessError> {
    let _in_process = COPY_MUTEX
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if has_jars(libs) {
        return Ok(());
    }
    copy_jars(mvn, pom, libs)
}

fn copy_jars(mvn: &Path, pom: &Path, libs: &Path) -> Result<(), HarnessError> {
    let dir = libs
        .parent()
        .ok_or_else(|| HarnessError::io("cache path has no parent", io::ErrorKind::Other.into()))?;
    fs::create_dir_all(dir)
        .map_err(|e| HarnessError::io(format!("cannot create {}", dir.display()), e))?;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let scratch = dir.join(format!(".libs.{}.{nanos}.tmp", std::process::id()));
    let started = Instant::now();
    eprintln!(
        "jaeger-harness: copying the Kafka {KAFKA_VERSION} jars with Maven into {}",
        libs.display()
    );
    let mut output_dir = std::ffi::OsString::from("-DoutputDirectory=");
    output_dir.push(&scratch);
    let status = Command::new(mvn)
        .args(["-q", "-B", "-Dstyle.color=never", "-f"])
        .arg(pom)
        .arg("dependency:copy-dependencies")
        .arg(output_dir)
        .stdin(Stdio::null())
        // The harness's own callers may read stdout: Maven's output goes to stderr.
        .stdout(Stdio::from(io::stderr()))
        .stderr(Stdio::inherit())
        .status()
        .map_err(|e| HarnessError::io(format!("cannot run {}", mvn.display()), e))?;
    if !status.success() || !has_jars(&scratch) {
        let _ = fs::remove_dir_all(&scratch);
        return Err(KafkaError::JarsNotCopied {
            command: format!(
                "mvn -q -B -f {} dependency:copy-dependencies",
                pom.display()
            ),
            status,
        }
        .into());
    }
    // rename(2) is atomic; it fails when another process put a whole folder there first.
    if let Err(e) = fs::rename(&scratch, libs) {
        let _ = fs::remove_dir_all(&scratch);
        if !has_jars(libs) {
            return Err(HarnessError::io(
                format!("cannot move the jars to {}", libs.display()),
                e,
            ));
        }
    }
    eprintln!(
        "jaeger-harness: copied the Kafka jars in {:.0?}",
        started.elapsed()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_versions_parse() {
        let openjdk = "openjdk version \"17.0.15\" 2025-04-15\nOpenJDK Runtime Environment";
        assert_eq!(parse_java_major(openjdk), Some(17));
        assert_eq!(
            parse_java_major("openjdk version \"21\" 2023-09-19"),
            Some(21)
        );
        assert_eq!(parse_java_major("java version \"1.8.0_402\""), Some(8));
        assert_eq!(parse_java_major("openjdk version \"11.0.2-ea\""), Some(11));
        assert_eq!(parse_java_major("no version here"), None);
    }

    #[test]
    fn the_fingerprint_follows_the_pom() {
        assert_eq!(fingerprint(b""), 0x811c_9dc5);
        assert_ne!(
            fingerprint(b"<version>4.1.1"),
            fingerprint(b"<version>4.1.2")
        );
    }
}
