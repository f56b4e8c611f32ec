//! Measures what the Kafka pipeline sustains on this machine: Jaeger collector role -> Kafka ->
//! Jaeger ingester (Badger), all on loopback, with the OpenTelemetry Rust SDK as the load —
//! on the same cores, as in the compose demo. Not a test (nothing is asserted, CI does not run
//! it): a person runs it, via `deploy/kafka/measure-throughput.sh`, to get the numbers the
//! README states.
//!
//! The load is offered at a fixed rate (or as fast as the generator threads go); the rates are
//! read from the two Jaeger processes' own metrics (spans the collector's OTLP
//! receiver accepted, spans the ingester wrote to Badger), the lag from Kafka, the memory from
//! /proc. Settings, from the environment:
//!   MEASURE_SECONDS    length of the load            (default 20)
//!   MEASURE_RATE       spans/s offered; 0 = no pause (default 10000)
//!   MEASURE_THREADS    generator threads             (default 1)

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jaeger_harness::jaeger_binary;
use jaeger_harness::kafka::{kafka_tools, KafkaBroker, KafkaCollector, KafkaIngester};
use opentelemetry::trace::{
    Span as _, SpanKind, TraceContextExt, Tracer as _, TracerProvider as _,
};
use opentelemetry::Context;
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use opentelemetry_sdk::Resource;

type Error = Box<dyn std::error::Error + Send + Sync>;

const TOPIC: &str = "jaeger-spans";
const GROUP: &str = "jaeger-ingester";
const PARTITIONS: u32 = 3;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The sum of every sample of `metric` (any labels) on a Prometheus endpoint.
fn scrape(addr: SocketAddr, metric: &str) -> Option<f64> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).ok()?;
    let samples: Vec<f64> = body
        .lines()
        .filter(|l| {
            l.strip_prefix(metric).is_some_and(|rest| {
                let rest = rest.strip_prefix("_total").unwrap_or(rest);
                rest.starts_with('{') || rest.starts_with(' ')
            })
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    (!samples.is_empty()).then(|| samples.iter().sum())
}

fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

fn provider(endpoint: &str, service: &str) -> Result<SdkTracerProvider, Error> {
    let exporter = SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()?;
    let batch = BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_scheduled_delay(Duration::from_millis(200))
                .with_max_export_batch_size(512)
                .with_max_queue_size(65_536)
                .build(),
        )
        .build();
    Ok(SdkTracerProvider::builder()
        .with_resource(
            Resource::builder()
                .with_service_name(service.to_owned())
                .build(),
        )
        .with_span_processor(batch)
        .build())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Error> {
    let seconds = env_u64("MEASURE_SECONDS", 20);
    let rate = env_u64("MEASURE_RATE", 10_000);
    let threads = env_u64("MEASURE_THREADS", 1).max(1);
    // Traces of 4 spans per 10 ms tick and thread.
    let traces_per_tick = rate / 4 / 100 / threads;
    let bin = jaeger_binary()?;
    let tools = kafka_tools()?;
    let broker = KafkaBroker::start(&tools)?;
    broker.create_topic(TOPIC, PARTITIONS)?;
    let badger = tempfile::tempdir()?;
    let brokers = broker.brokers_env();
    let collector = KafkaCollector::start(&bin, &brokers, TOPIC, &[("JAEGER_LOG_LEVEL", "warn")])?;
    let ingester = KafkaIngester::start(
        &bin,
        &brokers,
        TOPIC,
        GROUP,
        badger.path(),
        &[("JAEGER_LOG_LEVEL", "warn")],
    )?;
    let accepted = || scrape(collector.ports.metrics, "otelcol_receiver_accepted_spans");
    let stored = || scrape(ingester.ports.metrics, "otelcol_exporter_sent_spans");

    let stop = Arc::new(AtomicBool::new(false));
    let emitted = Arc::new(AtomicU64::new(0));
    let mut providers = Vec::new();
    let mut generators = Vec::new();
    for n in 0..threads {
        let provider = provider(&collector.otlp_grpc_endpoint(), &format!("load-{n}"))?;
        let tracer = provider.tracer("kafka-throughput");
        providers.push(provider);
        let (stop, emitted) = (stop.clone(), emitted.clone());
        generators.push(std::thread::spawn(move || {
            let mut next = Instant::now();
            let mut in_tick = 0;
            while !stop.load(Ordering::Relaxed) {
                if traces_per_tick > 0 && in_tick == traces_per_tick {
                    in_tick = 0;
                    next += Duration::from_millis(10);
                    if let Some(wait) = next.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                }
                in_tick += 1;
                // Four spans: a root and three children, one trace.
                let root = tracer
                    .span_builder("GET /load")
                    .with_kind(SpanKind::Server)
                    .start(&tracer);
                let cx = Context::current_with_span(root);
                for name in ["SELECT", "GET a", "GET b"] {
                    tracer
                        .span_builder(name)
                        .with_kind(SpanKind::Client)
                        .start_with_context(&tracer, &cx)
                        .end();
                }
                cx.span().end();
                emitted.fetch_add(4, Ordering::Relaxed);
            }
        }));
    }

    let started = Instant::now();
    let (accepted0, stored0) = (accepted().unwrap_or(0.0), stored().unwrap_or(0.0));
    let mut peak = (0.0f64, 0.0f64, 0.0f64);
    while started.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        peak.0 = peak.0.max(rss_mib(broker.process.pid()));
        peak.1 = peak.1.max(rss_mib(collector.process.pid()));
        peak.2 = peak.2.max(rss_mib(ingester.process.pid()));
    }
    let window = started.elapsed().as_secs_f64();
    let (accepted1, stored1) = (accepted().unwrap_or(0.0), stored().unwrap_or(0.0));
    stop.store(true, Ordering::Relaxed);
    for generator in generators {
        let _ = generator.join();
    }
    let emitted = emitted.load(Ordering::Relaxed);
    let lag_at_stop = broker.group_offsets(GROUP).map(|g| g.total_lag()).ok();
    for provider in providers {
        let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
    }
    let drain_started = Instant::now();
    let drained = broker
        .wait_for_zero_lag(GROUP, TOPIC, PARTITIONS, Duration::from_secs(300))
        .is_ok();
    let drain = drain_started.elapsed();
    let accepted_total = accepted().unwrap_or(0.0) - accepted0;
    let stored_total = stored().unwrap_or(0.0) - stored0;

    let offered = if rate == 0 {
        "as fast as possible".to_owned()
    } else {
        format!("{rate} spans/s offered")
    };
    println!("kafka pipeline, {offered}, {threads} generator thread(s), {window:.0} s of load");
    println!(
        "  generated  {:>8.0} spans/s ({emitted} spans; the SDK drops what its queue cannot hold)",
        emitted as f64 / window
    );
    println!(
        "  collector  {:>8.0} spans/s accepted (OTLP in, Kafka out)",
        (accepted1 - accepted0) / window
    );
    println!(
        "  ingester   {:>8.0} spans/s stored in Badger during the load",
        (stored1 - stored0) / window
    );
    println!(
        "  lag at the end of the load: {} messages; drained {} in {drain:.1?}; in total {accepted_total:.0} spans accepted, {stored_total:.0} stored",
        lag_at_stop.map_or("?".to_owned(), |l| l.to_string()),
        if drained { "to zero" } else { "NOT to zero" },
    );
    println!(
        "  peak RSS: broker {:.0} MiB, collector {:.0} MiB, ingester {:.0} MiB",
        peak.0, peak.1, peak.2
    );
    Ok(())
}
