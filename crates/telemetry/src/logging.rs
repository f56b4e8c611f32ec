//! Human or JSON log lines on stderr.
//!
//! Logs go to stderr so that stdout stays free for the one line a service
//! prints when it is ready (tests and the all-in-one runner read it).

use std::str::FromStr;

use tracing_subscriber::{registry::LookupSpan, EnvFilter, Layer};

use crate::log_fields::{BoundedFields, JsonSpanFields, JsonSpanFieldsLayer};

/// The shape of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Compact, coloured when stderr is a terminal.
    #[default]
    Human,
    /// One JSON object per line, with the OpenTelemetry `trace_id` and
    /// `span_id` of the current span, so log search can jump to the trace.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "human" | "text" | "pretty" => Ok(Self::Human),
            "json" => Ok(Self::Json),
            other => Err(format!(
                "unknown log format {other:?}: expected human or json"
            )),
        }
    }
}

impl std::fmt::Display for LogFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Human => "human",
            Self::Json => "json",
        })
    }
}

/// Default log filter: our own crates at `info`, the transport stack quiet.
const DEFAULT_LOG_FILTER: &str = "info,h2=warn,hyper=warn,hyper_util=warn,tower=warn,tonic=warn,reqwest=warn,opentelemetry_sdk=warn,opentelemetry_otlp=warn";

/// The log layer with its own filter (`RUST_LOG`, or [`DEFAULT_LOG_FILTER`]).
///
/// The filter is attached to this layer only: a global filter would also
/// disable the spans the OpenTelemetry layer needs, and then nothing is
/// exported and no `traceparent` is sent.
pub fn layer<S>(format: LogFormat) -> Box<dyn Layer<S> + Send + Sync + 'static>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER));
    match format {
        LogFormat::Human => tracing_subscriber::fmt::layer()
            .fmt_fields(BoundedFields)
            .with_writer(std::io::stderr)
            .with_target(false)
            .with_ansi(use_colour())
            .compact()
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => JsonSpanFieldsLayer
            .and_then(json_layer())
            .with_filter(filter)
            .boxed(),
    }
}

/// Colour only on a terminal, and never when `NO_COLOR` is set.
fn use_colour() -> bool {
    use std::io::IsTerminal;
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

/// One JSON object per line: `timestamp`, `level`, `target`, `fields`
/// (with `message`), `span` (the current span's fields) and — at the top
/// level, where log pipelines look for them — `trace_id` and `span_id`.
fn json_layer<S>() -> json_subscriber::JsonLayer<S, fn() -> std::io::Stderr>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    let mut layer = json_subscriber::JsonLayer::stderr();
    layer
        .with_timer("timestamp", tracing_subscriber::fmt::time::SystemTime)
        .with_level("level")
        .with_target("target")
        .with_event("fields");
    // The current span's fields, each cut as in human lines (the layer
    // before this one records them): not `with_current_span`, which would
    // print a client's 8 KB `User-Agent` whole.
    layer.serialize_extension::<JsonSpanFields>("span");
    // One look-up of the current span's context per line, for both ids.
    layer.add_multiple_dynamic_fields(|_, _, writer| {
        if let Some((trace_id, span_id)) = crate::current_ids() {
            let _ = writer.write_field("trace_id", trace_id);
            let _ = writer.write_field("span_id", span_id);
        }
    });
    layer
}
