//! `latency-lab load`: a small, bounded load generator that prints the
//! latency *distribution* — p50, p90, p99, p99.9, max and a histogram —
//! because an average hides exactly the requests this suite is about.
//!
//! It is a closed loop: `concurrency` workers each send one request, wait for
//! its answer, and send the next, until `requests` have been sent. The
//! number of requests and each request's wait are bounded, so a run always
//! ends. Every answer's `traceresponse` header is kept, so the slowest
//! request can be looked up — its trace says *where* the tail came from.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use hdrhistogram::Histogram;
use service_kit::cli::parse_duration;
use trace_view::TraceId;

#[allow(dead_code)] // wired into command() at merge
pub mod output;
#[allow(dead_code)] // wired into command() at merge
pub mod plot;
#[allow(dead_code)] // wired into command() at merge
pub mod progress;
pub mod record;
#[allow(dead_code)] // wired into command() at merge
pub mod report;
#[allow(dead_code)] // wired into command() at merge
pub mod summary;

/// Longest latency the histogram records (longer ones are counted at this).
const MAX_RECORDED_US: u64 = 3_600_000_000;

#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// The URL to GET, e.g. 'http://127.0.0.1:8080/user-profile/42?mode=concurrent'.
    #[arg(value_parser = parse_http_url)]
    pub url: reqwest::Url,
    #[command(flatten)]
    pub shape: LoadShape,
    /// Extra request header, `NAME: VALUE` (repeatable), e.g.
    /// 'baggage: latency.orders=900ms'.
    #[arg(long = "header", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
    /// Width of the histogram in columns.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(40..))]
    pub width: u16,
}

/// How much load: shared by `load` and `up --load`.
#[derive(Debug, Clone, Args)]
pub struct LoadShape {
    /// Requests to send in all.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub requests: u64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub concurrency: u64,
    /// Give up on one request after this long (counted as an error).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,
}

/// What a run measured.
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
    pub fn answered(&self) -> u64 {
        self.statuses.values().sum()
    }

    /// The latency at quantile `q` (0..=1) of the answered requests.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        (!self.latencies.is_empty()).then(|| {
            let value = self.latencies.value_at_quantile(q);
            Duration::from_micros(self.latencies.median_equivalent(value))
        })
    }
}

/// Sends `shape.requests` GETs to `url` with `shape.concurrency` in flight.
pub async fn run(
    client: &reqwest::Client,
    url: &reqwest::Url,
    headers: &[(String, String)],
    shape: &LoadShape,
) -> LoadReport {
    let next = Arc::new(AtomicU64::new(0));
    let shared = Arc::new(Mutex::new(Samples::default()));
    let started = Instant::now();
    let workers: Vec<_> = (0..shape.concurrency.min(shape.requests))
        .map(|_| {
            let (client, url, headers) = (client.clone(), url.clone(), headers.to_vec());
            let (next, shared, shape) = (next.clone(), shared.clone(), shape.clone());
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < shape.requests {
                    let sample = one_request(&client, &url, &headers, shape.request_timeout).await;
                    shared.lock().expect("samples lock").push(sample);
                }
            })
        })
        .collect();
    for worker in workers {
        // A worker only ends by running out of requests; a panic in one is a
        // bug and would show as missing samples, not as a hang.
        let _ = worker.await;
    }
    let samples = std::mem::take(&mut *shared.lock().expect("samples lock"));
    samples.into_report(started.elapsed())
}

enum Sample {
    Answered {
        status: u16,
        latency: Duration,
        trace_id: Option<TraceId>,
    },
    Failed(&'static str),
}

#[derive(Default)]
struct Samples(Vec<Sample>);

impl Samples {
    fn push(&mut self, sample: Sample) {
        self.0.push(sample);
    }

    fn into_report(self, elapsed: Duration) -> LoadReport {
        let mut latencies =
            Histogram::new_with_bounds(1, MAX_RECORDED_US, 3).expect("valid histogram bounds");
        let mut report = LoadReport {
            latencies: latencies.clone(),
            statuses: BTreeMap::new(),
            failures: BTreeMap::new(),
            elapsed,
            slowest: None,
            trace_ids: Vec::new(),
        };
        for sample in self.0 {
            match sample {
                Sample::Answered {
                    status,
                    latency,
                    trace_id,
                } => {
                    let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
                    latencies.saturating_record(us.clamp(1, MAX_RECORDED_US));
                    *report.statuses.entry(status).or_default() += 1;
                    if report.slowest.as_ref().is_none_or(|(d, _)| latency > *d) {
                        report.slowest = Some((latency, trace_id));
                    }
                    report.trace_ids.extend(trace_id);
                }
                Sample::Failed(kind) => *report.failures.entry(kind).or_default() += 1,
            }
        }
        report.latencies = latencies;
        report
    }
}

async fn one_request(
    client: &reqwest::Client,
    url: &reqwest::Url,
    headers: &[(String, String)],
    timeout: Duration,
) -> Sample {
    let mut request = client.get(url.clone()).timeout(timeout);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let started = Instant::now();
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let trace_id = response
                .headers()
                .get("traceresponse")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split('-').nth(1))
                .and_then(|id| TraceId::parse(id).ok());
            // The request is over when its whole answer has arrived.
            let body = response.bytes().await;
            let latency = started.elapsed();
            match body {
                Ok(_) => Sample::Answered {
                    status,
                    latency,
                    trace_id,
                },
                Err(e) if e.is_timeout() => Sample::Failed("timeout"),
                Err(_) => Sample::Failed("body"),
            }
        }
        Err(e) if e.is_timeout() => Sample::Failed("timeout"),
        Err(e) if e.is_connect() => Sample::Failed("connect"),
        Err(_) => Sample::Failed("request"),
    }
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
    out.push_str(&histogram(&report.latencies, width));
    out
}

/// Ten equal-width latency buckets from the fastest to the slowest answer,
/// each a bar proportional to its count: a bimodal tail shows as two humps.
fn histogram(latencies: &Histogram<u64>, width: usize) -> String {
    const BUCKETS: u64 = 10;
    let (min, max) = (latencies.min(), latencies.max());
    let step = ((max - min) / BUCKETS).max(1);
    let mut counts = vec![0u64; BUCKETS as usize];
    for value in latencies.iter_recorded() {
        let bucket = ((value.value_iterated_to() - min) / step).min(BUCKETS - 1);
        counts[bucket as usize] += value.count_at_value();
    }
    let label_width = 22;
    let count_width = 8;
    let bar_width = width.saturating_sub(label_width + count_width + 4).max(10);
    let most = counts.iter().copied().max().unwrap_or(1).max(1);
    let mut out = String::new();
    for (i, count) in counts.iter().enumerate() {
        let low = min + step * i as u64;
        let high = if i as u64 == BUCKETS - 1 {
            max
        } else {
            low + step
        };
        let label = format!(
            "{} – {}",
            format_duration(Duration::from_micros(low)),
            format_duration(Duration::from_micros(high))
        );
        let cells = (*count as usize * bar_width).div_ceil(most as usize);
        let _ = writeln!(
            out,
            "  {label:>label_width$} {}{} {count:>count_width$}",
            "█".repeat(cells),
            " ".repeat(bar_width - cells),
        );
        if max == min {
            break;
        }
    }
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

/// `latency-lab load URL …`
pub async fn command(args: LoadArgs) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .context("cannot build an HTTP client")?;
    let report = run(&client, &args.url, &args.headers, &args.shape).await;
    let title = format!("GET {} ({} in flight)", args.url, args.shape.concurrency);
    print!("{}", render(&report, &title, usize::from(args.width)));
    if let Some((latency, Some(trace_id))) = &report.slowest {
        println!(
            "  slowest  {} — trace {trace_id}: `latency-lab trace {trace_id} --jaeger URL`, or look for it in `latency-lab up`'s saved traces",
            format_duration(*latency)
        );
    }
    if report.answered() == 0 {
        anyhow::bail!("no request to {} was answered", args.url);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(latencies_ms: &[u64], failures: &[(&'static str, u64)]) -> LoadReport {
        let samples = Samples(
            latencies_ms
                .iter()
                .enumerate()
                .map(|(i, ms)| Sample::Answered {
                    status: if *ms >= 1000 { 504 } else { 200 },
                    latency: Duration::from_millis(*ms),
                    trace_id: Some(TraceId(i as u128)),
                })
                .chain(
                    failures
                        .iter()
                        .flat_map(|(kind, n)| (0..*n).map(|_| Sample::Failed(kind))),
                )
                .collect(),
        );
        samples.into_report(Duration::from_secs(2))
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
