//! `latency-lab load`: a load generator that a latency engineer can trust,
//! printing the latency *distribution* — p50 … max and a histogram — because
//! an average hides exactly the requests this suite is about.
//!
//! By default it is an open loop: requests leave on a fixed schedule
//! (`--rate`) whatever the target does, and each latency counts from when
//! the request was *due*, so a stall shows in the percentiles instead of
//! silently slowing the load down (coordinated omission). `--concurrency N`
//! is the closed loop instead, labelled as such. Every answer's
//! `traceresponse` header is kept, so the slowest requests can be looked up.
//!
//! * [`engine`]: sends the requests and records each one ([`record::Run`]).
//! * [`schedule`]: when each open-loop request is due (`--rate`, ramps).
//! * [`variants`]: `--compare`'s query and header variants.
//! * [`gate`]: `--fail-if`, for CI.
//! * [`quantiles`]: the HDR histogram of a run's latencies.
//! * this module: the flags, and the text until the reports take over.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use hdrhistogram::Histogram;
use service_kit::cli::parse_duration;
use tokio_util::sync::CancellationToken;
use trace_view::TraceId;

pub mod engine;
pub mod gate;
pub mod output;
pub mod plot;
pub mod progress;
pub mod quantiles;
pub mod record;
pub mod report;
pub mod schedule;
pub mod summary;
pub mod variants;

use engine::{Loop, Plan, Warmup};
use record::{Outcome, Pacing, Run};
use schedule::Rate;

#[derive(Debug, Clone, Args)]
#[command(after_long_help = LOAD_EXAMPLES)]
pub struct LoadArgs {
    /// The URL to GET, e.g. 'http://127.0.0.1:8080/user-profile/42?mode=concurrent'.
    #[arg(value_parser = parse_http_url)]
    pub url: reqwest::Url,
    /// Open loop (the default): requests per second, sent on a fixed schedule
    /// whatever the answers do, each latency counted from its intended send
    /// time; a ramp `50..500` goes linearly from one to the other over
    /// `--duration`. [default: 50]
    #[arg(long, value_parser = schedule::parse_rate, conflicts_with = "concurrency")]
    pub rate: Option<Rate>,
    /// How long to send (the measured part, after `--warmup`). Without it
    /// and without `--requests`: 10s.
    #[arg(long, value_parser = parse_positive_duration)]
    pub duration: Option<Duration>,
    /// How many requests to measure (with `--duration`: whichever ends first).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub requests: Option<u64>,
    /// Closed loop instead: N workers, each sending its next request when its
    /// answer is in. A stalled target then gets fewer requests and its stall
    /// mostly vanishes from the percentiles (coordinated omission); every
    /// output says "closed loop".
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub concurrency: Option<u64>,
    /// Open loop: at most this many requests in flight. A request due while
    /// they are is sent as soon as one ends, counted as late (its latency
    /// still counts from when it was due); none is dropped.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u64).range(1..=10_000), conflicts_with = "concurrency")]
    pub max_in_flight: u64,
    /// Give up on one request after this long (counted as a timeout).
    #[arg(long, default_value = "30s", value_parser = parse_positive_duration)]
    pub request_timeout: Duration,
    /// Extra request header, `NAME: VALUE` (repeatable), e.g.
    /// 'baggage: latency.orders=900ms'.
    #[arg(long = "header", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
    /// Run variants side by side, interleaved under one schedule (request i
    /// goes to variant i mod n). Each is query parameters merged into the
    /// URL's query and/or `header=NAME: VALUE` items, separated by `;`, e.g.
    /// 'mode=sequential' 'mode=concurrent&hedge_after=p95'
    /// 'mode=concurrent;header=baggage: latency.orders=900ms'.
    #[arg(long, num_args = 1.., value_name = "VARIANT", value_parser = variants::parse_variant)]
    pub compare: Vec<variants::VariantSpec>,
    /// Requests sent first and left out of the results: a duration (`5s`) or
    /// a count (`100`). [default: 5s with --compare, none otherwise]
    #[arg(long, value_parser = parse_warmup)]
    pub warmup: Option<Warmup>,
    /// Exit non-zero when the run (each variant) meets this condition
    /// (repeatable): 'p99>300ms', any quantile ('p99.9>1s'), 'max>2s',
    /// 'errors>1%' (share of requests) or 'errors>5' (a count); also >=, <, <=.
    #[arg(long = "fail-if", value_name = "CONDITION", value_parser = gate::parse_condition)]
    pub fail_if: Vec<gate::Condition>,
    /// Width of the histogram in columns.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(40..))]
    pub width: u16,
    /// How many of the slowest requests to list, each with its trace.
    #[arg(long, default_value_t = 5)]
    pub slowest: usize,
    /// Jaeger's UI, for the slowest requests' trace links.
    #[arg(long, env = "LATENCY_LAB_JAEGER_URL", default_value = report::DEFAULT_JAEGER_URL)]
    pub jaeger_url: String,
    /// Also write the run to this folder: requests.csv (one row per
    /// request), summary.json, percentiles.svg (latency by percentile on a
    /// "nines" axis) and latency-over-time.svg (a stall shows as a wall).
    #[arg(long, value_name = "DIR")]
    pub out: Option<std::path::PathBuf>,
}

const LOAD_EXAMPLES: &str = "Examples:
  latency-lab load 'http://127.0.0.1:8080/user-profile/42' --rate 200 --duration 30s
  latency-lab load URL --rate 50..500 --duration 1m           (a ramp)
  latency-lab load URL --concurrency 8 --requests 1000        (closed loop)
  latency-lab load 'http://127.0.0.1:8080/user-profile/42' --rate 100 --duration 20s \\
      --compare 'mode=sequential' 'mode=concurrent' 'mode=concurrent;header=baggage: latency.orders=900ms'
  latency-lab load URL --rate 100 --duration 10s --fail-if 'p99>300ms' --fail-if 'errors>1%'";

impl LoadArgs {
    /// The engine's plan from the flags.
    pub fn plan(&self) -> anyhow::Result<Plan> {
        let loop_ = match self.concurrency {
            Some(concurrency) => Loop::Closed { concurrency },
            None => Loop::Open {
                rate: self.rate.unwrap_or(DEFAULT_RATE),
                max_in_flight: self.max_in_flight,
            },
        };
        if self.rate.is_some_and(|r| r.is_ramp()) && self.duration.is_none() {
            anyhow::bail!("a ramp (--rate A..B) needs --duration: the ramp goes over it");
        }
        let duration = match (self.requests, self.duration) {
            (None, None) => Some(DEFAULT_DURATION),
            (_, d) => d,
        };
        let warmup = self.warmup.unwrap_or(if self.compare.is_empty() {
            Warmup::NONE
        } else {
            Warmup::For(Duration::from_secs(5))
        });
        Ok(Plan {
            loop_,
            variants: variants::variants(&self.url, &self.headers, &self.compare),
            requests: self.requests,
            duration,
            warmup,
            request_timeout: self.request_timeout,
            observer: None,
        })
    }
}

const DEFAULT_RATE: Rate = Rate {
    start: 50.0,
    end: 50.0,
};
const DEFAULT_DURATION: Duration = Duration::from_secs(10);

/// What a run measured for one variant, in the shape the text prints.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// Latency of every answered request (any status), in µs.
    pub latencies: Histogram<u64>,
    /// Answers by HTTP status.
    pub statuses: BTreeMap<u16, u64>,
    /// Requests without an answer, by kind (`timeout`, `connect`, …).
    pub failures: BTreeMap<&'static str, u64>,
    pub elapsed: Duration,
    /// The slowest answered request and its trace id (from `traceresponse`).
    pub slowest: Option<(Duration, Option<TraceId>)>,
    /// The trace id of every answered request that had one.
    pub trace_ids: Vec<TraceId>,
}

impl LoadReport {
    /// The records of `variant` in `run`.
    pub fn of(run: &Run, variant: usize) -> Self {
        let mut report = LoadReport {
            latencies: quantiles::empty(),
            statuses: BTreeMap::new(),
            failures: BTreeMap::new(),
            elapsed: run.elapsed,
            slowest: None,
            trace_ids: Vec::new(),
        };
        for r in run.records.iter().filter(|r| r.variant == variant) {
            match &r.outcome {
                Outcome::Status(status) => {
                    quantiles::record(&mut report.latencies, r.latency);
                    *report.statuses.entry(*status).or_default() += 1;
                    if report.slowest.as_ref().is_none_or(|(d, _)| r.latency > *d) {
                        report.slowest = Some((r.latency, r.trace_id));
                    }
                    report.trace_ids.extend(r.trace_id);
                }
                Outcome::Timeout => *report.failures.entry("timeout").or_default() += 1,
                Outcome::Connect => *report.failures.entry("connect").or_default() += 1,
                Outcome::Other(_) => *report.failures.entry("other").or_default() += 1,
            }
        }
        report
    }

    pub fn answered(&self) -> u64 {
        self.statuses.values().sum()
    }

    /// The latency at quantile `q` (0..=1) of the answered requests.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        quantiles::quantile(&self.latencies, q)
    }
}

/// How the requests were paced, and (open loop) how well: requests held
/// back by `--max-in-flight`, and the generator's own scheduling error
/// (send − intended) at p50/p99/max. A closed loop is said to be one.
pub fn pacing_line(run: &Run) -> String {
    if let Pacing::Closed { concurrency } = run.pacing {
        return format!(
            "  pacing   closed loop: {concurrency} in flight, each sent when the previous answer is in (a stall delays the load, not the measurements: coordinated omission)"
        );
    }
    let mut lag = quantiles::empty();
    for d in &run.send_lag {
        quantiles::record(&mut lag, *d);
    }
    let lag_text = match (
        quantiles::quantile(&lag, 0.5),
        quantiles::quantile(&lag, 0.99),
        quantiles::max(&lag),
    ) {
        (Some(p50), Some(p99), Some(max)) => format!(
            "send lag p50 {}   p99 {}   max {}",
            format_duration(p50),
            format_duration(p99),
            format_duration(max)
        ),
        _ => "no send lag measured".to_owned(),
    };
    format!(
        "  pacing   open loop; {lag_text}; {} sent late (--max-in-flight reached)",
        run.late
    )
}

/// The report as text: a summary line, the percentiles, a histogram.
pub fn render(report: &LoadReport, title: &str, width: usize) -> String {
    let mut out = String::new();
    let total = report.answered() + report.failures.values().sum::<u64>();
    let rate = total as f64 / report.elapsed.as_secs_f64().max(1e-9);
    let _ = writeln!(
        out,
        "load: {title} — {total} requests in {}, {rate:.1}/s",
        format_duration(report.elapsed)
    );
    let mut outcomes: Vec<String> = report
        .statuses
        .iter()
        .map(|(status, n)| format!("{status} ×{n}"))
        .collect();
    outcomes.extend(
        report
            .failures
            .iter()
            .map(|(kind, n)| format!("{kind} ×{n}")),
    );
    let _ = writeln!(out, "  answers  {}", outcomes.join(", "));
    if report.latencies.is_empty() {
        let _ = writeln!(out, "  no request was answered");
        return out;
    }
    let points: Vec<String> = [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999)]
        .iter()
        .filter_map(|(name, q)| Some(format!("{name} {}", format_duration(report.quantile(*q)?))))
        .chain(std::iter::once(format!(
            "max {}",
            format_duration(Duration::from_micros(
                report.latencies.median_equivalent(report.latencies.max())
            ))
        )))
        .collect();
    let _ = writeln!(out, "  latency  {}", points.join("   "));
    out.push_str(&report::histogram(&report.latencies, width));
    out
}

/// `812 µs`, `204.1 ms`, `1.205 s`.
pub fn format_duration(d: Duration) -> String {
    let us = d.as_micros();
    if us < 1000 {
        format!("{us} µs")
    } else if us < 1_000_000 {
        format!("{:.1} ms", us as f64 / 1000.0)
    } else {
        format!("{:.3} s", us as f64 / 1_000_000.0)
    }
}

fn parse_http_url(value: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(value.trim())
        .map_err(|e| format!("{e}: expected e.g. http://127.0.0.1:8080/user-profile/42"))?;
    if url.scheme() != "http" || url.host_str().is_none() {
        return Err(format!("{value:?}: expected an http:// URL with a host"));
    }
    Ok(url)
}

fn parse_header(value: &str) -> Result<(String, String), String> {
    let (name, val) = value
        .split_once(':')
        .ok_or_else(|| format!("{value:?}: expected NAME: VALUE"))?;
    let name = name.trim();
    reqwest::header::HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("{name:?} is not a valid header name"))?;
    reqwest::header::HeaderValue::from_str(val.trim())
        .map_err(|_| format!("the value of {name} is not a valid header value"))?;
    Ok((name.to_owned(), val.trim().to_owned()))
}

fn parse_positive_duration(value: &str) -> Result<Duration, String> {
    let d = parse_duration(value)?;
    if d.is_zero() {
        return Err(format!("{value:?} is no time at all: above 0"));
    }
    Ok(d)
}

/// `--warmup`: `5s` (a duration) or `100` (a count of requests).
fn parse_warmup(value: &str) -> Result<Warmup, String> {
    match value.trim().parse::<u64>() {
        Ok(n) => Ok(Warmup::Count(n)),
        Err(_) => parse_duration(value)
            .map(Warmup::For)
            .map_err(|e| format!("{e}; or a count of requests, e.g. 100")),
    }
}

/// An HTTP client for load: no proxy, and as many connections as requests
/// in flight (each kept alive).
pub fn client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .build()
        .context("cannot build an HTTP client")
}

/// A token cancelled by the first Ctrl-C.
fn ctrl_c_token() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            cancel.cancel();
        }
    });
    token
}

/// `latency-lab load URL …`
pub async fn command(args: LoadArgs) -> anyhow::Result<()> {
    let mut plan = args.plan()?;
    let expected = plan.requests.or_else(|| match (plan.loop_, plan.duration) {
        // A linear ramp sends its mean rate for the whole duration.
        (engine::Loop::Open { rate, .. }, Some(d)) => {
            Some(((rate.start + rate.end) / 2.0 * d.as_secs_f64()).round() as u64)
        }
        _ => None,
    });
    let progress = std::sync::Arc::new(std::sync::Mutex::new(progress::Progress::new(expected)));
    plan.observer = Some(progress.clone());
    let client = client()?;
    let interrupt = ctrl_c_token();
    let run = engine::run(&client, &plan, interrupt).await;
    progress
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .finish();
    let run = run.with_context(|| format!("no request to {} was answered", args.url))?;
    let options = report::ReportOptions {
        slowest: args.slowest,
        jaeger_url: Some(args.jaeger_url.clone()),
        traces_dir: None,
        width: usize::from(args.width),
    };
    print!("{}", report::render(&run, &options));
    if let Some(dir) = &args.out {
        let written = output::write_dir(&run, dir)
            .with_context(|| format!("cannot write the run to {}", dir.display()))?;
        for path in written {
            println!("wrote {}", path.display());
        }
    }
    if !run
        .records
        .iter()
        .any(|r| matches!(r.outcome, Outcome::Status(_)))
    {
        anyhow::bail!("no request to {} was answered", args.url);
    }
    let missed = gate::evaluate(&run, &args.fail_if);
    for m in &missed {
        eprintln!("{m}");
    }
    if !missed.is_empty() {
        anyhow::bail!(
            "{} of {} --fail-if conditions met: the run fails",
            missed.len(),
            args.fail_if.len() * run.variants.len()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(latencies_ms: &[u64], failures: &[(&'static str, u64)]) -> LoadReport {
        let record = |latency: Duration, outcome: Outcome, trace_id| record::Record {
            variant: 0,
            intended: Duration::ZERO,
            sent: Duration::ZERO,
            latency,
            outcome,
            trace_id,
        };
        let records = latencies_ms
            .iter()
            .enumerate()
            .map(|(i, ms)| {
                record(
                    Duration::from_millis(*ms),
                    Outcome::Status(if *ms >= 1000 { 504 } else { 200 }),
                    Some(TraceId(i as u128)),
                )
            })
            .chain(failures.iter().flat_map(|(kind, n)| {
                let outcome = match *kind {
                    "timeout" => Outcome::Timeout,
                    "connect" => Outcome::Connect,
                    other => Outcome::Other(other.to_owned()),
                };
                (0..*n).map(move |_| record(Duration::ZERO, outcome.clone(), None))
            }))
            .collect();
        let run = Run {
            pacing: Pacing::Closed { concurrency: 1 },
            variants: variants::variants(
                &reqwest::Url::parse("http://127.0.0.1/").unwrap(),
                &[],
                &[],
            ),
            elapsed: Duration::from_secs(2),
            records,
            late: 0,
            interrupted: false,
            send_lag: Vec::new(),
        };
        LoadReport::of(&run, 0)
    }

    #[test]
    fn percentiles_see_the_tail_the_mean_hides() {
        // 98 fast answers and 2 spikes: the mean is 218 ms, p50 200 ms, p99 1.2 s.
        let mut values = vec![200; 98];
        values.extend([1200, 1200]);
        let r = report(&values, &[]);
        let ms = |q: f64| r.quantile(q).unwrap().as_millis();
        assert_eq!(ms(0.5), 200);
        assert_eq!(ms(0.9), 200);
        assert!((1195..=1205).contains(&ms(0.99)), "{}", ms(0.99));
        assert_eq!(r.statuses.get(&200), Some(&98));
        assert_eq!(r.statuses.get(&504), Some(&2));
        let (slowest, trace) = r.slowest.unwrap();
        assert_eq!(slowest, Duration::from_millis(1200));
        assert_eq!(trace, Some(TraceId(98)));
        assert_eq!(trace.unwrap().to_string(), format!("{:032x}", 98));
        assert_eq!(r.trace_ids.len(), 100);
    }

    #[test]
    fn rendering_shows_two_humps_for_a_bimodal_tail() {
        let mut values = vec![200; 90];
        values.extend([1200; 10]);
        let text = render(&report(&values, &[("timeout", 3)]), "test", 80);
        assert!(text.contains("103 requests"), "{text}");
        assert!(text.contains("200 ×90, 504 ×10, timeout ×3"), "{text}");
        assert!(text.contains("p50 200.0 ms"), "{text}");
        assert!(text.contains("max 1.200 s"), "{text}");
        let rows: Vec<&str> = text.lines().skip(3).collect();
        assert_eq!(rows.len(), 10, "{text}");
        let bars: Vec<usize> = rows.iter().map(|r| r.matches('█').count()).collect();
        assert!(bars[0] > 0 && bars[9] > 0, "{text}");
        assert!(bars[1..9].iter().all(|b| *b == 0), "{text}");
        assert!(bars[0] > bars[9], "{text}");
        assert!(rows.iter().all(|r| r.chars().count() <= 80), "{text}");
    }

    #[test]
    fn nothing_answered_is_said_plainly() {
        let text = render(&report(&[], &[("connect", 5)]), "dead", 80);
        assert!(text.contains("connect ×5"), "{text}");
        assert!(text.contains("no request was answered"), "{text}");
    }

    #[test]
    fn bad_urls_and_headers_are_refused() {
        assert!(parse_http_url("https://x/").is_err());
        assert!(parse_http_url("127.0.0.1:8080").is_err());
        assert!(parse_http_url("http://127.0.0.1:8080/user-profile/1").is_ok());
        assert_eq!(
            parse_header("baggage: latency.orders=900ms").unwrap(),
            ("baggage".to_owned(), "latency.orders=900ms".to_owned())
        );
        assert!(parse_header("no colon").is_err());
        assert!(parse_header("bad name: x").is_err());
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(format_duration(Duration::from_micros(812)), "812 µs");
        assert_eq!(format_duration(Duration::from_micros(204_060)), "204.1 ms");
        assert_eq!(format_duration(Duration::from_micros(1_205_300)), "1.205 s");
    }
}
