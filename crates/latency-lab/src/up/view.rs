//! How `up` shows the traces it receives: each printed once as a waterfall
//! and saved as Jaeger JSON, and a word when the bounded store drops some.

use std::collections::HashSet;
use std::path::PathBuf;

use otlp_receiver::{CollectedSpan, RunningReceiver};
use trace_view::terminal::Display;
use trace_view::{jaeger_json, waterfall, Trace, TraceId};

/// Prints traces as waterfalls and saves each as Jaeger JSON.
pub(super) struct TraceView {
    pub(super) dir: PathBuf,
    pub(super) display: Display,
    /// Trace ids already shown: each trace is printed once.
    pub(super) printed: HashSet<TraceId>,
    /// Trace ids saved as files: each is counted once.
    saved_ids: HashSet<TraceId>,
    pub(super) saved: usize,
    dropped_reported: u64,
    max_traces: u64,
}

impl TraceView {
    pub(super) fn new(dir: PathBuf, display: Display, max_traces: u64) -> Self {
        TraceView {
            dir,
            display,
            printed: HashSet::new(),
            saved_ids: HashSet::new(),
            saved: 0,
            dropped_reported: 0,
            max_traces,
        }
    }

    pub(super) fn show(&mut self, spans: &[CollectedSpan]) {
        let Some(trace) = Trace::from_collected(spans) else {
            return;
        };
        self.printed.insert(trace.trace_id);
        print!(
            "{}",
            waterfall::render(&trace, self.display.width, self.display.colour)
        );
        if let Some(path) = self.save_trace(&trace) {
            println!("saved as {}", path.display());
        }
        println!();
    }

    /// Saves a trace without printing it (e.g. the one the latency table
    /// names); its path, also when it was saved before.
    pub(super) fn save(&mut self, spans: &[CollectedSpan]) -> Option<PathBuf> {
        self.save_trace(&Trace::from_collected(spans)?)
    }

    fn save_trace(&mut self, trace: &Trace) -> Option<PathBuf> {
        match jaeger_json::save(&self.dir, trace) {
            Ok(path) => {
                if self.saved_ids.insert(trace.trace_id) {
                    self.saved += 1;
                }
                Some(path)
            }
            Err(e) => {
                eprintln!("warning: the trace was not saved: {e}");
                None
            }
        }
    }

    /// Says so when the bounded store has dropped more traces since last time.
    pub(super) fn report_dropped(&mut self, receiver: Option<&RunningReceiver>) {
        let Some(dropped) = receiver.map(|r| r.store().dropped_traces()) else {
            return;
        };
        if dropped > self.dropped_reported {
            self.dropped_reported = dropped;
            println!(
                "the trace store is full: {} dropped so far, the oldest first (it keeps {}; see --max-traces)",
                plural(dropped as usize, "trace"),
                self.max_traces
            );
        }
    }
}

pub(super) fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}
