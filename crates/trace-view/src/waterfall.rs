//! A trace as a terminal waterfall: what Jaeger's timeline shows, in text.
//!
//! ```text
//! trace 39f08f8e43ea23d52b82c0f7f8eaff8c (7 spans, 3 services, 308.6 ms)
//!   span                                        0                  308.6 ms    total     self     wait
//! ● profile-aggregator GET /user-profile/{id}   ░░░░░░░░░░░░░░░░░░░░░░░░░░░ 308.6 ms   827 µs 307.8 ms
//! ●   profile-aggregator GET /users/{id}        ░░░░░░░░░░                  104.2 ms   2.2 ms 102.0 ms
//! ●     user-service GET /users/{id}            ░░░░░░░░░░                  102.0 ms   401 µs 101.6 ms
//! ●       user-service db.query SELECT users    █████████░                  101.6 ms 101.6 ms        -
//! …
//! ● critical path (█ while the span holds it) · self: own time · wait: covered by children
//! where the time went: 65% of 308.6 ms waiting on order-service (db.query SELECT orders)
//! ```
//!
//! One row per span, indented under its parent; a bar on a time axis shared
//! by the whole trace; the span's duration split into self time (not covered
//! by its children) and waiting time (covered by them). Spans on the
//! critical path carry a `●`, and their bar is solid (`█`) exactly where
//! they held the critical path, shaded (`░`) elsewhere — so the path reads
//! as a staircase through the rows, with or without colour. The last line
//! says where the time went.
//!
//! [`render`] is a pure function of the trace, the width and whether to use
//! colour; the caller decides both for its terminal (see `terminal`).

use std::fmt::Write;

use crate::analysis::{self, Analysis, Row};
use crate::model::Trace;

/// Width of each number column (`999.9 ms`, `9.999 s`, `99.99 s`, `999 µs`).
const NUMBER: usize = 8;
/// Everything on a row but the label and the bar: the marker column, two
/// separators and the three numbers with their separators.
const FIXED: usize = 2 + 1 + 1 + NUMBER + 1 + NUMBER + 1 + NUMBER;
/// The bar never gets narrower than this, nor than a third of what the
/// numbers leave; labels are cut instead.
const MIN_BAR: usize = 10;
/// Labels are never cut below this.
const MIN_LABEL: usize = 16;
/// The narrowest width that fits a row.
pub const MIN_WIDTH: usize = FIXED + MIN_LABEL + MIN_BAR;

const CRITICAL_MARK: char = '●';
const CRITICAL_CELL: char = '█';
const OTHER_CELL: char = '░';

/// Service colours (ANSI), by order of first appearance in the waterfall.
const PALETTE: [&str; 6] = ["36", "33", "35", "32", "34", "96"];

/// Renders the trace, `width` columns wide (labels are cut to fit), with
/// ANSI colours when `colour` is set. Ends with a newline.
pub fn render(trace: &Trace, width: usize, colour: bool) -> String {
    let analysis = analysis::analyse(trace);
    let (t0, t1) = trace.time_range();
    let span_total = (t1 - t0).max(1);
    let paint = Painter { on: colour };

    let labels: Vec<String> = analysis.rows.iter().map(|r| label(trace, r)).collect();
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let available = width.saturating_sub(FIXED);
    let bar_floor = MIN_BAR.max(available / 3);
    let label_width = longest
        .min(available.saturating_sub(bar_floor))
        .max(MIN_LABEL);
    let bar_width = available.saturating_sub(label_width).max(MIN_BAR);

    let mut services: Vec<&str> = Vec::new();
    for row in &analysis.rows {
        let service = trace.spans[row.span].service.as_str();
        if !services.contains(&service) {
            services.push(service);
        }
    }
    let colour_of = |service: &str| {
        let i = services.iter().position(|s| *s == service).unwrap_or(0);
        PALETTE[i % PALETTE.len()]
    };

    let mut out = String::new();
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let title = format!(
        "trace {} ({}, {}, {})",
        trace.trace_id,
        plural(trace.spans.len(), "span"),
        plural(services.len(), "service"),
        duration(t1 - t0)
    );
    let _ = writeln!(out, "{}", paint.style(&title, "1"));
    let header = format!(
        "  {:<label_width$} {} {:>NUMBER$} {:>NUMBER$} {:>NUMBER$}",
        "span",
        axis(t1 - t0, bar_width),
        "total",
        "self",
        "wait"
    );
    let _ = writeln!(out, "{}", paint.style(&header, "2"));

    for (row, label) in analysis.rows.iter().zip(&labels) {
        let span = &trace.spans[row.span];
        let on_path = row.critical_us() > 0;
        let marker = if on_path {
            paint.style(&CRITICAL_MARK.to_string(), "1")
        } else {
            " ".to_owned()
        };
        let fitted = fit(label, label_width);
        let padding = " ".repeat(label_width - fitted.chars().count());
        let cells = bar(row, span.start_us, span.end_us(), t0, span_total, bar_width);
        let _ = writeln!(
            out,
            "{marker} {}{padding} {} {:>NUMBER$} {:>NUMBER$} {:>NUMBER$}",
            paint.label(&fitted, row.depth, &span.service, colour_of(&span.service)),
            paint.bar(&cells, colour_of(&span.service)),
            duration(span.duration_us),
            duration_or_dash(row.self_us),
            duration_or_dash(row.waiting_us),
        );
    }

    let mut legend = format!(
        "{CRITICAL_MARK} critical path ({CRITICAL_CELL} while the span holds it) \
         · self: own time · wait: covered by children"
    );
    if legend.chars().count() > width {
        legend = format!("{CRITICAL_MARK} critical path ({CRITICAL_CELL} while the span holds it)");
    }
    let _ = writeln!(out, "{}", paint.style(&legend, "2"));
    let _ = writeln!(
        out,
        "{}",
        paint.style(&summary(trace, &analysis, width), "1")
    );
    out
}

/// One line: where the critical path's time went, by service, e.g.
/// `where the time went: 65% of 309.0 ms waiting on order-service
/// (db.query SELECT orders), user-service 33%, profile-aggregator 2%`.
///
/// The largest share comes first, named from the point of view of the
/// root's service: time in another service is time the request spent
/// waiting on it; in brackets, the span of that service that held the
/// critical path longest. The other services follow as long as the line
/// fits in `width`.
pub fn summary(trace: &Trace, analysis: &Analysis, width: usize) -> String {
    let total = analysis.critical_us;
    let Some((top, top_us)) = analysis.by_service.first() else {
        return "where the time went: nowhere, the trace has no duration".to_owned();
    };
    let percent = |us: u64| {
        let p = (us as f64 * 100.0 / total as f64).round();
        if p == 0.0 {
            "<1%".to_owned()
        } else {
            format!("{p:.0}%")
        }
    };
    let root_service = analysis.root.map(|r| trace.spans[r].service.as_str());
    let relation = if root_service == Some(top.as_str()) {
        format!("in {top} itself")
    } else {
        format!("waiting on {top}")
    };
    let roots = match analysis.roots {
        1 => String::new(),
        n => format!(" ({n} root spans)"),
    };
    let mut line = format!(
        "where the time went: {} of {}{roots} {relation}",
        percent(*top_us),
        duration(total)
    );
    if let Some(row) = analysis.top_span_of(trace, top) {
        let _ = write!(line, " ({})", trace.spans[row.span].name);
    }
    for (service, us) in &analysis.by_service[1..] {
        let more = format!(", {service} {}", percent(*us));
        if line.chars().count() + more.chars().count() > width {
            break;
        }
        line.push_str(&more);
    }
    line
}

/// `service name`, indented by depth, with an error mark.
fn label(trace: &Trace, row: &Row) -> String {
    let span = &trace.spans[row.span];
    let error = if span.is_error() { " [error]" } else { "" };
    format!(
        "{}{} {}{error}",
        "  ".repeat(row.depth),
        span.service,
        span.name
    )
}

/// Cuts `text` to `width` characters, marking the cut with `…`.
fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// The span's bar: `width` cells over `[t0, t0 + total)`. A cell the span
/// touches is drawn; it is solid when the span held the critical path for
/// most of its time in the cell, and for at least a quarter of the cell (so
/// a sliver does not look like a whole cell of critical work). A span too
/// short to cover any cell still gets the one cell it falls in.
fn bar(row: &Row, start: u64, end: u64, t0: u64, total: u64, width: usize) -> Vec<char> {
    // Work in µs × width so every cell spans exactly `total` units: with
    // whole-µs cell edges, a trace shorter (in µs) than the bar is wide
    // would get zero-width cells, drawn as gaps.
    let scaled = |t: u64| u128::from(t.saturating_sub(t0)) * width as u128;
    let span = (scaled(start), scaled(end));
    let cell_width = u128::from(total);
    let mut cells = vec![' '; width];
    let mut drawn = false;
    for (i, cell) in cells.iter_mut().enumerate() {
        let edges = (cell_width * i as u128, cell_width * (i as u128 + 1));
        let present = overlap(span, edges);
        if present == 0 {
            continue;
        }
        drawn = true;
        let critical: u128 = row
            .critical
            .iter()
            .map(|&(s, e)| overlap((scaled(s), scaled(e)), edges))
            .sum();
        *cell = if critical * 2 > present && critical * 4 >= cell_width {
            CRITICAL_CELL
        } else {
            OTHER_CELL
        };
    }
    if !drawn {
        let offset = u128::from(start.saturating_sub(t0)) * width as u128 / u128::from(total);
        let i = (offset as usize).min(width - 1);
        cells[i] = if row.critical_us() > 0 {
            CRITICAL_CELL
        } else {
            OTHER_CELL
        };
    }
    cells
}

fn overlap(a: (u128, u128), b: (u128, u128)) -> u128 {
    a.1.min(b.1).saturating_sub(a.0.max(b.0))
}

/// The time axis above the bars: `0` on the left, the trace's duration on
/// the right, its middle in between when there is room.
fn axis(total: u64, width: usize) -> String {
    let mut axis: Vec<char> = vec![' '; width];
    let mut put = |text: &str, at: usize| {
        for (i, c) in text.chars().enumerate() {
            if let Some(cell) = axis.get_mut(at + i) {
                *cell = c;
            }
        }
    };
    let end = duration(total);
    let middle = duration(total / 2);
    put("0", 0);
    let end_len = end.chars().count();
    if width > end_len + 2 {
        put(&end, width - end_len);
    }
    let middle_len = middle.chars().count();
    let middle_at = (width / 2).saturating_sub(middle_len / 2);
    if middle_at > 2 && middle_at + middle_len + 2 < width.saturating_sub(end_len) {
        put(&middle, middle_at);
    }
    axis.into_iter().collect()
}

/// A duration for people, in at most 8 characters below 1000 s: µs below
/// a millisecond, ms below a second, then seconds.
pub fn duration(us: u64) -> String {
    if us < 1_000 {
        format!("{us} µs")
    } else if us < 999_950 {
        format!("{:.1} ms", us as f64 / 1_000.0)
    } else if us < 9_999_500 {
        format!("{:.3} s", us as f64 / 1_000_000.0)
    } else {
        format!("{:.2} s", us as f64 / 1_000_000.0)
    }
}

fn duration_or_dash(us: u64) -> String {
    if us == 0 {
        "-".to_owned()
    } else {
        duration(us)
    }
}

/// ANSI styling that disappears when colour is off.
struct Painter {
    on: bool,
}

impl Painter {
    fn style(&self, text: &str, codes: &str) -> String {
        if self.on {
            format!("\x1b[{codes}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// Colours the service name (the first word after the indentation) and
    /// an error mark.
    fn label(&self, label: &str, depth: usize, service: &str, colour: &str) -> String {
        if !self.on {
            return label.to_owned();
        }
        let indent = 2 * depth;
        let rest = label.get(indent..).unwrap_or("");
        let (name_part, tail) = match rest.strip_prefix(service) {
            Some(tail) => (service, tail),
            None => ("", rest),
        };
        let tail = match tail.strip_suffix(" [error]") {
            Some(body) => format!("{body} {}", self.style("[error]", "1;31")),
            None => tail.to_owned(),
        };
        format!(
            "{}{}{tail}",
            &label[..indent.min(label.len())],
            self.style(name_part, colour)
        )
    }

    /// Solid cells bold, shaded cells dim, both in the service's colour.
    fn bar(&self, cells: &[char], colour: &str) -> String {
        if !self.on {
            return cells.iter().collect();
        }
        let mut out = String::new();
        let mut run = String::new();
        let mut run_char = None;
        let flush = |out: &mut String, run: &mut String, c: Option<char>| {
            if run.is_empty() {
                return;
            }
            let codes = match c {
                Some(CRITICAL_CELL) => format!("1;{colour}"),
                Some(OTHER_CELL) => format!("2;{colour}"),
                _ => String::new(),
            };
            if codes.is_empty() {
                out.push_str(run);
            } else {
                out.push_str(&self.style(run, &codes));
            }
            run.clear();
        };
        for &c in cells {
            if run_char != Some(c) {
                flush(&mut out, &mut run, run_char);
                run_char = Some(c);
            }
            run.push(c);
        }
        flush(&mut out, &mut run, run_char);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::tests::{span, trace};
    use crate::model::{SpanKind, Status};

    const WIDTH: usize = 100;

    /// The demo's request in `sequential` mode, with realistic timings (ms).
    fn sequential() -> Trace {
        fan_out(104)
    }

    /// The same request in `concurrent` mode: both calls start together.
    fn concurrent() -> Trace {
        fan_out(0)
    }

    /// The demo's fan-out, the orders call starting `orders_delay` ms after
    /// the user call (104: once the user call has finished).
    fn fan_out(orders_delay: u64) -> Trace {
        let d = orders_delay;
        trace(vec![
            span(
                "GET /user-profile/{id}",
                "profile-aggregator",
                None,
                0,
                205 + d,
            ),
            client("GET /users/{id}", "users-client", 1, 105),
            server(
                "user-service",
                "GET /users/{id}",
                "users-server",
                "users-client",
                2,
                104,
            ),
            db(
                "user-service",
                "db.query SELECT users",
                "users-server",
                2,
                103,
            ),
            client("GET /users/{id}/orders", "orders-client", 1 + d, 204 + d),
            server(
                "order-service",
                "GET /users/{id}/orders",
                "orders-server",
                "orders-client",
                2 + d,
                203 + d,
            ),
            db(
                "order-service",
                "db.query SELECT orders",
                "orders-server",
                2 + d,
                202 + d,
            ),
        ])
    }

    /// A client span of the aggregator; `id` names it for its children.
    fn client(name: &str, id: &str, start: u64, end: u64) -> crate::model::Span {
        let root = span("GET /user-profile/{id}", "profile-aggregator", None, 0, 0);
        let mut s = span(id, "profile-aggregator", None, start, end);
        s.name = name.into();
        s.kind = SpanKind::Client;
        s.parent_id = Some(root.span_id);
        s
    }

    fn server(
        service: &str,
        name: &str,
        id: &str,
        parent: &str,
        start: u64,
        end: u64,
    ) -> crate::model::Span {
        let mut s = span(id, service, Some(parent), start, end);
        s.name = name.into();
        s.kind = SpanKind::Server;
        s
    }

    fn db(service: &str, name: &str, parent: &str, start: u64, end: u64) -> crate::model::Span {
        let mut s = span(&format!("{parent}-db"), service, Some(parent), start, end);
        s.name = name.into();
        s
    }

    #[test]
    fn sequential_fan_out() {
        insta::assert_snapshot!(render(&sequential(), WIDTH, false));
    }

    #[test]
    fn concurrent_fan_out() {
        insta::assert_snapshot!(render(&concurrent(), WIDTH, false));
    }

    #[test]
    fn a_trace_shorter_in_us_than_the_bar_is_wide_has_no_gaps() {
        // A 40 µs request (a 405 answered by the router) on a wide terminal:
        // more bar cells than microseconds.
        let mut only = span("POST /user-profile/{id}", "front", None, 0, 0);
        only.duration_us = 40;
        let out = render(&trace(vec![only]), 160, false);
        let row = out.lines().nth(2).expect("the span's row");
        let bar: String = row
            .chars()
            .skip_while(|c| *c != CRITICAL_CELL)
            .take_while(|c| *c == CRITICAL_CELL || *c == ' ')
            .collect();
        assert!(
            !bar.trim_end().contains(' '),
            "gaps in the bar of a single span:\n{out}"
        );
        assert!(bar.trim_end().chars().count() > 40, "{out}");
    }

    #[test]
    fn overlapping_children() {
        let t = trace(vec![
            span("parent", "front", None, 0, 100),
            span("early", "back", Some("parent"), 10, 60),
            span("late", "back", Some("parent"), 40, 90),
        ]);
        insta::assert_snapshot!(render(&t, WIDTH, false));
    }

    #[test]
    fn child_outlives_parent() {
        let t = trace(vec![
            span("handler", "front", None, 0, 100),
            span("detached-work", "worker", Some("handler"), 50, 150),
        ]);
        insta::assert_snapshot!(render(&t, WIDTH, false));
    }

    #[test]
    fn errors_orphans_and_tiny_spans() {
        let mut failed = span("call", "front", Some("request"), 10, 90);
        failed.status = Status::Error("502".into());
        let t = trace(vec![
            span("request", "front", None, 0, 100),
            failed,
            span("instant", "front", Some("request"), 95, 95),
            span("lost", "back", Some("not-in-this-trace"), 20, 80),
        ]);
        insta::assert_snapshot!(render(&t, WIDTH, false));
    }

    #[test]
    fn narrow_terminals_cut_labels_not_bars() {
        let text = render(&sequential(), 60, false);
        insta::assert_snapshot!(text);
        for line in text.lines().skip(1).take(8) {
            assert!(line.chars().count() <= 60, "{line:?}");
        }
    }

    #[test]
    fn colour_is_only_decoration() {
        let plain = render(&concurrent(), WIDTH, false);
        let coloured = render(&concurrent(), WIDTH, true);
        assert!(!plain.contains('\x1b'));
        assert!(coloured.contains("\x1b[1;"), "solid cells are bold");
        assert_eq!(strip_ansi(&coloured), plain);
    }

    #[test]
    fn every_row_has_the_requested_width() {
        for width in [60, 80, 100, 140] {
            let text = render(&sequential(), width, false);
            let rows: Vec<&str> = text.lines().skip(1).take(8).collect();
            assert!(
                rows.iter().all(|l| l.chars().count() == width),
                "{width}: {text}"
            );
        }
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(0), "0 µs");
        assert_eq!(duration(999), "999 µs");
        assert_eq!(duration(1_000), "1.0 ms");
        assert_eq!(duration(309_249), "309.2 ms");
        assert_eq!(duration(999_949), "999.9 ms");
        assert_eq!(duration(999_950), "1.000 s");
        assert_eq!(duration(1_205_900), "1.206 s");
        assert_eq!(duration(9_999_499), "9.999 s");
        assert_eq!(duration(9_999_500), "10.00 s");
        assert_eq!(duration(12_345_678), "12.35 s");
        assert_eq!(duration(999_994_999), "999.99 s");
    }

    fn strip_ansi(text: &str) -> String {
        let mut out = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }
}
