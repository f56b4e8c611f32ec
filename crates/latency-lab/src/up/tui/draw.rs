//! Drawing the interactive view with ratatui: the trace list, one trace's
//! waterfall (trace-view's, the same text `up` prints) with the selected
//! span's attributes and events, and the per-endpoint table.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Text};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, TableState, Wrap};
use ratatui::Frame;
use trace_view::{analysis, waterfall, Span, Trace};

use super::state::{Screen, Sort, State, MIN_DURATIONS_US};

/// `endpoints`: the per-endpoint table's text, when metrics have come.
pub(crate) fn draw(frame: &mut Frame, state: &State, endpoints: Option<&str>) {
    let [body, help] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(2)]).areas(frame.area());
    let keys = match state.screen {
        Screen::List => {
            list(frame, body, state);
            "↑↓ select · Enter open · s sort · f service · m min duration · e errors only · t endpoints · q quit"
        }
        Screen::Trace { id, span } => {
            match state.entry(id) {
                Some(entry) => trace(frame, body, &entry.trace, span, entry.note.as_deref()),
                None => frame.render_widget(Paragraph::new("the trace is gone"), body),
            }
            "↑↓ span · b back · w save to this folder · o open in Jaeger · q quit"
        }
        Screen::Endpoints => {
            let text = endpoints.unwrap_or(
                "no http.server.request.duration metric has arrived: the per-endpoint table comes from the histograms the apps export",
            );
            frame.render_widget(
                Paragraph::new(text)
                    .block(Block::default().title("endpoints").borders(Borders::TOP)),
                body,
            );
            "any key: back · q quit"
        }
    };
    let help_text = Text::from(vec![
        Line::styled(keys, Style::default().add_modifier(Modifier::DIM)),
        Line::raw(state.status.as_str()),
    ]);
    frame.render_widget(Paragraph::new(help_text), help);
}

fn ms(us: u64) -> String {
    crate::load::format_duration(std::time::Duration::from_micros(us))
}

fn list(frame: &mut Frame, area: Rect, state: &State) {
    let [banner, area] = Layout::vertical([Constraint::Length(1), Constraint::Min(2)]).areas(area);
    frame.render_widget(Paragraph::new(state.banner.as_str()), banner);
    let shown = state.visible();
    let title = format!(
        "latency-lab view · {} of {} traces · {} · service: {} · {} · {}",
        shown.len(),
        state.entries.len(),
        match state.sort {
            Sort::Arrival => "newest first",
            Sort::Duration => "slowest first",
        },
        state.service.as_deref().unwrap_or("any"),
        match MIN_DURATIONS_US[state.min_duration] {
            0 => "any duration".to_owned(),
            min => format!("at least {}", ms(min)),
        },
        if state.errors_only {
            "errors only"
        } else {
            "with or without errors"
        }
    );
    let rows = shown.iter().map(|e| {
        let services: Vec<&str> = e.services.iter().map(String::as_str).collect();
        Row::new(vec![
            Cell::from(e.number.to_string()),
            Cell::from(e.root.clone()),
            Cell::from(services.join(", ")),
            Cell::from(e.trace.spans.len().to_string()),
            Cell::from(ms(e.duration_us)),
            Cell::from(if e.errors > 0 {
                e.errors.to_string()
            } else {
                "-".to_owned()
            }),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(5),
            Constraint::Fill(3),
            Constraint::Fill(2),
            Constraint::Length(6),
            Constraint::Length(10),
            Constraint::Length(7),
        ],
    )
    .header(
        Row::new([
            "#",
            "root operation",
            "services",
            "spans",
            "duration",
            "errors",
        ])
        .style(Style::default().add_modifier(Modifier::BOLD)),
    )
    .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED))
    .block(Block::default().title(title).borders(Borders::TOP));
    let mut selection = TableState::default().with_selected(Some(state.selected));
    frame.render_stateful_widget(table, area, &mut selection);
}

/// The waterfall, the selected row reversed, and the selected span's
/// details under it.
fn trace(frame: &mut Frame, area: Rect, trace: &Trace, selected: usize, note: Option<&str>) {
    let [top, details] =
        Layout::vertical([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(area);
    let text = waterfall::render(trace, usize::from(top.width), false);
    let mut lines: Vec<Line> = text.lines().map(|l| Line::raw(l.to_owned())).collect();
    // Rows 0 and 1 are the title and the column header; the spans follow
    // in the analysis' order.
    let row = 2 + selected;
    if let Some(line) = lines.get_mut(row) {
        *line = line
            .clone()
            .style(Style::default().add_modifier(Modifier::REVERSED));
    }
    if let Some(note) = note {
        lines.push(Line::raw(note.to_owned()));
    }
    // Keep the selected row in sight.
    let height = usize::from(top.height).max(1);
    let scroll = row.saturating_sub(height.saturating_sub(1));
    frame.render_widget(
        Paragraph::new(lines).scroll((u16::try_from(scroll).unwrap_or(u16::MAX), 0)),
        top,
    );
    let analysis = analysis::analyse(trace);
    let span = analysis.rows.get(selected).map(|r| &trace.spans[r.span]);
    let body = span.map_or_else(String::new, |s| describe(s, trace.time_range().0));
    frame.render_widget(
        Paragraph::new(body)
            .wrap(Wrap { trim: false })
            .block(Block::default().title("span").borders(Borders::TOP)),
        details,
    );
}

/// A span's details: what it is, its status, attributes and events.
fn describe(span: &Span, t0: u64) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {} · {:?} · {} · starts at +{}",
        span.service,
        span.name,
        span.kind,
        ms(span.duration_us),
        ms(span.start_us.saturating_sub(t0))
    );
    if span.is_error() {
        let _ = writeln!(out, "status: error {:?}", span.status);
    }
    for (key, value) in &span.attributes {
        let _ = writeln!(out, "  {key} = {value}");
    }
    for event in &span.events {
        let _ = write!(
            out,
            "  event +{} {}",
            ms(event.time_us.saturating_sub(t0)),
            event.name
        );
        for (key, value) in &event.attributes {
            let _ = write!(out, " {key}={value}");
        }
        out.push('\n');
    }
    out
}
