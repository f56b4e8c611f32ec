//! A flame graph of a group's critical path: each frame is an operation,
//! its width the time it held the path (µs, summed over the group's
//! traces), its children what it waited on — CRISP's top-down view.
//! Drawn by `inferno`, the Rust port of flamegraph.pl.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use inferno::flamegraph::{self, Options};

use super::attribute::Attribution;

/// Writes `DIR/NAME.svg` from the folded critical-path stacks of `traces`.
pub fn write(
    dir: &Path,
    name: &str,
    title: &str,
    traces: &[&Attribution],
) -> anyhow::Result<PathBuf> {
    let lines = folded(traces);
    let path = dir.join(format!("{name}.svg"));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let file =
        std::fs::File::create(&path).with_context(|| format!("cannot write {}", path.display()))?;
    let mut options = Options::default();
    options.title = title.to_owned();
    options.count_name = "µs on the critical path".to_owned();
    flamegraph::from_lines(
        &mut options,
        lines.iter().map(String::as_str),
        std::io::BufWriter::new(file),
    )
    .with_context(|| format!("cannot draw {}", path.display()))?;
    Ok(path)
}

/// `root;child;grandchild µs`, one line per stack, summed over `traces`.
pub fn folded(traces: &[&Attribution]) -> Vec<String> {
    let mut stacks: BTreeMap<&str, u64> = BTreeMap::new();
    for a in traces {
        for (stack, us) in &a.critical_stacks {
            *stacks.entry(stack.as_str()).or_insert(0) += us;
        }
    }
    stacks
        .into_iter()
        .map(|(stack, us)| format!("{stack} {us}"))
        .collect()
}
