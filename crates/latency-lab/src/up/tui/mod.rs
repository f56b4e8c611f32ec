//! `latency-lab view` on a terminal: a live list of the traces received
//! (root operation, services, spans, duration, errors; sorted and filtered
//! by keys), Enter for one trace's waterfall with its critical path and the
//! selected span's attributes and events, keys to save a trace or open it in
//! Jaeger, `t` for the per-endpoint table.
//!
//! ratatui draws it (a well-kept TUI crate, crossterm underneath). It runs
//! on a thread of its own: crossterm's key reading blocks, and the receiver
//! and the follow loop must keep running under it. Traces come from the
//! follow loop over a channel ([`Update`]); the thread ends on `q` or
//! Ctrl-C and says so through [`Tui::finished`].
//!
//! * [`state`]: what the view holds and what each key does (tested without
//!   a terminal).
//! * [`draw`]: the screens.

mod draw;
mod state;

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use otlp_receiver::MetricStore;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use trace_view::{jaeger_json, Trace, TraceId};

use state::{Action, Key, State};

/// What the follow loop tells the screen.
#[derive(Debug)]
pub(crate) enum Update {
    /// A trace to list (again, when spans of it came late); `note` says what
    /// it lacks when shown before it was whole.
    Trace { trace: Trace, note: Option<String> },
    /// A line for the status bar (the store dropped traces, …).
    Status(String),
    /// Close the screen (the process was asked to stop).
    Quit,
}

/// The running screen.
pub(crate) struct Tui {
    updates: mpsc::Sender<Update>,
    finished: tokio::sync::oneshot::Receiver<std::io::Result<()>>,
}

impl Tui {
    /// Takes over the terminal (alternate screen, raw mode) and starts
    /// drawing. `metrics` feeds the endpoint table; `jaeger` is the Jaeger
    /// UI that `o` opens.
    /// `banner` heads the list: where the receiver listens.
    pub(crate) fn start(metrics: MetricStore, jaeger: String, banner: String) -> Self {
        let (updates, received) = mpsc::channel();
        let (done, finished) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut terminal = ratatui::init();
            let result = run(&mut terminal, &received, &metrics, &jaeger, banner);
            ratatui::restore();
            let _ = done.send(result);
        });
        Tui { updates, finished }
    }

    /// Where the follow loop sends what the screen shows.
    pub(crate) fn sender(&self) -> mpsc::Sender<Update> {
        self.updates.clone()
    }

    /// Closes the screen and waits until the terminal is given back.
    pub(crate) async fn close(mut self) -> std::io::Result<()> {
        let _ = self.updates.send(Update::Quit);
        self.finished().await
    }

    /// Resolves once the screen is closed (`q`, Ctrl-C), the terminal given
    /// back.
    pub(crate) async fn finished(&mut self) -> std::io::Result<()> {
        (&mut self.finished)
            .await
            .unwrap_or_else(|_| Err(std::io::Error::other("the screen's thread ended")))
    }
}

fn run(
    terminal: &mut ratatui::DefaultTerminal,
    updates: &mpsc::Receiver<Update>,
    metrics: &MetricStore,
    jaeger: &str,
    banner: String,
) -> std::io::Result<()> {
    let mut state = State::new();
    state.banner = banner;
    loop {
        while let Ok(update) = updates.try_recv() {
            match update {
                Update::Trace { trace, note } => state.received(trace, note),
                Update::Status(line) => state.status = line,
                Update::Quit => return Ok(()),
            }
        }
        let endpoints = matches!(state.screen, state::Screen::Endpoints)
            .then(|| super::stats::table_of(metrics, "now"))
            .flatten();
        terminal.draw(|frame| draw::draw(frame, &state, endpoints.as_deref()))?;
        // A short poll: new traces show within a tenth of a second.
        if !event::poll(Duration::from_millis(100))? {
            continue;
        }
        let Event::Key(key) = event::read()? else {
            continue;
        };
        if key.kind != KeyEventKind::Press {
            continue;
        }
        let key = match key.code {
            KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => return Ok(()),
            KeyCode::Up => Key::Up,
            KeyCode::Down => Key::Down,
            KeyCode::Enter => Key::Enter,
            KeyCode::Esc | KeyCode::Backspace | KeyCode::Left => Key::Back,
            KeyCode::Char(c) => Key::Char(c),
            _ => continue,
        };
        match state.key(key) {
            Action::None => {}
            Action::Quit => return Ok(()),
            Action::Save(id) => state.status = save(&state, id),
            Action::OpenInJaeger(id) => state.status = open_in_jaeger(jaeger, id),
        }
    }
}

/// Writes the trace into the current folder, as Jaeger JSON.
fn save(state: &State, id: TraceId) -> String {
    let Some(entry) = state.entry(id) else {
        return format!("trace {id} is gone");
    };
    match jaeger_json::save(Path::new("."), &entry.trace) {
        Ok(path) => format!("saved as {}", path.display()),
        Err(e) => format!("not saved: {e}"),
    }
}

/// Opens the trace's page of Jaeger's UI with the desktop's opener; where
/// there is none (a server, a container), the status bar gives the URL.
fn open_in_jaeger(jaeger: &str, id: TraceId) -> String {
    let url = format!("{}/trace/{id}", jaeger.trim_end_matches('/'));
    let opened = std::process::Command::new("xdg-open")
        .arg(&url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        // Reaped on a thread of its own: the opener may outlive the key.
        .map(|mut child| std::thread::spawn(move || child.wait()))
        .is_ok();
    if opened {
        format!("opening {url}")
    } else {
        format!("open {url} in a browser (no xdg-open here)")
    }
}
