//! How `up` shows the traces it receives: each printed as a waterfall and
//! saved as Jaeger JSON, printed again (and saved again) when spans of it
//! come late, and a word when the bounded store drops some.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;

use otlp_receiver::{CollectedSpan, RunningReceiver};
use trace_view::terminal::Display;
use trace_view::{jaeger_json, waterfall, Trace, TraceId};

use super::completion::Shape;
use super::tui::Update;

/// Prints traces as waterfalls and saves each as Jaeger JSON.
pub(super) struct TraceView {
    pub(super) dir: PathBuf,
    pub(super) display: Display,
    /// Trace ids already shown, with how many spans they had then: more
    /// spans later print the trace again.
    printed: HashMap<TraceId, usize>,
    /// `printed` in the order printed, to forget the oldest past a bound.
    printed_order: VecDeque<TraceId>,
    /// Traces summed up in a table (a load run's), never printed one by one.
    summarized: HashSet<TraceId>,
    /// Traces printed before they were whole (the longest wait ran out).
    pub(super) cut_short: usize,
    /// Traces printed again because spans of them came late.
    pub(super) amended: usize,
    /// Trace ids saved as files: each is counted once.
    saved_ids: HashSet<TraceId>,
    pub(super) saved: usize,
    dropped_reported: u64,
    max_traces: u64,
    /// The interactive screen, when `view` runs one: traces go there
    /// instead of being printed.
    screen: Option<std::sync::mpsc::Sender<Update>>,
}

impl TraceView {
    pub(super) fn new(dir: PathBuf, display: Display, max_traces: u64) -> Self {
        TraceView {
            dir,
            display,
            printed: HashMap::new(),
            printed_order: VecDeque::new(),
            summarized: HashSet::new(),
            cut_short: 0,
            amended: 0,
            saved_ids: HashSet::new(),
            saved: 0,
            dropped_reported: 0,
            max_traces,
            screen: None,
        }
    }

    /// Sends traces to the interactive screen instead of printing them.
    pub(super) fn send_to_screen(&mut self, screen: std::sync::mpsc::Sender<Update>) {
        self.screen = Some(screen);
    }

    /// Back to printing, once the interactive screen is closed.
    pub(super) fn into_printing(mut self) -> Self {
        self.screen = None;
        self
    }

    /// Whether an interactive screen owns the terminal (nothing may print).
    pub(super) fn on_screen(&self) -> bool {
        self.screen.is_some()
    }

    pub(super) fn show(&mut self, spans: &[CollectedSpan]) {
        self.show_followed(spans, None);
    }

    /// Whether `id` was printed, and with how many spans.
    pub(super) fn printed_spans(&self, id: TraceId) -> Option<usize> {
        self.printed.get(&id).copied()
    }

    /// Whether `id` is one of a load run's, summed up rather than printed.
    pub(super) fn is_summarized(&self, id: TraceId) -> bool {
        self.summarized.contains(&id)
    }

    /// Marks a load run's traces: summed up in its table, not printed.
    pub(super) fn summarize(&mut self, ids: impl IntoIterator<Item = TraceId>) {
        self.summarized.extend(ids);
    }

    /// Marks a trace as gone before it was printed (evicted from the store).
    pub(super) fn forget(&mut self, id: TraceId) {
        self.summarized.insert(id);
    }

    /// Prints and saves a trace; `shape` says, for a followed trace, what is
    /// still missing when it prints before it is whole. A trace printed
    /// before is printed again with a line that says what came late, and its
    /// file is rewritten.
    pub(super) fn show_followed(&mut self, spans: &[CollectedSpan], shape: Option<Shape>) {
        let Some(trace) = Trace::from_collected(spans) else {
            return;
        };
        let before = self.printed.insert(trace.trace_id, spans.len());
        match before {
            Some(earlier) => {
                self.amended += 1;
                if self.screen.is_none() {
                    println!(
                        "late spans: {} more of trace {} ({} in all now), printed again:",
                        spans.len().saturating_sub(earlier),
                        trace.trace_id,
                        spans.len()
                    );
                }
            }
            None => {
                self.printed_order.push_back(trace.trace_id);
                // Bounded like the store: the oldest printed are forgotten.
                while self.printed_order.len() > self.max_traces.max(1) as usize * 2 {
                    if let Some(old) = self.printed_order.pop_front() {
                        self.printed.remove(&old);
                    }
                }
            }
        }
        let note = shape.filter(|s| !s.is_whole()).map(|shape| {
            if before.is_none() {
                self.cut_short += 1;
            }
            not_whole(shape)
        });
        if let Some(screen) = self.screen.clone() {
            let _ = self.save_trace(&trace);
            let _ = screen.send(Update::Trace { trace, note });
            return;
        }
        print!(
            "{}",
            waterfall::render(&trace, self.display.width, self.display.colour)
        );
        if let Some(note) = note {
            println!("{note}");
        }
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
            let line = format!(
                "the trace store is full: {} dropped so far, the oldest first (it keeps {}; see --max-traces)",
                plural(dropped as usize, "trace"),
                self.max_traces
            );
            match &self.screen {
                Some(screen) => {
                    let _ = screen.send(Update::Status(line));
                }
                None => println!("{line}"),
            }
        }
    }
}

/// The line that says what a trace shown before it was whole lacks.
fn not_whole(shape: Shape) -> String {
    let mut missing = Vec::new();
    if !shape.has_root {
        missing.push("the root span".to_owned());
    }
    if shape.missing_parents > 0 {
        missing.push(format!(
            "{} its spans name",
            plural(shape.missing_parents, "parent span")
        ));
    }
    format!(
        "not whole yet: {} did not come within --trace-wait (if they come, the trace is printed again)",
        missing.join(" and ")
    )
}

impl super::follow::Sink for TraceView {
    fn shown_spans(&self, id: TraceId) -> Option<usize> {
        self.printed_spans(id)
    }

    fn ignores(&self, id: TraceId) -> bool {
        self.is_summarized(id)
    }

    fn show(&mut self, spans: &[CollectedSpan], shape: Shape) {
        self.show_followed(spans, Some(shape));
    }

    /// Counted as dropped by the store already.
    fn evicted(&mut self, id: TraceId) {
        self.forget(id);
    }
}

pub(super) fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}
