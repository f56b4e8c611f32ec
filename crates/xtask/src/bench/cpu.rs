//! CPU time from the kernel's per-process accounting (`/proc/PID/stat`):
//! utime + stime cover every thread of the process, live or exited.

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

/// utime + stime of process `pid`, all its threads.
pub fn process_cpu(pid: u32, ticks_per_s: u64) -> anyhow::Result<Duration> {
    Ok(ticks(&fields(&pid.to_string())?, 14, ticks_per_s))
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
