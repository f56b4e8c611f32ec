//! Log fields a client cannot make long: every value cut to
//! [`FIELD_CHARS`] characters (a message to [`MESSAGE_CHARS`]) with its full
//! length said, in human lines ([`BoundedFields`]) and in the `span` object
//! of JSON lines ([`JsonSpanFieldsLayer`]). The SERVER span's fields
//! (`url.query`, `user_agent.original`, …) come with every line logged
//! inside a request, so without this a long header would be copied into
//! each of them.

use std::collections::BTreeMap;
use std::fmt;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::field::{MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::fmt::format::{DefaultVisitor, Writer};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::bounded_log::{excerpt_of, DebugExcerpt};

/// How much of one field a log line shows: a message is ours (it may
/// quote a value), any other field may be a client's (the SERVER span's
/// `url.query`, `user_agent.original`, printed with every line logged
/// inside a request).
const MESSAGE_CHARS: usize = 512;
const FIELD_CHARS: usize = 128;

/// The fmt layer's default field format, each value cut to
/// [`FIELD_CHARS`] (a message to [`MESSAGE_CHARS`]) with its full length
/// said: no client can make a line long. Span fields are formatted through
/// it too.
pub(crate) struct BoundedFields;

impl<'a> MakeVisitor<Writer<'a>> for BoundedFields {
    type Visitor = BoundedVisitor<'a>;

    fn make_visitor(&self, target: Writer<'a>) -> Self::Visitor {
        BoundedVisitor(DefaultVisitor::new(target, true))
    }
}

pub(crate) struct BoundedVisitor<'a>(DefaultVisitor<'a>);

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

/// The fields of a span for JSON lines, cut as [`BoundedFields`] cuts them,
/// plus its `name`: what `json-subscriber`'s `with_current_span` prints,
/// bounded.
#[derive(Debug, Default, serde::Serialize)]
#[serde(transparent)]
pub(crate) struct JsonSpanFields(BTreeMap<&'static str, serde_json::Value>);

/// Records each span's [`JsonSpanFields`] in its extensions, for the JSON
/// layer that follows it.
pub(crate) struct JsonSpanFieldsLayer;

impl<S> Layer<S> for JsonSpanFieldsLayer
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut fields = JsonSpanFields::default();
        attrs.record(&mut fields);
        fields
            .0
            .insert("name", serde_json::Value::from(attrs.metadata().name()));
        span.extensions_mut().insert(fields);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut extensions = span.extensions_mut();
        if let Some(fields) = extensions.get_mut::<JsonSpanFields>() {
            values.record(fields);
        }
    }
}

impl Visit for JsonSpanFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        let value = excerpt_of(value, keep(field)).into_owned();
        self.0.insert(field.name(), value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name(), value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name(), value.into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{:?}", DebugExcerpt(value, keep(field)));
        self.0.insert(field.name(), text.into());
    }
}
