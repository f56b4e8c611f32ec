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

impl DisplayArgs {
    pub fn resolve(&self) -> Display {
        let stdout = std::io::stdout();
        let is_terminal = stdout.is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let colour = match self.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => is_terminal && !no_color,
        };
        let width = match self.width {
            Some(width) => usize::from(width),
            None => terminal_size::terminal_size_of(&stdout)
                .map(|(w, _)| usize::from(w.0))
                .or_else(|| std::env::var("COLUMNS").ok()?.trim().parse().ok())
                .filter(|&w| w > 0)
                .map_or(DEFAULT_WIDTH, |w| w.max(MIN_WIDTH)),
        };
        Display { width, colour }
    }
}
