//! Command-line pieces shared by the services' `main`s.

use std::time::Duration;

use clap::Args;
use telemetry::LogFormat;

/// Flags every service accepts, flattened into its own `clap` parser.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Log line format on stderr: `human` or `json` (JSON lines carry
    /// `trace_id` and `span_id`).
    #[arg(long, env = "LOG_FORMAT", default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
}

/// `clap` value parser for durations written as `100ms`, `1.5s`, `2s 500ms`.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    humantime::parse_duration(value.trim())
        .map_err(|e| format!("{e}: write a duration such as 100ms, 1.5s or 2s"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration(" 2s "), Ok(Duration::from_secs(2)));
        assert!(parse_duration("100").unwrap_err().contains("100ms"));
        assert!(parse_duration("fast").is_err());
    }
}
