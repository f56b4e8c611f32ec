//! How the waterfall should look on this stdout: colours and width.
//!
//! Decided once per command, so the renderer stays a pure function of the
//! trace and these two values (and the snapshot tests can fix them).

use std::io::IsTerminal;

use clap::{Args, ValueEnum};

use crate::waterfall::MIN_WIDTH;

/// Width when stdout is not a terminal and `COLUMNS` is unset: wide enough
/// for the demo trace's labels and a useful bar.
pub const DEFAULT_WIDTH: usize = 100;

/// When to colour the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour when stdout is a terminal and `NO_COLOR` is not set.
    Auto,
    Always,
    Never,
}

/// The display flags shared by `up` and `trace`.
#[derive(Debug, Clone, Args)]
pub struct DisplayArgs {
    /// Colour the waterfalls: auto (a terminal without NO_COLOR), always or never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Width of the waterfalls in columns [default: the terminal's, else
    /// COLUMNS, else 100].
    #[arg(long, value_parser = clap::value_parser!(u16).range(MIN_WIDTH as i64..))]
    pub width: Option<u16>,
}

/// The resolved display settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Display {
    pub width: usize,
    pub colour: bool,
}

/// What the process's surroundings say about the display: the inputs of
/// [`DisplayArgs::decide`], gathered once so the decision itself is a pure
/// function (and tested without a terminal).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Surroundings {
    /// Whether stdout is a terminal.
    pub is_terminal: bool,
    /// `NO_COLOR` is set to a non-empty value (no-color.org).
    pub no_color: bool,
    /// The terminal's width in columns, when stdout is one.
    pub terminal_width: Option<usize>,
    /// `COLUMNS`, when set to a number.
    pub columns: Option<usize>,
}

impl Surroundings {
    /// This process's stdout and environment.
    pub fn of_this_process() -> Surroundings {
        let stdout = std::io::stdout();
        Surroundings {
            is_terminal: stdout.is_terminal(),
            no_color: std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
            terminal_width: terminal_size::terminal_size_of(&stdout).map(|(w, _)| usize::from(w.0)),
            columns: std::env::var("COLUMNS")
                .ok()
                .and_then(|c| c.trim().parse().ok()),
        }
    }
}

impl DisplayArgs {
    /// The display for this stdout; when the terminal is narrower than a
    /// waterfall can be drawn, says so once on stderr (see [`Self::decide`]).
    pub fn resolve(&self) -> Display {
        let (display, note) = self.decide(&Surroundings::of_this_process());
        if let Some(note) = note {
            eprintln!("{note}");
        }
        display
    }

    /// The display for the given surroundings, and the one line to say when
    /// the terminal is narrower than [`MIN_WIDTH`]: the waterfall is then
    /// drawn [`MIN_WIDTH`] wide (its lines wrap), which the user should hear
    /// about once, with the way forward, rather than puzzle over.
    ///
    /// Colour under `auto` needs a terminal and no `NO_COLOR`; `--color`
    /// always wins, as no-color.org asks of an explicit flag.
    pub fn decide(&self, around: &Surroundings) -> (Display, Option<String>) {
        let colour = match self.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => around.is_terminal && !around.no_color,
        };
        if let Some(width) = self.width {
            let width = usize::from(width);
            return (Display { width, colour }, None);
        }
        let measured = around
            .terminal_width
            .map(|w| (w, "the terminal"))
            .or(around.columns.map(|w| (w, "COLUMNS")))
            .filter(|&(w, _)| w > 0);
        let Some((measured, source)) = measured else {
            return (
                Display {
                    width: DEFAULT_WIDTH,
                    colour,
                },
                None,
            );
        };
        let note = (measured < MIN_WIDTH).then(|| narrow_note(measured, source));
        let width = measured.max(MIN_WIDTH);
        (Display { width, colour }, note)
    }
}

/// The one line for a terminal too narrow for any waterfall.
fn narrow_note(measured: usize, source: &str) -> String {
    let source = if source == "COLUMNS" {
        format!("COLUMNS={measured}")
    } else {
        format!("{measured} columns")
    };
    format!(
        "note: the waterfall needs at least {MIN_WIDTH} columns and {source} is narrower, so its \
         lines wrap: widen the terminal, or set --width {MIN_WIDTH} (or more) and read it with `less -S`"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(color: ColorChoice, width: Option<u16>) -> DisplayArgs {
        DisplayArgs { color, width }
    }

    fn terminal(width: usize) -> Surroundings {
        Surroundings {
            is_terminal: true,
            terminal_width: Some(width),
            ..Surroundings::default()
        }
    }

    #[test]
    fn auto_colours_a_terminal_only_without_no_color() {
        let auto = args(ColorChoice::Auto, None);
        assert!(auto.decide(&terminal(120)).0.colour);
        let no_color = Surroundings {
            no_color: true,
            ..terminal(120)
        };
        assert!(!auto.decide(&no_color).0.colour);
        // Not a terminal (a pipe, a file): no ANSI escapes.
        assert!(!auto.decide(&Surroundings::default()).0.colour);
        // An explicit flag wins over NO_COLOR and the pipe.
        assert!(args(ColorChoice::Always, None).decide(&no_color).0.colour);
        assert!(
            args(ColorChoice::Always, None)
                .decide(&Surroundings::default())
                .0
                .colour
        );
        assert!(
            !args(ColorChoice::Never, None)
                .decide(&terminal(120))
                .0
                .colour
        );
    }

    #[test]
    fn width_comes_from_the_flag_then_the_terminal_then_columns() {
        let auto = args(ColorChoice::Auto, None);
        assert_eq!(auto.decide(&terminal(120)).0.width, 120);
        let columns = Surroundings {
            columns: Some(90),
            ..Surroundings::default()
        };
        assert_eq!(auto.decide(&columns).0.width, 90);
        assert_eq!(auto.decide(&Surroundings::default()).0.width, DEFAULT_WIDTH);
        assert_eq!(
            args(ColorChoice::Auto, Some(150))
                .decide(&terminal(80))
                .0
                .width,
            150
        );
    }

    #[test]
    fn a_narrow_terminal_is_said_once_with_the_way_forward() {
        let auto = args(ColorChoice::Auto, None);
        let (display, note) = auto.decide(&terminal(40));
        assert_eq!(display.width, MIN_WIDTH);
        let note = note.expect("a note for a 40-column terminal");
        assert_eq!(note.lines().count(), 1);
        for part in [
            format!("at least {MIN_WIDTH} columns"),
            "40 columns".to_owned(),
            format!("--width {MIN_WIDTH}"),
        ] {
            assert!(note.contains(&part), "{note}");
        }
        let (_, note) = auto.decide(&Surroundings {
            columns: Some(30),
            ..Surroundings::default()
        });
        assert!(note.unwrap().contains("COLUMNS=30"));
        // Wide enough, or the width chosen: nothing to say.
        assert_eq!(auto.decide(&terminal(MIN_WIDTH)).1, None);
        assert_eq!(
            args(ColorChoice::Auto, Some(MIN_WIDTH as u16))
                .decide(&terminal(40))
                .1,
            None
        );
    }
}
