//! The scale-out pipeline's two collector tiers (`deploy/configs/front.yaml`,
//! `sampler.yaml`), on the real components: the suite exports to the front
//! tier, whose `loadbalancing` exporter spreads spans over two tail-sampling
//! collectors, each writing what it keeps to a Jaeger of its own. So a trace
//! kept whole shows up whole in exactly one Jaeger, and one cut in pieces
//! shows its pieces.
//!
//! Routed by trace id, every kept trace is complete and in one Jaeger only.
//! Routed by service (the control, a test of the test), the samplers judge
//! pieces of traces, and the kept traces come out partial or split.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use jaeger_harness::{jaeger_for_tests, otelcol_for_tests, Front, Jaeger, Sampler};
use trace_view::model::SpanKind;
use trace_view::{Trace, TraceId};

use crate::common::{traceresponse_ids, Options, Protocol, Suite, WAIT};

/// Only slow and failing traces are kept: no probabilistic share.
const POLICIES: &[(&str, &str)] = &[
    ("TAIL_SAMPLING_PERCENT", "0"),
    ("TAIL_SAMPLING_LATENCY_THRESHOLD_MS", "400"),
    ("TAIL_SAMPLING_DECISION_WAIT", "2s"),
];
const DECISION_WAIT: Duration = Duration::from_secs(2);

/// Each request's kind, fixed by its baggage: the mocks answer in 10 ms
/// unless told otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Fast,
    Slow,
    Failing,
}

impl Kind {
    fn baggage(self) -> Option<&'static str> {
        match self {
            Kind::Fast => None,
            Kind::Slow => Some("latency.orders=600ms"),
            Kind::Failing => Some("fail.orders=1"),
        }
    }
}

/// Two Jaegers, a sampler in front of each, and the front tier.
struct Pipeline {
    jaegers: [Jaeger; 2],
    _samplers: [Sampler; 2],
    front: Front,
}

fn pipeline(otelcol: &Path, jaeger: &Path, routing_key: &str) -> Pipeline {
    let jaegers = [
        Jaeger::start(jaeger).expect("start Jaeger A"),
        Jaeger::start(jaeger).expect("start Jaeger B"),
    ];
    let samplers = [
        Sampler::start(otelcol, "sampler-a", jaegers[0].ports.otlp_grpc, POLICIES)
            .expect("start sampler A"),
        Sampler::start(otelcol, "sampler-b", jaegers[1].ports.otlp_grpc, POLICIES)
            .expect("start sampler B"),
    ];
    let front = Front::start(
        otelcol,
        &[samplers[0].ports.otlp_grpc, samplers[1].ports.otlp_grpc],
        routing_key,
    )
    .expect("start the front tier");
    Pipeline {
        jaegers,
        _samplers: samplers,
        front,
    }
}

async fn suite_via(front: &Front) -> Suite {
    Suite::start(Options {
        protocol: Protocol::Grpc,
        otlp_endpoint: Some(front.otlp_grpc_endpoint()),
        user_latency: "10ms",
        order_latency: "10ms",
        ..Options::default()
    })
    .await
}

/// Sends `count` requests of each kind, all at once; returns each one's
/// kind and trace id.
async fn mixed_load(suite: &Suite, count: usize) -> Vec<(Kind, String)> {
    let mut tasks = Vec::new();
    for i in 0..count {
        for kind in [Kind::Fast, Kind::Slow, Kind::Failing] {
            let client = suite.client.clone();
            let mode = if i % 2 == 0 {
                "concurrent"
            } else {
                "sequential"
            };
            let url = format!(
                "{}/user-profile/{}?mode={mode}",
                suite.aggregator.url,
                i + 1
            );
            tasks.push(tokio::spawn(async move {
                let mut request = client.get(url);
                if let Some(baggage) = kind.baggage() {
                    request = request.header("baggage", baggage);
                }
                let response = request.send().await.expect("aggregator answers");
                let expected = if kind == Kind::Failing { 502 } else { 200 };
                assert_eq!(response.status(), expected, "{kind:?}");
                (kind, traceresponse_ids(&response).0)
            }));
        }
    }
    let mut sent = Vec::new();
    for task in tasks {
        sent.push(task.await.unwrap());
    }
    sent
}

/// Whether a trace is whole: one root (the aggregator's server span), every
/// parent present, every client call answered by a server span of the
/// callee, and the three services in it.
fn complete(trace: &Trace) -> Result<(), String> {
    let ids: HashSet<&str> = trace.spans.iter().map(|s| s.span_id.as_str()).collect();
    let roots: Vec<_> = trace
        .spans
        .iter()
        .filter(|s| s.parent_id.as_deref().is_none_or(|p| !ids.contains(p)))
        .collect();
    if roots.len() != 1 || roots[0].service != "profile-aggregator" {
        return Err(format!(
            "roots (no parent, or the parent missing): {:?}",
            roots
                .iter()
                .map(|s| format!("{} {}", s.service, s.name))
                .collect::<Vec<_>>()
        ));
    }
    for client in trace.spans.iter().filter(|s| s.kind == SpanKind::Client) {
        let answered = trace.spans.iter().any(|s| {
            s.parent_id.as_deref() == Some(client.span_id.as_str()) && s.kind == SpanKind::Server
        });
        if !answered {
            return Err(format!(
                "client span {} {} has no server span under it",
                client.service, client.name
            ));
        }
    }
    let services: BTreeSet<&str> = trace.spans.iter().map(|s| s.service.as_str()).collect();
    if services.len() != 3 {
        return Err(format!("services {services:?}"));
    }
    Ok(())
}

/// What each Jaeger holds of a trace.
async fn pieces(jaegers: &[Jaeger; 2], id: &str) -> [Option<Trace>; 2] {
    let id = TraceId::parse(id).unwrap();
    let mut found = [None, None];
    for (i, jaeger) in jaegers.iter().enumerate() {
        found[i] = jaeger.query().unwrap().find_trace(id).await.unwrap();
    }
    found
}

fn span_count(piece: &Option<Trace>) -> usize {
    piece.as_ref().map_or(0, |t| t.spans.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routed_by_trace_id_every_kept_trace_is_whole_and_in_exactly_one_sampler() {
    let Some(jaeger) = jaeger_for_tests() else {
        return;
    };
    let Some(otelcol) = otelcol_for_tests() else {
        return;
    };
    let pipeline = pipeline(&otelcol, &jaeger, "traceID");
    let suite = suite_via(&pipeline.front).await;
    // 12 kept traces of each kind: the chance that all 24 land on one
    // sampler, which would make "spread over both" fail, is 2^-23.
    let sent = mixed_load(&suite, 12).await;

    let kept: Vec<&(Kind, String)> = sent.iter().filter(|(k, _)| *k != Kind::Fast).collect();
    let mut in_jaeger = [0usize; 2];
    for (kind, id) in &kept {
        // Wait until one Jaeger holds it whole...
        let deadline = Instant::now() + WAIT;
        let found = loop {
            let found = pieces(&pipeline.jaegers, id).await;
            if found.iter().flatten().any(|t| complete(t).is_ok()) || Instant::now() > deadline {
                break found;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let whole: Vec<usize> = (0..2)
            .filter(|&i| found[i].as_ref().is_some_and(|t| complete(t).is_ok()))
            .collect();
        assert_eq!(
            whole.len(),
            1,
            "{kind:?} trace {id}: spans in Jaeger A/B: {}/{}; {:?}",
            span_count(&found[0]),
            span_count(&found[1]),
            found.iter().flatten().map(complete).collect::<Vec<_>>()
        );
        in_jaeger[whole[0]] += 1;
    }
    // ... and, a decision period later, nothing of it in the other one: the
    // other sampler never saw a span of it. Fast traces are in neither.
    tokio::time::sleep(DECISION_WAIT + Duration::from_secs(1)).await;
    for (kind, id) in &sent {
        let found = pieces(&pipeline.jaegers, id).await;
        let holders = found.iter().flatten().count();
        match kind {
            Kind::Fast => assert_eq!(holders, 0, "fast trace {id} was kept"),
            _ => {
                assert_eq!(holders, 1, "{kind:?} trace {id} is in both Jaegers");
                let whole = found.iter().flatten().next().unwrap();
                complete(whole).unwrap_or_else(|e| panic!("{kind:?} trace {id}: {e}"));
            }
        }
    }
    assert!(
        in_jaeger[0] > 0 && in_jaeger[1] > 0,
        "the front tier spread the kept traces over both samplers: {in_jaeger:?}"
    );
}

/// The control: the same pipeline routed by service. Which sampler a service
/// lands on depends on the hash ring of the samplers' addresses (free ports,
/// new each run); when all three services land on one sampler nothing is
/// split, so the run is repeated with fresh samplers until the services are
/// seen on both (each try has a 3-in-4 chance).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routed_by_service_the_samplers_keep_pieces_of_traces() {
    let Some(jaeger) = jaeger_for_tests() else {
        return;
    };
    let Some(otelcol) = otelcol_for_tests() else {
        return;
    };
    for attempt in 1..=8 {
        let pipeline = pipeline(&otelcol, &jaeger, "service");
        let suite = suite_via(&pipeline.front).await;
        let sent = mixed_load(&suite, 3).await;
        let slow: Vec<&String> = sent
            .iter()
            .filter(|(k, _)| *k == Kind::Slow)
            .map(|(_, id)| id)
            .collect();
        // The aggregator's part of a slow trace is slow, so some sampler
        // keeps it: wait for those, then a decision period for the rest.
        for id in &slow {
            let deadline = Instant::now() + WAIT;
            while pieces(&pipeline.jaegers, id)
                .await
                .iter()
                .all(Option::is_none)
            {
                assert!(
                    Instant::now() < deadline,
                    "no piece of slow trace {id} kept"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        tokio::time::sleep(DECISION_WAIT + Duration::from_secs(1)).await;

        let mut services = Vec::new();
        for jaeger in &pipeline.jaegers {
            let mut names = jaeger.query().unwrap().services().await.unwrap();
            names.sort();
            services.push(names);
        }
        if services.iter().any(Vec::is_empty) {
            eprintln!(
                "attempt {attempt}: every kept span went to one sampler ({services:?}); \
                 trying with fresh samplers"
            );
            continue;
        }
        // Routed by service, a service's spans all go to one sampler.
        let shared: Vec<&String> = services[0]
            .iter()
            .filter(|s| services[1].contains(s))
            .collect();
        assert!(
            shared.is_empty(),
            "services in both Jaegers: {shared:?} ({services:?})"
        );
        // And so no kept trace is whole anywhere.
        for (kind, id) in sent.iter().filter(|(k, _)| *k != Kind::Fast) {
            let found = pieces(&pipeline.jaegers, id).await;
            for piece in found.iter().flatten() {
                assert!(
                    complete(piece).is_err(),
                    "{kind:?} trace {id} is whole in one Jaeger although routed by service"
                );
            }
            eprintln!(
                "{kind:?} trace {id}: {} spans in Jaeger A, {} in Jaeger B",
                span_count(&found[0]),
                span_count(&found[1])
            );
        }
        return;
    }
    panic!("in 8 tries the services never hashed to more than one sampler");
}
