//! The small language of a claim: figures (`hedged.p99`,
//! `storm.calls(order-service)`), numbers with units (`250ms`, `10%`),
//! `*` and `/`, and one comparison per condition:
//!
//! ```text
//! hedged.p99 < 0.6 * plain.p99
//! burst.span_max(bulkhead.wait) > 300ms
//! ```
//!
//! Hand-written rather than an expression crate: the grammar is a dozen
//! lines, and knowing every figure a claim reads before anything runs is
//! what lets `--target` refuse a scenario whose figures it cannot measure.

use std::fmt;

/// The pseudo-phase of figures about the whole run (the services' metrics).
pub const WHOLE_RUN: &str = "all";

/// What a figure is measured from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// The suite's spans (only a suite the scenario starts sends them here).
    pub traces: bool,
    /// The services' exported metrics (same).
    pub metrics: bool,
    /// What reached Jaeger through the scenario's own collector.
    pub jaeger: bool,
    /// Traces that no answer names (an orphaned call's): only a receiver
    /// that sees every span finds them, not a lookup by id.
    pub orphans: bool,
    /// The phase's traces followed as `up` follows them (`[follow]`): only
    /// the suite's own receiver sees spans as they arrive.
    pub follow: bool,
}

impl Needs {
    pub fn union(self, other: Needs) -> Needs {
        Needs {
            traces: self.traces || other.traces,
            metrics: self.metrics || other.metrics,
            jaeger: self.jaeger || other.jaeger,
            orphans: self.orphans || other.orphans,
            follow: self.follow || other.follow,
        }
    }
}

/// What is measured of a phase.
#[derive(Debug, Clone, PartialEq)]
pub enum Measure {
    /// Requests sent.
    Requests,
    /// A latency quantile (0.5, 0.9, 0.99; 1 for the max) of the answered
    /// requests, or of those answered with one status.
    Latency {
        q: f64,
        status: Option<u16>,
    },
    /// Share of requests answered 2xx.
    Ok,
    /// Share of requests answered with this status.
    Share(u16),
    /// Requests answered before the first one with this status (none: not measured).
    BeforeFirst(u16),
    /// Share of answers whose `traceresponse` continues the trace the phase's
    /// `traceparent` header started.
    Joined,
    /// Traces the phase's requests made, per request.
    TracesPerRequest,
    /// SERVER spans of this service, per request: the calls it received.
    Calls(String),
    /// The longest span of this name.
    SpanMax(String),
    /// The median duration of the spans of this name.
    SpanP50(String),
    /// The mean share of the critical path held by this service.
    CriticalShare(String),
    /// The share of the critical path this operation (`SERVICE SPAN-NAME`)
    /// holds in the phase's slowest traces (at or over p99) or its typical
    /// ones (at or under p50), as `latency-lab explain` computes it.
    TailShare(String),
    TypicalShare(String),
    /// Share of the requests whose trace, followed as `up` follows it, had
    /// all its spans the first time it would have printed.
    WholeFirst,
    /// Share of the requests whose trace would have printed again (spans of
    /// it came after its first print).
    PrintedAgain,
    /// Share of the requests whose trace reached Jaeger through the
    /// scenario's collector (what a sampler kept).
    Kept,
    /// Share of the requests whose trace is whole (`trace_view::completeness`)
    /// in exactly one of the scenario's Jaegers, and in no other.
    Whole,
    /// A quantile of `http.server.request.duration` as this service exported
    /// it (whole run: `all.metric_p99(profile-aggregator)`).
    Metric {
        q: f64,
        service: String,
    },
}

impl Measure {
    fn needs(&self) -> Needs {
        match self {
            Measure::TracesPerRequest => Needs {
                traces: true,
                orphans: true,
                ..Needs::default()
            },
            Measure::Calls(_)
            | Measure::TailShare(_)
            | Measure::TypicalShare(_)
            | Measure::SpanMax(_)
            | Measure::SpanP50(_)
            | Measure::CriticalShare(_) => Needs {
                traces: true,
                ..Needs::default()
            },
            Measure::Metric { .. } => Needs {
                metrics: true,
                ..Needs::default()
            },
            Measure::WholeFirst | Measure::PrintedAgain => Needs {
                follow: true,
                ..Needs::default()
            },
            Measure::Kept | Measure::Whole => Needs {
                jaeger: true,
                ..Needs::default()
            },
            _ => Needs::default(),
        }
    }

    fn parse(name: &str, arg: Option<&str>) -> Result<Measure, String> {
        let status = |arg: Option<&str>| -> Result<u16, String> {
            let text = arg.ok_or_else(|| format!("{name}(STATUS) needs a status"))?;
            text.parse::<u16>()
                .ok()
                .filter(|s| (100..600).contains(s))
                .ok_or_else(|| format!("{name}({text}): not an HTTP status"))
        };
        let text = |arg: Option<&str>| -> Result<String, String> {
            arg.filter(|a| !a.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| format!("{name}(…) needs an argument"))
        };
        let quantile = match name {
            "p50" => Some(0.5),
            "p90" => Some(0.9),
            "p99" => Some(0.99),
            "max" => Some(1.0),
            _ => None,
        };
        if let Some(q) = quantile {
            let status = arg.map(|_| status(arg)).transpose()?;
            return Ok(Measure::Latency { q, status });
        }
        let no_arg = |m: Measure| match arg {
            Some(_) => Err(format!("{name} takes no argument")),
            None => Ok(m),
        };
        match name {
            "requests" => no_arg(Measure::Requests),
            "ok" => no_arg(Measure::Ok),
            "joined" => no_arg(Measure::Joined),
            "traces_per_request" => no_arg(Measure::TracesPerRequest),
            "kept" => no_arg(Measure::Kept),
            "whole" => no_arg(Measure::Whole),
            "whole_first" => no_arg(Measure::WholeFirst),
            "printed_again" => no_arg(Measure::PrintedAgain),
            "share" => Ok(Measure::Share(status(arg)?)),
            "before_first" => Ok(Measure::BeforeFirst(status(arg)?)),
            "calls" => Ok(Measure::Calls(text(arg)?)),
            "span_max" => Ok(Measure::SpanMax(text(arg)?)),
            "span_p50" => Ok(Measure::SpanP50(text(arg)?)),
            "critical_share" => Ok(Measure::CriticalShare(text(arg)?)),
            "tail_share" => Ok(Measure::TailShare(text(arg)?)),
            "typical_share" => Ok(Measure::TypicalShare(text(arg)?)),
            "metric_p50" => Ok(Measure::Metric { q: 0.5, service: text(arg)? }),
            "metric_p99" => Ok(Measure::Metric { q: 0.99, service: text(arg)? }),
            _ => Err(format!(
                "unknown measure {name:?} (known: requests, p50, p90, p99, max, p50(STATUS)…, ok, share(STATUS), before_first(STATUS), joined, kept, whole, whole_first, printed_again, traces_per_request, calls(SERVICE), span_max(NAME), span_p50(NAME), critical_share(SERVICE), tail_share(OPERATION), typical_share(OPERATION), metric_p50(SERVICE), metric_p99(SERVICE))"
            )),
        }
    }

    /// The unit its value is in.
    pub fn unit(&self) -> Unit {
        match self {
            Measure::Latency { .. }
            | Measure::SpanMax(_)
            | Measure::SpanP50(_)
            | Measure::Metric { .. } => Unit::Seconds,
            Measure::Ok
            | Measure::Share(_)
            | Measure::Joined
            | Measure::Kept
            | Measure::Whole
            | Measure::WholeFirst
            | Measure::PrintedAgain
            | Measure::TailShare(_)
            | Measure::TypicalShare(_)
            | Measure::CriticalShare(_) => Unit::Fraction,
            Measure::Requests | Measure::BeforeFirst(_) => Unit::Count,
            Measure::TracesPerRequest | Measure::Calls(_) => Unit::PerRequest,
        }
    }
}

/// `phase.measure` or `phase.measure(arg)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    pub phase: String,
    pub measure: Measure,
    /// As written, for the verdict's lines and `--json`.
    pub text: String,
}

/// How a value prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Seconds,
    /// 0 to 1, printed as a percentage.
    Fraction,
    Count,
    /// A count divided by the requests sent.
    PerRequest,
    /// Seconds divided by seconds.
    Ratio,
    /// A bare number.
    Number,
}

/// A figure's or a literal's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Value {
    pub value: f64,
    pub unit: Unit,
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.value;
        match self.unit {
            Unit::Seconds => f.write_str(&crate::load::format_duration(
                std::time::Duration::from_secs_f64(v.max(0.0)),
            )),
            Unit::Fraction => {
                let pct = v * 100.0;
                if pct == pct.round() {
                    write!(f, "{pct:.0}%")
                } else {
                    write!(f, "{pct:.1}%")
                }
            }
            Unit::Count => write!(f, "{v:.0}"),
            Unit::PerRequest if v == v.round() => write!(f, "{v:.0}"),
            Unit::PerRequest => write!(f, "{v:.2}"),
            Unit::Ratio => write!(f, "{v:.1}×"),
            Unit::Number => write!(f, "{v}"),
        }
    }
}

/// A term of a product: a figure or a literal.
#[derive(Debug, Clone, PartialEq)]
enum Term {
    Figure(Figure),
    Literal(Value),
}

/// `a * b / c …`, evaluated left to right.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    first: Term,
    rest: Vec<(char, Term)>,
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

impl Cmp {
    fn holds(self, left: f64, right: f64) -> bool {
        match self {
            Cmp::Lt => left < right,
            Cmp::Le => left <= right,
            Cmp::Gt => left > right,
            Cmp::Ge => left >= right,
            Cmp::Eq => (left - right).abs() < 1e-9,
        }
    }

    fn text(self) -> &'static str {
        match self {
            Cmp::Lt => "<",
            Cmp::Le => "≤",
            Cmp::Gt => ">",
            Cmp::Ge => "≥",
            Cmp::Eq => "==",
        }
    }
}

/// One condition of a claim.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub text: String,
    left: Expr,
    cmp: Cmp,
    right: Expr,
}

/// How a condition came out.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub text: String,
    pub left: Option<Value>,
    pub right: Option<Value>,
    pub holds: bool,
    /// `hedged.p99 = 460.2 ms < 0.6 × plain.p99 = 724.1 ms`.
    pub shown: String,
}

/// Looks a figure up; `None` when it could not be measured (no span of that
/// name, no answer with that status, …).
pub trait Figures {
    fn figure(&self, figure: &Figure) -> Option<Value>;
}

impl Expr {
    fn figures(&self) -> impl Iterator<Item = &Figure> {
        std::iter::once(&self.first)
            .chain(self.rest.iter().map(|(_, t)| t))
            .filter_map(|t| match t {
                Term::Figure(f) => Some(f),
                Term::Literal(_) => None,
            })
    }

    fn needs(&self) -> Needs {
        self.figures()
            .map(|f| f.measure.needs())
            .fold(Needs::default(), Needs::union)
    }

    pub fn eval(&self, figures: &dyn Figures) -> Option<Value> {
        let term = |t: &Term| match t {
            Term::Figure(f) => figures.figure(f),
            Term::Literal(v) => Some(*v),
        };
        let mut acc = term(&self.first)?;
        for (op, t) in &self.rest {
            let v = term(t)?;
            acc = match op {
                '*' => Value {
                    value: acc.value * v.value,
                    unit: product_unit(acc.unit, v.unit),
                },
                _ => Value {
                    value: if v.value == 0.0 {
                        return None;
                    } else {
                        acc.value / v.value
                    },
                    unit: quotient_unit(acc.unit, v.unit),
                },
            };
        }
        Some(acc)
    }

    /// The expression with each figure's value beside it.
    fn shown(&self, figures: &dyn Figures) -> String {
        let term = |t: &Term| match t {
            Term::Figure(f) => match figures.figure(f) {
                Some(v) => format!("{} = {v}", f.text),
                None => format!("{} (not measured)", f.text),
            },
            Term::Literal(v) => v.to_string(),
        };
        let mut out = term(&self.first);
        for (op, t) in &self.rest {
            out.push_str(if *op == '*' { " × " } else { " ÷ " });
            out.push_str(&term(t));
        }
        out
    }
}

fn product_unit(a: Unit, b: Unit) -> Unit {
    match (a, b) {
        (Unit::Number, u) | (u, Unit::Number) => u,
        (u, Unit::Fraction) | (Unit::Fraction, u) => u,
        _ => Unit::Number,
    }
}

fn quotient_unit(a: Unit, b: Unit) -> Unit {
    match (a, b) {
        (u, Unit::Number) => u,
        (x, y) if x == y => Unit::Ratio,
        _ => Unit::Number,
    }
}

impl Condition {
    pub fn needs(&self) -> Needs {
        self.left.needs().union(self.right.needs())
    }

    pub fn figures(&self) -> impl Iterator<Item = &Figure> {
        self.left.figures().chain(self.right.figures())
    }

    pub fn check(&self, figures: &dyn Figures) -> Checked {
        let left = self.left.eval(figures);
        let right = self.right.eval(figures);
        let holds = match (left, right) {
            (Some(l), Some(r)) => self.cmp.holds(l.value, r.value),
            _ => false,
        };
        let mut shown = format!(
            "{} {} {}",
            self.left.shown(figures),
            self.cmp.text(),
            self.right.shown(figures)
        );
        if !self.right.rest.is_empty() {
            if let Some(r) = right {
                shown.push_str(&format!(" ({r})"));
            }
        }
        Checked {
            text: self.text.clone(),
            left,
            right,
            holds,
            shown,
        }
    }
}

/// The claim's sentence, with `{expression}` holes.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Hole(Expr),
}

impl Template {
    pub fn parse(text: &str, phases: &[&str]) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            parts.push(Part::Text(rest[..open].to_owned()));
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| format!("an unclosed {{ in {text:?}"))?;
            let inner = &rest[open + 1..open + close];
            parts.push(Part::Hole(parse_expr(inner, phases)?));
            rest = &rest[open + close + 1..];
        }
        parts.push(Part::Text(rest.to_owned()));
        Ok(Template { parts })
    }

    pub fn needs(&self) -> Needs {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Hole(e) => e.needs(),
                Part::Text(_) => Needs::default(),
            })
            .fold(Needs::default(), Needs::union)
    }

    pub fn figures(&self) -> impl Iterator<Item = &Figure> {
        self.parts.iter().flat_map(|p| match p {
            Part::Hole(e) => e.figures().collect::<Vec<_>>(),
            Part::Text(_) => Vec::new(),
        })
    }

    /// The sentence; a figure that could not be measured reads `n/a`.
    pub fn fill(&self, figures: &dyn Figures) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.clone(),
                Part::Hole(e) => e
                    .eval(figures)
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "n/a".to_owned()),
            })
            .collect()
    }
}

/// Reads `left CMP right`.
pub fn parse_condition(text: &str, phases: &[&str]) -> Result<Condition, String> {
    for (op, cmp) in [
        ("<=", Cmp::Le),
        (">=", Cmp::Ge),
        ("==", Cmp::Eq),
        ("<", Cmp::Lt),
        (">", Cmp::Gt),
    ] {
        if let Some((left, right)) = text.split_once(op) {
            return Ok(Condition {
                text: text.to_owned(),
                left: parse_expr(left, phases)?,
                cmp,
                right: parse_expr(right, phases)?,
            });
        }
    }
    Err(format!("{text:?}: no comparison (<, <=, >, >=, ==)"))
}

/// Reads `term (* | /) term …`.
fn parse_expr(text: &str, phases: &[&str]) -> Result<Expr, String> {
    let mut terms = Vec::new();
    let mut ops = Vec::new();
    let mut current = String::new();
    let mut depth = 0;
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            '*' | '/' if depth == 0 => {
                terms.push(parse_term(&current, phases)?);
                ops.push(c);
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    terms.push(parse_term(&current, phases)?);
    let mut terms = terms.into_iter();
    let first = terms.next().expect("one term at least");
    Ok(Expr {
        first,
        rest: ops.into_iter().zip(terms).collect(),
    })
}

fn parse_term(text: &str, phases: &[&str]) -> Result<Term, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("an empty term".to_owned());
    }
    if text.starts_with(|c: char| c.is_ascii_digit()) {
        return parse_literal(text).map(Term::Literal);
    }
    let (phase, rest) = text
        .split_once('.')
        .ok_or_else(|| format!("{text:?}: a figure is PHASE.MEASURE"))?;
    if phase != WHOLE_RUN && !phases.contains(&phase) {
        return Err(format!(
            "{text:?}: no phase {phase:?} (phases: {}, and {WHOLE_RUN} for the whole run)",
            phases.join(", ")
        ));
    }
    let (name, arg) = match rest.split_once('(') {
        Some((name, arg)) => {
            let arg = arg
                .strip_suffix(')')
                .ok_or_else(|| format!("{text:?}: an unclosed ("))?;
            (name, Some(arg.trim()))
        }
        None => (rest, None),
    };
    let measure = Measure::parse(name, arg).map_err(|e| format!("{text:?}: {e}"))?;
    let whole_run = matches!(measure, Measure::Metric { .. });
    if whole_run != (phase == WHOLE_RUN) {
        return Err(format!(
            "{text:?}: metrics are of the whole run ({WHOLE_RUN}.metric_p99(SERVICE)), everything else of a phase"
        ));
    }
    Ok(Term::Figure(Figure {
        phase: phase.to_owned(),
        measure,
        text: text.to_owned(),
    }))
}

/// `0.8`, `3`, `250ms`, `1.5s`, `10%`.
fn parse_literal(text: &str) -> Result<Value, String> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?}: not a number"))?;
    let (value, unit) = match unit.trim() {
        "" => (value, Unit::Number),
        "ms" => (value / 1000.0, Unit::Seconds),
        "s" => (value, Unit::Seconds),
        "%" => (value / 100.0, Unit::Fraction),
        other => return Err(format!("{text:?}: unknown unit {other:?} (ms, s, %)")),
    };
    Ok(Value { value, unit })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;
    impl Figures for Fixed {
        fn figure(&self, figure: &Figure) -> Option<Value> {
            let value = match (figure.phase.as_str(), &figure.measure) {
                ("a", Measure::Latency { q, .. }) if *q == 0.5 => 0.2,
                ("b", Measure::Latency { q, .. }) if *q == 0.5 => 0.3,
                ("b", Measure::Share(503)) => 0.25,
                _ => return None,
            };
            Some(Value {
                value,
                unit: figure.measure.unit(),
            })
        }
    }

    #[test]
    fn a_condition_compares_figures_and_literals() {
        let phases = ["a", "b"];
        let c = parse_condition("a.p50 < 0.8 * b.p50", &phases).unwrap();
        let checked = c.check(&Fixed);
        assert!(checked.holds, "{checked:?}");
        assert_eq!(
            checked.shown,
            "a.p50 = 200.0 ms < 0.8 × b.p50 = 300.0 ms (240.0 ms)"
        );
        assert!(
            !parse_condition("a.p50 > 250ms", &phases)
                .unwrap()
                .check(&Fixed)
                .holds
        );
        assert!(
            parse_condition("b.share(503) >= 25%", &phases)
                .unwrap()
                .check(&Fixed)
                .holds
        );
        assert_eq!(
            parse_condition("b.p50 / a.p50 >= 1.5", &phases)
                .unwrap()
                .check(&Fixed)
                .left,
            Some(Value {
                value: 0.3 / 0.2,
                unit: Unit::Ratio
            })
        );
    }

    #[test]
    fn a_figure_that_was_not_measured_makes_the_condition_fail() {
        let c = parse_condition("b.before_first(503) == 5", &["b"]).unwrap();
        let checked = c.check(&Fixed);
        assert!(!checked.holds);
        assert!(checked.shown.contains("not measured"), "{}", checked.shown);
    }

    #[test]
    fn mistakes_are_named() {
        let phases = ["a"];
        for (text, says) in [
            ("a.p50 250ms", "no comparison"),
            ("c.p50 < 1s", "no phase \"c\""),
            ("a.p42 < 1s", "unknown measure"),
            ("a.share < 1", "needs a status"),
            ("a.share(7) < 1", "not an HTTP status"),
            ("a.p50 < 1.2.3s", "not a number"),
            ("a.p50 < 3h", "unknown unit"),
            ("a.metric_p99(x) < 1s", "whole run"),
            ("all.p50 < 1s", "whole run"),
        ] {
            let error = parse_condition(text, &phases).unwrap_err();
            assert!(error.contains(says), "{text}: {error}");
        }
    }

    #[test]
    fn a_template_fills_its_holes_and_says_what_it_reads() {
        let t = Template::parse(
            "{a.p50} vs {b.p50}: {b.p50 / a.p50}, {b.calls(x)}",
            &["a", "b"],
        )
        .unwrap();
        assert_eq!(t.fill(&Fixed), "200.0 ms vs 300.0 ms: 1.5×, n/a");
        assert!(t.needs().traces);
        assert!(!t.needs().metrics);
    }
}
