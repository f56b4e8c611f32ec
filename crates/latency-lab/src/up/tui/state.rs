//! What the interactive view holds and how keys change it: the traces
//! received, the list's order and filters, the selection, the screen. Pure
//! (no terminal), so the keys are tested without one.

use std::collections::BTreeSet;

use trace_view::{analysis, Trace, TraceId};

/// One received trace, as the list shows it.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub trace: Trace,
    /// Arrival order, from 1: the list's `#`.
    pub number: usize,
    /// `service span-name` of the root (the first root when several).
    pub root: String,
    pub services: BTreeSet<String>,
    pub duration_us: u64,
    /// Spans marked as error.
    pub errors: usize,
    /// What the trace still lacks, when it was shown before it was whole.
    pub note: Option<String>,
}

impl Entry {
    fn new(trace: Trace, number: usize, note: Option<String>) -> Self {
        let a = analysis::analyse(&trace);
        let root = a
            .root
            .map(|r| format!("{} {}", trace.spans[r].service, trace.spans[r].name))
            .unwrap_or_default();
        let (t0, t1) = trace.time_range();
        Entry {
            root,
            services: trace.spans.iter().map(|s| s.service.clone()).collect(),
            duration_us: t1.saturating_sub(t0),
            errors: trace.spans.iter().filter(|s| s.is_error()).count(),
            number,
            trace,
            note,
        }
    }
}

/// The list's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sort {
    /// Newest first.
    Arrival,
    /// Slowest first.
    Duration,
}

/// `m` steps through these minimum durations, µs.
pub(crate) const MIN_DURATIONS_US: [u64; 4] = [0, 10_000, 100_000, 1_000_000];

/// Which screen is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Screen {
    List,
    /// One trace's waterfall; `span` is the selected row of its analysis.
    Trace {
        id: TraceId,
        span: usize,
    },
    /// The per-endpoint latency table.
    Endpoints,
}

/// What a key asks of the loop beyond the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    None,
    Quit,
    /// Write this trace into the current folder.
    Save(TraceId),
    /// Open this trace in Jaeger's UI.
    OpenInJaeger(TraceId),
}

/// A key, as the view reads it (the terminal's own codes are mapped in
/// `mod.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Key {
    Up,
    Down,
    Enter,
    Back,
    Char(char),
}

#[derive(Debug)]
pub(crate) struct State {
    pub entries: Vec<Entry>,
    pub sort: Sort,
    /// Only traces with a span of this service.
    pub service: Option<String>,
    /// Index into [`MIN_DURATIONS_US`].
    pub min_duration: usize,
    pub errors_only: bool,
    /// The selected row of the filtered, sorted list.
    pub selected: usize,
    pub screen: Screen,
    /// The last thing a key did (saved, opened), shown at the bottom.
    pub status: String,
    /// Where the receiver listens, over the list.
    pub banner: String,
}

impl State {
    pub fn new() -> Self {
        State {
            entries: Vec::new(),
            sort: Sort::Arrival,
            service: None,
            min_duration: 0,
            errors_only: false,
            selected: 0,
            screen: Screen::List,
            status: String::new(),
            banner: String::new(),
        }
    }

    /// A trace arrived, or arrived again with more spans (late ones).
    pub fn received(&mut self, trace: Trace, note: Option<String>) {
        let id = trace.trace_id;
        match self.entries.iter_mut().find(|e| e.trace.trace_id == id) {
            Some(entry) => {
                let number = entry.number;
                *entry = Entry::new(trace, number, note);
            }
            None => {
                let number = self.entries.len() + 1;
                self.entries.push(Entry::new(trace, number, note));
            }
        }
    }

    /// The list as shown: filtered, then sorted.
    pub fn visible(&self) -> Vec<&Entry> {
        let min = MIN_DURATIONS_US[self.min_duration];
        let mut shown: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| e.duration_us >= min)
            .filter(|e| !self.errors_only || e.errors > 0)
            .filter(|e| self.service.as_ref().is_none_or(|s| e.services.contains(s)))
            .collect();
        match self.sort {
            Sort::Arrival => shown.sort_by_key(|e| std::cmp::Reverse(e.number)),
            Sort::Duration => shown.sort_by_key(|e| std::cmp::Reverse(e.duration_us)),
        }
        shown
    }

    pub fn entry(&self, id: TraceId) -> Option<&Entry> {
        self.entries.iter().find(|e| e.trace.trace_id == id)
    }

    /// Every service seen, for the filter to step through.
    fn services(&self) -> Vec<String> {
        let all: BTreeSet<&String> = self.entries.iter().flat_map(|e| &e.services).collect();
        all.into_iter().cloned().collect()
    }

    pub fn key(&mut self, key: Key) -> Action {
        match self.screen {
            Screen::List => self.list_key(key),
            Screen::Trace { id, span } => self.trace_key(id, span, key),
            Screen::Endpoints => match key {
                Key::Char('q') => Action::Quit,
                _ => {
                    self.screen = Screen::List;
                    Action::None
                }
            },
        }
    }

    fn list_key(&mut self, key: Key) -> Action {
        let count = self.visible().len();
        match key {
            Key::Char('q') => return Action::Quit,
            Key::Up | Key::Char('k') => self.selected = self.selected.saturating_sub(1),
            Key::Down | Key::Char('j') => {
                self.selected = (self.selected + 1).min(count.saturating_sub(1));
            }
            Key::Enter => {
                if let Some(entry) = self.visible().get(self.selected) {
                    self.screen = Screen::Trace {
                        id: entry.trace.trace_id,
                        span: 0,
                    };
                }
            }
            Key::Char('s') => {
                self.sort = match self.sort {
                    Sort::Arrival => Sort::Duration,
                    Sort::Duration => Sort::Arrival,
                };
                self.selected = 0;
            }
            Key::Char('f') => {
                let services = self.services();
                self.service = match &self.service {
                    None => services.first().cloned(),
                    Some(current) => services
                        .iter()
                        .position(|s| s == current)
                        .and_then(|i| services.get(i + 1))
                        .cloned(),
                };
                self.selected = 0;
            }
            Key::Char('m') => {
                self.min_duration = (self.min_duration + 1) % MIN_DURATIONS_US.len();
                self.selected = 0;
            }
            Key::Char('e') => {
                self.errors_only = !self.errors_only;
                self.selected = 0;
            }
            Key::Char('t') => self.screen = Screen::Endpoints,
            _ => {}
        }
        Action::None
    }

    fn trace_key(&mut self, id: TraceId, span: usize, key: Key) -> Action {
        let rows = self.entry(id).map_or(0, |e| e.trace.spans.len());
        match key {
            Key::Char('q') => return Action::Quit,
            Key::Back | Key::Char('b') => self.screen = Screen::List,
            Key::Up | Key::Char('k') => {
                self.screen = Screen::Trace {
                    id,
                    span: span.saturating_sub(1),
                }
            }
            Key::Down | Key::Char('j') => {
                self.screen = Screen::Trace {
                    id,
                    span: (span + 1).min(rows.saturating_sub(1)),
                }
            }
            Key::Char('w') => return Action::Save(id),
            Key::Char('o') => return Action::OpenInJaeger(id),
            _ => {}
        }
        Action::None
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use trace_view::model::{SpanKind, Status};
    use trace_view::Span;

    use super::*;

    fn trace(n: u128, service: &str, ms: u64, error: bool) -> Trace {
        let span = |id: &str, parent: Option<&str>, service: &str| Span {
            span_id: id.to_owned(),
            parent_id: parent.map(str::to_owned),
            service: service.to_owned(),
            name: "GET /".to_owned(),
            kind: SpanKind::Server,
            start_us: 1_000_000,
            duration_us: ms * 1000,
            status: if error {
                Status::Error("boom".into())
            } else {
                Status::Unset
            },
            scope: String::new(),
            attributes: BTreeMap::new(),
            resource: BTreeMap::new(),
            events: Vec::new(),
            links: Vec::new(),
        };
        Trace {
            trace_id: TraceId::parse(&format!("{n:032x}")).unwrap(),
            spans: vec![
                span("0000000000000001", None, "front"),
                span("0000000000000002", Some("0000000000000001"), service),
            ],
        }
    }

    fn numbers(state: &State) -> Vec<usize> {
        state.visible().iter().map(|e| e.number).collect()
    }

    #[test]
    fn the_list_sorts_and_filters() {
        let mut s = State::new();
        s.received(trace(1, "users", 5, false), None);
        s.received(trace(2, "orders", 500, true), None);
        s.received(trace(3, "users", 50, false), None);
        assert_eq!(numbers(&s), [3, 2, 1], "newest first");
        s.key(Key::Char('s'));
        assert_eq!(numbers(&s), [2, 3, 1], "slowest first");
        s.key(Key::Char('e'));
        assert_eq!(numbers(&s), [2], "errors only");
        s.key(Key::Char('e'));
        s.key(Key::Char('m'));
        assert_eq!(numbers(&s), [2, 3], "10 ms and more");
        s.key(Key::Char('m'));
        assert_eq!(numbers(&s), [2], "100 ms and more");
        s.key(Key::Char('m'));
        s.key(Key::Char('m'));
        // Services step in name order: front, orders, users, then all.
        s.key(Key::Char('f'));
        assert_eq!(s.service.as_deref(), Some("front"));
        s.key(Key::Char('f'));
        assert_eq!(numbers(&s), [2]);
        s.key(Key::Char('f'));
        assert_eq!(numbers(&s), [3, 1]);
        s.key(Key::Char('f'));
        assert_eq!(s.service, None);
    }

    #[test]
    fn enter_opens_the_selected_trace_and_keys_move_within_it() {
        let mut s = State::new();
        s.received(trace(1, "users", 5, false), None);
        s.received(trace(2, "orders", 500, false), None);
        s.key(Key::Down);
        s.key(Key::Enter);
        let first = TraceId::parse(&format!("{:032x}", 1)).unwrap();
        assert_eq!(s.screen, Screen::Trace { id: first, span: 0 });
        s.key(Key::Down);
        s.key(Key::Down);
        assert_eq!(s.screen, Screen::Trace { id: first, span: 1 }, "two spans");
        assert_eq!(s.key(Key::Char('w')), Action::Save(first));
        assert_eq!(s.key(Key::Char('o')), Action::OpenInJaeger(first));
        s.key(Key::Back);
        assert_eq!(s.screen, Screen::List);
        assert_eq!(s.key(Key::Char('q')), Action::Quit);
    }

    #[test]
    fn a_trace_received_again_keeps_its_place() {
        let mut s = State::new();
        s.received(trace(1, "users", 5, false), None);
        s.received(trace(2, "orders", 5, false), None);
        s.received(trace(1, "users", 900, false), Some("late".into()));
        assert_eq!(s.entries.len(), 2);
        assert_eq!(s.entries[0].number, 1);
        assert_eq!(s.entries[0].duration_us, 900_000);
    }
}
