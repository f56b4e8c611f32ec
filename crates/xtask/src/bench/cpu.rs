//! CPU time from the kernel's per-process accounting.
//!
//! `/proc/PID/stat` gives utime + stime of every thread, live or exited,
//! in clock ticks of 10 ms: over a 5 s run at 300 requests a second the
//! aggregator uses some 40 ticks, so one tick more or less is 2.5 %, half
//! the budget being judged. The same time is kept in nanoseconds per
//! thread (`/proc/PID/task/TID/schedstat`, its first field: the runtime the
//! scheduler accounted, of which utime and stime are the split), so the
//! aggregator's CPU is the sum over its threads; the services' threads live
//! as long as they do, so none is missed between two readings.

use std::time::Duration;

use anyhow::Context as _;

/// The fields of `/proc/PID/stat` after the command name, counted from 3
/// (`state`) as proc(5) numbers them.
fn fields(pid: &str) -> anyhow::Result<Vec<u64>> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    // The command name may hold spaces and parentheses: cut at the last ')'.
    let rest = text
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .with_context(|| format!("unexpected {path}: {text}"))?;
    Ok(rest
        .split_whitespace()
        .map(|field| field.parse().unwrap_or(0))
        .collect())
}

/// Clock ticks per second, the unit of those fields.
pub fn ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .filter(|&ticks| ticks > 0)
        .unwrap_or(100)
}

fn ticks(fields: &[u64], first: usize, ticks_per_s: u64) -> Duration {
    // proc(5) field n is at index n - 3.
    let sum =
        fields.get(first - 3).copied().unwrap_or(0) + fields.get(first - 2).copied().unwrap_or(0);
    Duration::from_nanos(sum.saturating_mul(1_000_000_000 / ticks_per_s))
}

/// utime + stime of process `pid`, all its threads: in nanoseconds from
/// the threads' scheduler statistics where the kernel keeps them, else in
/// ticks from `/proc/PID/stat`.
pub fn process_cpu(pid: u32, ticks_per_s: u64) -> anyhow::Result<Duration> {
    match threads_runtime(pid) {
        Some(runtime) => Ok(runtime),
        None => Ok(ticks(&fields(&pid.to_string())?, 14, ticks_per_s)),
    }
}

/// The sum of the first field of `/proc/PID/task/*/schedstat`; `None`
/// when it cannot be read or reads zero (no scheduler statistics).
fn threads_runtime(pid: u32) -> Option<Duration> {
    let mut total: u64 = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let Ok(task) = task else { continue };
        // A thread that ended between the listing and the read is skipped.
        let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        total = total.saturating_add(text.split_whitespace().next()?.parse().ok()?);
    }
    (total > 0).then(|| Duration::from_nanos(total))
}

/// cutime + cstime of this process: the CPU of its children that exited
/// and were waited for. Around one load run (the services keep running),
/// its growth is the load generator's own CPU.
pub fn waited_children_cpu(ticks_per_s: u64) -> anyhow::Result<Duration> {
    Ok(ticks(&fields("self")?, 16, ticks_per_s))
}

/// utime + stime of this process: the benchmark's OTLP receiver, which
/// shares the cores with the services.
pub fn own_cpu(ticks_per_s: u64) -> anyhow::Result<Duration> {
    Ok(ticks(&fields("self")?, 14, ticks_per_s))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This process's own threads: the precise reading exists here and
    /// grows with work done.
    #[test]
    fn the_threads_runtime_counts_this_processs_work() {
        let pid = std::process::id();
        let before = threads_runtime(pid).expect("scheduler statistics on Linux");
        let mut x: u64 = 1;
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        let after = threads_runtime(pid).unwrap();
        assert!(after > before, "{before:?} -> {after:?}");
        assert!(process_cpu(pid, ticks_per_second()).unwrap() >= after);
    }
}
