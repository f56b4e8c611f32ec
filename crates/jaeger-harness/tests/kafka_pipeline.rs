//! The Kafka pipeline on real components, loopback only: spans exported with the OpenTelemetry
//! Rust SDK (two services, one trace crossing both) to Jaeger in the collector role
//! (`deploy/configs/jaeger-kafka-collector.yaml`) go through a real Apache Kafka broker
//! (single-node KRaft) to Jaeger in the ingester role (`deploy/configs/jaeger-ingester.yaml`:
//! Kafka receiver, Badger, query API), and are read back through the query API.
//!
//! What it proves, in one run (one broker start is the expensive part):
//! 1. traces arrive complete through collector -> Kafka -> ingester;
//! 2. under a steady load, the ingester is killed (SIGKILL: a crash), stays down for
//!    [`OUTAGE`] while the load goes on — the spans wait in Kafka, the group's lag grows — and
//!    is restarted on the same Badger folder and consumer group: the lag returns to zero and
//!    not one trace is lost, partial or duplicated;
//! 3. the traces stored before the crash are still served after it: their offsets were
//!    committed before the crash, so they were not read from Kafka again — they come from
//!    Badger's folder;
//! 4. every message in Kafka is keyed by its trace id, and all messages of one trace are in one
//!    partition.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::ARRIVAL_TIMEOUT;
use jaeger_harness::kafka::{
    kafka_for_tests, KafkaBroker, KafkaCollector, KafkaIngester, KAFKA_COLLECTOR_CONFIG,
    KAFKA_INGESTER_CONFIG, KAFKA_INGESTER_DISTRIBUTED_CONFIG,
};
use jaeger_harness::{jaeger_for_tests, repo_file};
use opentelemetry::trace::{
    Span as _, SpanContext, SpanKind, TraceContextExt, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracer, SdkTracerProvider,
};
use opentelemetry_sdk::Resource;
use trace_view::{JaegerClient, Trace, TraceId};

const TOPIC: &str = "jaeger-spans";
const GROUP: &str = "jaeger-ingester";
const PARTITIONS: u32 = 3;
/// How long the ingester stays down under load (the issue asks for 20 s).
const OUTAGE: Duration = Duration::from_secs(20);
/// The steady load: traces of 4 spans each.
const TRACES_PER_SECOND: u32 = 25;
const FRONTEND: &str = "kafka-frontend";
const BACKEND: &str = "kafka-backend";
/// Traces sent before the outage, checked again after it.
const FIRST_TRACES: usize = 20;
/// Generous: the JVM tool that reads the lag alone takes a second or two on a busy machine.
const LAG_TIMEOUT: Duration = Duration::from_secs(90);

/// The two services: each its own provider (resource, exporter, batch processor), as two real
/// processes would have. Small, frequent batches: the test waits less.
struct Services {
    frontend: SdkTracerProvider,
    backend: SdkTracerProvider,
}

impl Services {
    fn new(endpoint: &str) -> Services {
        let provider = |service: &str| {
            let exporter = SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()
                .expect("grpc exporter");
            let batch = BatchSpanProcessor::builder(exporter)
                .with_batch_config(
                    BatchConfigBuilder::default()
                        .with_scheduled_delay(Duration::from_millis(100))
                        .with_max_export_batch_size(64)
                        .with_max_queue_size(16_384)
                        .build(),
                )
                .build();
            SdkTracerProvider::builder()
                .with_resource(
                    Resource::builder()
                        .with_service_name(service.to_owned())
                        .build(),
                )
                .with_span_processor(batch)
                .build()
        };
        Services {
            frontend: provider(FRONTEND),
            backend: provider(BACKEND),
        }
    }

    fn tracers(&self) -> (SdkTracer, SdkTracer) {
        (
            self.frontend.tracer("kafka-pipeline-test"),
            self.backend.tracer("kafka-pipeline-test"),
        )
    }

    /// Exports everything ended so far (off the async runtime, see common::shutdown).
    async fn flush(&self) {
        let (frontend, backend) = (self.frontend.clone(), self.backend.clone());
        tokio::task::spawn_blocking(move || {
            frontend.force_flush().expect("frontend flush");
            backend.force_flush().expect("backend flush");
        })
        .await
        .expect("flush task panicked");
    }

    async fn shutdown(self) {
        common::shutdown(self.frontend).await;
        common::shutdown(self.backend).await;
    }
}

/// One trace as it was sent: span id -> (parent span id, service).
#[derive(Debug, Clone)]
struct Sent {
    id: TraceId,
    spans: BTreeMap<String, (Option<String>, &'static str)>,
    at: Instant,
}

/// The context a downstream span continues: the upstream span as a remote parent, as
/// propagation over HTTP would hand it over.
fn continuing(parent: &SpanContext) -> Context {
    Context::new().with_remote_span_context(parent.clone())
}

/// A checkout: frontend server span -> frontend client span -> backend server span -> backend
/// internal span. Four spans, two services, one trace.
fn emit_trace(frontend: &SdkTracer, backend: &SdkTracer, seq: u64) -> Sent {
    let at = Instant::now();
    let mut root = frontend
        .span_builder("GET /checkout")
        .with_kind(SpanKind::Server)
        .with_attributes([KeyValue::new("test.seq", seq as i64)])
        .start(frontend);
    let root_sc = root.span_context().clone();
    let mut client = frontend
        .span_builder("GET kafka-backend /price")
        .with_kind(SpanKind::Client)
        .start_with_context(frontend, &continuing(&root_sc));
    let client_sc = client.span_context().clone();
    let mut server = backend
        .span_builder("GET /price")
        .with_kind(SpanKind::Server)
        .start_with_context(backend, &continuing(&client_sc));
    let server_sc = server.span_context().clone();
    let mut lookup = backend
        .span_builder("price lookup")
        .with_kind(SpanKind::Internal)
        .start_with_context(backend, &continuing(&server_sc));
    let lookup_sc = lookup.span_context().clone();
    lookup.end();
    server.end();
    client.end();
    root.end();

    let hex = |sc: &SpanContext| sc.span_id().to_string();
    let spans = BTreeMap::from([
        (hex(&root_sc), (None, FRONTEND)),
        (hex(&client_sc), (Some(hex(&root_sc)), FRONTEND)),
        (hex(&server_sc), (Some(hex(&client_sc)), BACKEND)),
        (hex(&lookup_sc), (Some(hex(&server_sc)), BACKEND)),
    ]);
    Sent {
        id: TraceId::from(root_sc.trace_id().to_bytes()),
        spans,
        at,
    }
}

/// The trace holds exactly the spans sent: none missing, none extra, none twice, each with its
/// parent and service.
fn assert_complete(trace: &Trace, sent: &Sent) {
    assert_eq!(trace.trace_id, sent.id);
    let got: BTreeMap<String, (Option<String>, &str)> = trace
        .spans
        .iter()
        .map(|s| (s.span_id.clone(), (s.parent_id.clone(), s.service.as_str())))
        .collect();
    let want: BTreeMap<String, (Option<String>, &str)> = sent
        .spans
        .iter()
        .map(|(id, (parent, service))| (id.clone(), (parent.clone(), *service)))
        .collect();
    assert_eq!(
        trace.spans.len(),
        sent.spans.len(),
        "trace {} has {} spans, {} were sent: {:#?}",
        sent.id,
        trace.spans.len(),
        sent.spans.len(),
        trace.spans
    );
    assert_eq!(got, want, "trace {}", sent.id);
}

/// Waits for every trace to be complete, then checks it exactly.
async fn assert_all_complete(query: &JaegerClient, sent: &[Sent], timeout: Duration) {
    for trace in sent {
        let expected = trace.spans.len();
        let found = query
            .wait_for_trace(trace.id, expected, timeout)
            .await
            .unwrap_or_else(|e| panic!("trace {} lost or partial: {e}", trace.id));
        assert_complete(&found, trace);
    }
}

/// A steady load on its own thread until `stop`: every sent trace, in order.
fn start_load(
    services: &Services,
    stop: Arc<AtomicBool>,
    first_seq: u64,
) -> std::thread::JoinHandle<Vec<Sent>> {
    let (frontend, backend) = services.tracers();
    std::thread::spawn(move || {
        let period = Duration::from_secs(1) / TRACES_PER_SECOND;
        let mut sent = Vec::new();
        let mut next = Instant::now();
        let mut seq = first_seq;
        while !stop.load(Ordering::Relaxed) {
            sent.push(emit_trace(&frontend, &backend, seq));
            seq += 1;
            next += period;
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        sent
    })
}

/// Resident memory of a process in MiB (Linux), for the numbers the README states.
fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_survive_an_ingester_outage_through_kafka_into_badger() {
    let Some(bin) = jaeger_for_tests() else {
        return;
    };
    let Some(tools) = kafka_for_tests() else {
        return;
    };
    let started = Instant::now();
    let broker = blocking(|| KafkaBroker::start(&tools)).expect("start the Kafka broker");
    let broker_ready = started.elapsed();
    // Created up front: a consumer of a topic that does not exist yet waits for the next
    // metadata refresh, seconds after the first message.
    blocking(|| broker.create_topic(TOPIC, PARTITIONS)).expect("create the topic");
    let brokers = broker.brokers_env();
    let badger = tempfile::Builder::new()
        .prefix("badger-")
        .tempdir()
        .expect("Badger folder");
    let collector = KafkaCollector::start(&bin, &brokers, TOPIC, &[]).expect("start the collector");
    let ingester = KafkaIngester::start(&bin, &brokers, TOPIC, GROUP, badger.path(), &[])
        .expect("start the ingester");
    let services = Services::new(&collector.otlp_grpc_endpoint());
    let (frontend, backend) = services.tracers();

    // 1. Complete through collector -> Kafka -> ingester.
    let first: Vec<Sent> = (0..FIRST_TRACES as u64)
        .map(|seq| emit_trace(&frontend, &backend, seq))
        .collect();
    services.flush().await;
    let query = ingester.query().expect("query client");
    assert_all_complete(&query, &first, ARRIVAL_TIMEOUT).await;
    let services_seen = query.services().await.expect("services");
    assert_eq!(services_seen, [BACKEND, FRONTEND], "Jaeger traced itself?");
    // Stored and committed: after the crash the group resumes behind these messages.
    let before = blocking(|| broker.wait_for_zero_lag(GROUP, TOPIC, PARTITIONS, LAG_TIMEOUT))
        .expect("the first traces are committed");
    assert!(before.total_log_end() > 0, "{before:?}");
    let phase1 = started.elapsed();

    // 2. A steady load; the ingester crashes and stays down.
    let stop = Arc::new(AtomicBool::new(false));
    let load = start_load(&services, stop.clone(), FIRST_TRACES as u64);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ingester_pid = ingester.process.pid();
    let ingester_rss = rss_mib(ingester_pid);
    let crashed_at = Instant::now();
    drop(ingester);
    // Past the crashed member's session timeout (the receiver's default, 10 s).
    tokio::time::sleep(OUTAGE * 3 / 4).await;
    // Kafka holds what storage cannot take: the group has no member and its lag grows.
    let during = blocking(|| broker.group_offsets(GROUP)).expect("group offsets during the outage");
    assert!(
        !during.has_members,
        "the crashed ingester is still a member: {during:?}"
    );
    assert!(
        during.total_lag() > 0,
        "nothing waits in Kafka while the ingester is down: {during:?}"
    );
    if let Some(rest) = OUTAGE.checked_sub(crashed_at.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    let restarted_at = Instant::now();
    let ingester = KafkaIngester::start(&bin, &brokers, TOPIC, GROUP, badger.path(), &[])
        .expect("restart the ingester");
    let outage = restarted_at - crashed_at;
    let query = ingester.query().expect("query client");

    // 3. Badger kept what was stored before the crash (not read from Kafka again: committed).
    assert_all_complete(&query, &first, Duration::from_secs(15)).await;

    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, Ordering::Relaxed);
    let loaded = load.join().expect("load thread panicked");
    services.shutdown().await;

    // Everything written is consumed: lag back to zero on every partition...
    let after = blocking(|| broker.wait_for_zero_lag(GROUP, TOPIC, PARTITIONS, LAG_TIMEOUT))
        .expect("the restarted ingester catches up");
    let caught_up = restarted_at.elapsed();
    // ...and stored: every trace complete, those sent during the outage too.
    let during_outage = loaded
        .iter()
        .filter(|s| s.at >= crashed_at && s.at < restarted_at)
        .count();
    let expected_during = (OUTAGE.as_secs() * u64::from(TRACES_PER_SECOND)) as usize;
    assert!(
        during_outage >= expected_during / 4,
        "the load stalled: {during_outage} traces sent in an outage of {outage:?}"
    );
    assert_all_complete(&query, &loaded, Duration::from_secs(30)).await;
    assert_all_complete(&query, &first, Duration::from_secs(5)).await;

    // One trace, one partition: the collector keyed every message by its trace id, so the
    // frontend's and the backend's messages of a trace (exported separately) met in one
    // partition, in order — what lets several ingesters share a topic.
    let messages =
        blocking(|| broker.topic_messages(TOPIC, after.total_log_end())).expect("read the topic");
    assert_eq!(messages.len() as u64, after.total_log_end());
    let mut partitions_of: BTreeMap<u128, BTreeSet<u32>> = BTreeMap::new();
    for message in &messages {
        let key = message.key.as_deref().expect("every message is keyed");
        let id = u128::from_str_radix(key, 16).unwrap_or_else(|_| panic!("key {key:?}"));
        partitions_of
            .entry(id)
            .or_default()
            .insert(message.partition);
    }
    let sent_ids: BTreeSet<u128> = first.iter().chain(&loaded).map(|s| s.id.0).collect();
    assert_eq!(
        partitions_of.keys().copied().collect::<BTreeSet<_>>(),
        sent_ids,
        "the topic's keys are not the traces sent"
    );
    assert!(
        messages.len() > partitions_of.len(),
        "no trace took two messages: the check proves nothing"
    );
    let split: Vec<_> = partitions_of.iter().filter(|(_, p)| p.len() > 1).collect();
    assert!(split.is_empty(), "traces split over partitions: {split:?}");
    let used: BTreeSet<u32> = messages.iter().map(|m| m.partition).collect();
    assert_eq!(
        used,
        (0..PARTITIONS).collect(),
        "the traces spread over every partition"
    );

    let spans = (first.len() + loaded.len()) * 4;
    let mib = |rss: Option<f64>| rss.map_or("?".to_owned(), |m| format!("{m:.0} MiB"));
    eprintln!(
        "kafka_pipeline: {} traces ({spans} spans) in {} Kafka messages; broker ready in \
         {broker_ready:.1?}, phase 1 done at {phase1:.1?}; ingester down {outage:.1?} with \
         {during_outage} traces sent meanwhile (lag then {}), caught up {caught_up:.1?} after \
         the restart; RSS: broker {}, collector {}, ingester {} (before the crash) / {} (after); \
         total {:.1?}",
        first.len() + loaded.len(),
        after.total_log_end(),
        during.total_lag(),
        mib(rss_mib(broker.process.pid())),
        mib(rss_mib(collector.process.pid())),
        mib(ingester_rss),
        mib(rss_mib(ingester.process.pid())),
        started.elapsed(),
    );
}

/// Runs `jaeger validate` with `configs`; (success, combined output).
fn validate(bin: &Path, configs: &[PathBuf]) -> (bool, String) {
    let mut command = Command::new(bin);
    command.arg("validate");
    for config in configs {
        command.arg("--config").arg(config);
    }
    let output = command.output().expect("cannot run the jaeger binary");
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// The Cassandra variant of the distributed-storage config: its commented `shared_store` block
/// in place of the Elasticsearch one.
fn cassandra_variant(text: &str) -> String {
    let active = text
        .find("      shared_store:\n        elasticsearch:")
        .expect("the Elasticsearch block");
    let commented = text
        .find("      # shared_store:\n")
        .expect("the commented Cassandra block");
    let end = text.find("\nreceivers:").expect("receivers");
    let cassandra: String = text[commented..end]
        .lines()
        .map(|l| l.replacen("      # ", "      ", 1) + "\n")
        .collect();
    format!("{}{}{}", &text[..active], cassandra, &text[end..])
}

/// Every Kafka-pipeline config passes `jaeger validate`: the two that the pipeline test runs,
/// and the distributed-storage one with each of its backends (which no test can run here). A
/// misspelt key is rejected, so the check can fail.
#[test]
fn kafka_pipeline_configs_validate() {
    let Some(bin) = jaeger_for_tests() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary folder");
    let distributed = std::fs::read_to_string(repo_file(KAFKA_INGESTER_DISTRIBUTED_CONFIG))
        .expect("read the distributed-storage config");
    let opensearch = dir.path().join("opensearch.yaml");
    std::fs::write(
        &opensearch,
        distributed.replace("        elasticsearch:\n", "        opensearch:\n"),
    )
    .unwrap();
    let cassandra = dir.path().join("cassandra.yaml");
    let cassandra_text = cassandra_variant(&distributed);
    assert!(
        cassandra_text.contains("\n        cassandra:\n")
            && !cassandra_text.contains("\n        elasticsearch:\n"),
        "{cassandra_text}"
    );
    std::fs::write(&cassandra, cassandra_text).unwrap();
    for config in [
        repo_file(KAFKA_COLLECTOR_CONFIG),
        repo_file(KAFKA_INGESTER_CONFIG),
        repo_file(KAFKA_INGESTER_DISTRIBUTED_CONFIG),
        opensearch,
        cassandra,
    ] {
        let (ok, output) = validate(&bin, std::slice::from_ref(&config));
        assert!(
            ok,
            "`jaeger validate` rejected {}:\n{output}",
            config.display()
        );
    }

    let ingester = std::fs::read_to_string(repo_file(KAFKA_INGESTER_CONFIG)).unwrap();
    let misspelt = ingester.replace("      after: true", "      afterr: true");
    assert_ne!(misspelt, ingester);
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, misspelt).unwrap();
    let (ok, output) = validate(&bin, &[broken]);
    assert!(!ok && output.contains("afterr"), "{output}");
}
