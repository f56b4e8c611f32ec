//! The metrics half, end to end on loopback with real components: the Jaeger binary as the
//! collector (`otel-collector.yaml`: spanmetrics connector, OpenMetrics `prometheus` exporter), a
//! real Prometheus (`prometheus/prometheus.yml`, exemplar storage on) scraping it, and the Jaeger
//! binary as Jaeger (`jaeger/config.yaml`) with its Monitor tab reading that Prometheus.
//!
//! After a short load at a known rate, with `fail.orders=0.1` in the baggage and a 150 ms order
//! service, Jaeger's metrics API (what the Monitor tab draws) must show the aggregator's p99 in
//! the bucket that latency falls in, the rate sent and about a tenth of errors; and a Prometheus
//! exemplar must name a trace that Jaeger has. All of it comes from spanmetrics: nothing here
//! needs the services' own OTLP metrics.
//!
//! Under `CI=true` a missing Jaeger or Prometheus fails the test; elsewhere it prints
//! `SKIPPED (not run): …` and returns.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::common::{Options, Protocol, Suite};
use jaeger_harness::{
    free_loopback_addrs, jaeger_for_tests, prometheus_for_tests, Collector, Jaeger, Prometheus,
};
use serde_json::Value;
use trace_view::TraceId;

/// Requests per second sent, and for how long: 300 requests, enough that the share of injected
/// failures lands between 5 % and 20 % (a binomial with p = 0.1: below 5 % is ~3 standard
/// deviations away).
const RATE_PER_SECOND: u64 = 15;
const LOAD: Duration = Duration::from_secs(20);
/// Both the connector's flush and Prometheus' scrape, so data lags the load by ~2 s, not ~10 s.
const PIPELINE_INTERVAL: Duration = Duration::from_secs(1);
/// Generous: two Jaegers, Prometheus and three services share two cores.
const WAIT: Duration = Duration::from_secs(45);
/// The order service's latency, and the spanmetrics bucket (otel-collector.yaml's boundaries)
/// that the aggregator's answer falls into: (150 ms, 250 ms]. 150 ms sits at the bucket's floor
/// (the answer cannot be faster), so a loaded machine has 100 ms of headroom before more than
/// 1 % of the answers spill into the next bucket (with 200 ms, 4 of 300 once did).
const ORDER_LATENCY: &str = "150ms";
const P99_BUCKET_MS: (f64, f64) = (150.0, 250.0);

struct Stack {
    jaeger: Jaeger,
    collector: Collector,
    prometheus: Prometheus,
}

/// Jaeger must know Prometheus' URL before Prometheus can start (Prometheus scrapes the
/// collector, which exports to Jaeger): Prometheus' port is chosen first.
fn stack() -> Option<Stack> {
    let jaeger_bin = jaeger_for_tests()?;
    let tools = prometheus_for_tests()?;
    let prometheus_addr = free_loopback_addrs(1).expect("a free port")[0];
    let prometheus_url = format!("http://{prometheus_addr}");
    let jaeger = Jaeger::start_with_env(&jaeger_bin, &[("JAEGER_PROMETHEUS_URL", &prometheus_url)])
        .expect("start Jaeger");
    let flush = format!("{}ms", PIPELINE_INTERVAL.as_millis());
    let collector = Collector::start_with(
        &jaeger_bin,
        jaeger.ports.otlp_grpc,
        &[],
        &[("SPANMETRICS_FLUSH_INTERVAL", &flush)],
    )
    .expect("start the collector");
    let prometheus = Prometheus::start_on(
        &tools.prometheus,
        prometheus_addr,
        collector.prometheus_exporter(),
        PIPELINE_INTERVAL,
    )
    .expect("start Prometheus");
    Some(Stack {
        jaeger,
        collector,
        prometheus,
    })
}

fn unix_ms(time: SystemTime) -> u128 {
    time.duration_since(UNIX_EPOCH).unwrap().as_millis()
}

/// What the load saw: requests sent and 5xx answers.
struct Sent {
    requests: usize,
    server_errors: usize,
    /// Answers slower than the p99 bucket's upper bound, as the client timed them.
    slower_than_bucket: usize,
    started: SystemTime,
    ended: SystemTime,
}

/// An open-loop load: one request every 1/RATE s, whether or not earlier ones have answered.
async fn load(suite: &Suite) -> Sent {
    let started = SystemTime::now();
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / RATE_PER_SECOND));
    let mut requests = tokio::task::JoinSet::new();
    let total = RATE_PER_SECOND * LOAD.as_secs();
    for i in 0..total {
        tick.tick().await;
        let request = suite
            .client
            .get(format!(
                "{}/user-profile/{}?mode=concurrent",
                suite.aggregator.url,
                i % 10 + 1
            ))
            .header("baggage", "fail.orders=0.1");
        requests.spawn(async move {
            let sent = Instant::now();
            let status = request.send().await.map(|r| r.status().as_u16());
            status.map(|status| (status, sent.elapsed()))
        });
    }
    let ended = SystemTime::now();
    let mut server_errors = 0;
    let mut answered = 0;
    let mut slower_than_bucket = 0;
    while let Some(answer) = requests.join_next().await {
        let (status, took) = answer.unwrap().expect("the aggregator answers");
        slower_than_bucket += usize::from(took.as_secs_f64() * 1000.0 > P99_BUCKET_MS.1);
        assert!(
            status == 200 || status == 502,
            "only OK and the injected failure expected, got {status}"
        );
        answered += 1;
        server_errors += usize::from(status >= 500);
    }
    Sent {
        requests: answered,
        server_errors,
        slower_than_bucket,
        started,
        ended,
    }
}

/// The values of every point of every series in a Jaeger metrics answer (NaN points skipped).
fn points(family: &Value) -> Vec<f64> {
    family["metrics"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|metric| metric["metricPoints"].as_array().into_iter().flatten())
        .filter_map(|point| match &point["gaugeValue"]["doubleValue"] {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        })
        .filter(|v: &f64| v.is_finite())
        .collect()
}

/// Polls `GET <jaeger>/api/metrics/<kind>?service=profile-aggregator&spanKind=server&<extra>`
/// until it has at least `min_points` finite points.
async fn jaeger_metrics(stack: &Stack, kind: &str, extra: &str, min_points: usize) -> Vec<f64> {
    let url = format!(
        "{}/api/metrics/{kind}?service=profile-aggregator&spanKind=server&{extra}",
        stack.jaeger.query_url()
    );
    let deadline = Instant::now() + WAIT;
    loop {
        let answer = reqwest::get(&url).await.expect("Jaeger answers");
        let status = answer.status();
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{url}: {status} {body}");
        let values = points(&body);
        if values.len() >= min_points {
            return values;
        }
        assert!(
            Instant::now() < deadline,
            "{url}: fewer than {min_points} points within {WAIT:?}: {body}\n\
             --- collector log ---\n{}\n--- prometheus log ---\n{}",
            stack.collector.process.log_tail(20),
            stack.prometheus.process.log_tail(20),
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Polls Prometheus' instant query API until `query` has a result; its first value.
async fn prometheus_value(stack: &Stack, query: &str) -> f64 {
    prometheus_value_where(stack, query, |_| true).await
}

/// The first value of an instant query once `accept` holds for it (polled until [`WAIT`]).
async fn prometheus_value_where(stack: &Stack, query: &str, accept: impl Fn(f64) -> bool) -> f64 {
    let url = format!(
        "{}/api/v1/query?query={}",
        stack.prometheus.url(),
        percent_encoded(query)
    );
    let deadline = Instant::now() + WAIT;
    loop {
        let answer: Value = reqwest::get(&url)
            .await
            .expect("Prometheus answers")
            .json()
            .await
            .expect("JSON");
        assert_eq!(answer["status"], "success", "{query}: {answer}");
        if let Some(value) = answer["data"]["result"][0]["value"][1].as_str() {
            let value = value.parse().unwrap_or(f64::NAN);
            if accept(value) {
                return value;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{query}: no result within {WAIT:?}: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `text` for a URL's query string: every byte but ASCII letters and digits as `%XX`.
fn percent_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Polls Prometheus' exemplar API for the aggregator's latency buckets; returns (bucket bound,
/// trace id) pairs.
async fn exemplars(stack: &Stack, since: SystemTime) -> Vec<(String, String)> {
    let query = r#"traces_span_metrics_duration_milliseconds_bucket{service_name="profile-aggregator", span_kind="SPAN_KIND_SERVER"}"#;
    let deadline = Instant::now() + WAIT;
    loop {
        let url = format!(
            "{}/api/v1/query_exemplars?query={}&start={}&end={}",
            stack.prometheus.url(),
            percent_encoded(query),
            unix_ms(since) / 1000 - 5,
            unix_ms(SystemTime::now()) / 1000 + 5
        );
        let answer: Value = reqwest::get(&url)
            .await
            .expect("Prometheus answers")
            .json()
            .await
            .expect("JSON");
        assert_eq!(answer["status"], "success", "{answer}");
        let found: Vec<(String, String)> = answer["data"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|series| {
                let le = series["seriesLabels"]["le"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned();
                series["exemplars"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(move |e| {
                        e["labels"]["trace_id"]
                            .as_str()
                            .map(|id| (le.clone(), id.to_owned()))
                    })
            })
            .collect();
        if !found.is_empty() {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "no exemplar for {query} within {WAIT:?}: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jaegers_monitor_tab_and_prometheus_exemplars_show_the_load_that_was_sent() {
    let Some(stack) = stack() else { return };
    let suite = Suite::start(Options {
        protocol: Protocol::Grpc,
        otlp_endpoint: Some(stack.collector.otlp_grpc_endpoint()),
        user_latency: "100ms",
        order_latency: ORDER_LATENCY,
        // A pool, so the order service exports the `db.client.connection.*`
        // series the pool-saturation alert reads (large enough never to queue).
        extra_env: vec![("order-service", "ORDER_SERVICE_DB_POOL_SIZE", "16")],
        ..Options::default()
    })
    .await;
    let sent = load(&suite).await;
    let sent_error_share = sent.server_errors as f64 / sent.requests as f64;

    // Call rate: 5 s windows, one point a second, all inside the load (from 7 s in: the first
    // windows would see the series start).
    let lookback = LOAD.as_millis() - 7_000;
    let calls = jaeger_metrics(
        &stack,
        "calls",
        &format!(
            "endTs={}&lookback={lookback}&step=1000&ratePer=5000",
            unix_ms(sent.ended)
        ),
        (lookback / 1000) as usize / 2,
    )
    .await;
    let rate = median(calls.clone());
    let sent_rate = sent.requests as f64 / LOAD.as_secs_f64();
    assert!(
        rate >= sent_rate * 0.5 && rate <= sent_rate * 1.5,
        "Jaeger's call rate {rate:.1}/s vs {sent_rate:.1}/s sent (points {calls:?})"
    );

    // p99 and error rate over one window holding the whole load, ending once the last spans
    // have surely been flushed and scraped.
    let end = sent.ended + Duration::from_secs(5);
    while SystemTime::now() < end + 2 * PIPELINE_INTERVAL {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let whole_load = format!(
        "endTs={}&lookback=1000&step=1000&ratePer=30000",
        unix_ms(end)
    );
    let p99 = *jaeger_metrics(
        &stack,
        "latencies",
        &format!("quantile=0.99&{whole_load}"),
        1,
    )
    .await
    .last()
    .unwrap();
    let (low, high) = P99_BUCKET_MS;
    assert!(
        p99 > low && p99 <= high,
        "p99 {p99} ms is not in the ({low}, {high}] ms bucket that a {ORDER_LATENCY} order \
         service puts the aggregator in ({} of {} answers took longer than {high} ms at the client)",
        sent.slower_than_bucket,
        sent.requests
    );
    let errors = *jaeger_metrics(&stack, "errors", &whole_load, 1)
        .await
        .last()
        .unwrap();
    assert!(
        (0.05..=0.2).contains(&errors),
        "Jaeger's error rate {errors:.3}; {} of {} requests failed ({sent_error_share:.3})",
        sent.server_errors,
        sent.requests
    );

    // The alert rules read the series as they really are: every rule evaluates without error,
    // and the SLO's recording rule (its `le` regex, labels and names) finds the requests: none
    // was slower than the SLO's 500 ms.
    let rules: Value = reqwest::get(format!("{}/api/v1/rules", stack.prometheus.url()))
        .await
        .expect("Prometheus answers")
        .json()
        .await
        .expect("JSON");
    let unhealthy: Vec<&Value> = rules["data"]["groups"]
        .as_array()
        .expect("rule groups")
        .iter()
        .flat_map(|group| group["rules"].as_array().into_iter().flatten())
        .filter(|rule| rule["health"] != "ok" && rule["health"] != "unknown")
        .collect();
    assert!(unhealthy.is_empty(), "rules failing: {unhealthy:?}");
    let slow_share = prometheus_value(&stack, "latency_lab:aggregator_slow_ratio:rate5m").await;
    assert_eq!(
        slow_share, 0.0,
        "share of requests slower than 500 ms, by the SLO's recording rule"
    );

    // The services' own (SDK) metrics reach Prometheus through the collector under the names
    // the alert rules use: the aggregator's request histogram counts every request sent, and
    // the order service's pool reports its size.
    let counted = prometheus_value_where(
        &stack,
        "sum(http_server_request_duration_seconds_count{job=\"profile-aggregator\",http_route=\"/user-profile/{id}\"})",
        |count| count >= sent.requests as f64,
    )
    .await;
    assert_eq!(
        counted, sent.requests as f64,
        "requests counted by the SDK histogram"
    );
    let pool_max =
        prometheus_value(&stack, "db_client_connection_max{job=\"order-service\"}").await;
    assert_eq!(
        pool_max, 16.0,
        "the order pool's size, as the saturation alert reads it"
    );
    let used = prometheus_value(
        &stack,
        "max_over_time(db_client_connection_count{job=\"order-service\",db_client_connection_state=\"used\"}[5m])",
    )
    .await;
    assert!(
        (1.0..=16.0).contains(&used),
        "connections in use during the load: {used}"
    );

    // An exemplar: a trace id on a latency bucket, and Jaeger has that trace.
    let found = exemplars(&stack, sent.started).await;
    let (le, trace_id) = found
        .iter()
        .max_by(|a, b| {
            let bound = |le: &str| le.parse::<f64>().unwrap_or(f64::INFINITY);
            bound(&a.0).total_cmp(&bound(&b.0))
        })
        .unwrap();
    let id = TraceId::parse(trace_id).unwrap_or_else(|e| panic!("exemplar {trace_id}: {e}"));
    let trace = stack
        .jaeger
        .query()
        .unwrap()
        .wait_for_trace(id, 1, WAIT)
        .await
        .unwrap_or_else(|e| panic!("exemplar trace {trace_id} (bucket le={le}) in Jaeger: {e}"));
    eprintln!(
        "metrics_e2e: sent {sent_rate:.1}/s, {} of {} failed, {} slower than {high} ms; \
         Jaeger: {rate:.1} calls/s, p99 {p99:.0} ms, error rate {errors:.3}; exemplar {trace_id} \
         on bucket le={le}",
        sent.server_errors, sent.requests, sent.slower_than_bucket
    );
    assert!(
        trace
            .spans
            .iter()
            .any(|s| s.service == "profile-aggregator" && s.name == "GET /user-profile/{id}"),
        "exemplar trace {trace_id} has no aggregator root: {:?}",
        trace.spans
    );
}
