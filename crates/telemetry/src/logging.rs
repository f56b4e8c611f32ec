//! Human or JSON log lines on stderr.
//!
//! Logs go to stderr so that stdout stays free for the one line a service
//! prints when it is ready (tests and the all-in-one runner read it).

use std::fmt;
use std::str::FromStr;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::{MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::fmt::format::{DefaultVisitor, Writer};
use tracing_subscriber::{registry::LookupSpan, EnvFilter, Layer};

use crate::bounded_log::{excerpt_of, DebugExcerpt};

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
        LogFormat::Json => json_layer().with_filter(filter).boxed(),
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
        .with_event("fields")
        .with_current_span("span");
    // One look-up of the current span's context per line, for both ids.
    layer.add_multiple_dynamic_fields(|_, _, writer| {
        if let Some((trace_id, span_id)) = crate::current_ids() {
            let _ = writer.write_field("trace_id", trace_id);
            let _ = writer.write_field("span_id", span_id);
        }
    });
    layer
}

/// How much of one field a human log line shows: a message is ours (it may
/// quote a value), any other field may be a client's (the SERVER span's
/// `url.query`, `user_agent.original`, printed with every line logged
/// inside a request).
const MESSAGE_CHARS: usize = 512;
const FIELD_CHARS: usize = 128;

/// The fmt layer's default field format, each value cut to
/// [`FIELD_CHARS`] (a message to [`MESSAGE_CHARS`]) with its full length
/// said: no client can make a line long. Span fields are formatted through
/// it too.
struct BoundedFields;

impl<'a> MakeVisitor<Writer<'a>> for BoundedFields {
    type Visitor = BoundedVisitor<'a>;

    fn make_visitor(&self, target: Writer<'a>) -> Self::Visitor {
        BoundedVisitor(DefaultVisitor::new(target, true))
    }
}

struct BoundedVisitor<'a>(DefaultVisitor<'a>);

fn keep(field: &Field) -> usize {
    if field.name() == "message" {
        MESSAGE_CHARS
    } else {
        FIELD_CHARS
    }
}

impl Visit for BoundedVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.record_str(field, &excerpt_of(value, keep(field)));
    }

    /// As the default format writes an error (`error err.sources=[a, b]`),
    /// cut.
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let mut text = value.to_string();
        let mut sources = std::iter::successors(value.source(), |e| e.source()).peekable();
        if sources.peek().is_some() {
            let list: Vec<String> = sources.map(ToString::to_string).collect();
            text = format!("{text} {}.sources=[{}]", field.name(), list.join(", "));
        }
        self.0
            .record_debug(field, &DebugExcerpt(&format_args!("{text}"), keep(field)));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .record_debug(field, &DebugExcerpt(value, keep(field)));
    }
}

impl VisitOutput<fmt::Result> for BoundedVisitor<'_> {
    fn finish(self) -> fmt::Result {
        self.0.finish()
    }
}

impl VisitFmt for BoundedVisitor<'_> {
    fn writer(&mut self) -> &mut dyn fmt::Write {
        self.0.writer()
    }
}
