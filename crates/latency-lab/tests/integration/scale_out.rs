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

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use jaeger_harness::{jaeger_for_tests, otelcol_for_tests, Front, Jaeger, ScaleOut};
use trace_view::completeness::missing_pieces;
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

/// The services, which routing by service must spread over the samplers.
const SERVICES: &[&str] = &["profile-aggregator", "user-service", "order-service"];

/// Two Jaegers, a sampler in front of each, and the front tier routing by
/// `routing_key`.
fn pipeline(routing_key: &str) -> Option<ScaleOut> {
    let jaeger = jaeger_for_tests()?;
    let otelcol = otelcol_for_tests()?;
    let mut env = POLICIES.to_vec();
    env.push(("LB_ROUTING_KEY", routing_key));
    Some(ScaleOut::start(&jaeger, &otelcol, 2, &env, SERVICES).expect("start the pipeline"))
}

async fn suite_via(front: &Front) -> Suite {
    Suite::start(Options {
        protocol: Protocol::Grpc,
        otlp_endpoint: Some(front.otlp_grpc_endpoint()),
        user_latency: "10ms",
        order_latency: "10ms",
        // The tiers are a traces pipeline: no metrics pipeline to send to.
        extra_env: SERVICES
            .iter()
            .map(|s| (*s, "OTEL_METRICS_EXPORTER", "none"))
            .collect(),
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

/// Whether a trace is whole (one root, every parent present, every answered
/// call with its server span), the order service in it: slow and failing
/// traces are so by the order service. (A failing trace may lack the user
/// service: the aggregator cancels its call when the orders fail, sometimes
/// before the request left.)
fn complete(trace: &Trace) -> Result<(), String> {
    if let Some(missing) = missing_pieces(trace) {
        return Err(missing);
    }
    let services: BTreeSet<&str> = trace.spans.iter().map(|s| s.service.as_str()).collect();
    if !services.contains("profile-aggregator") || !services.contains("order-service") {
        return Err(format!("services {services:?}"));
    }
    Ok(())
}

/// What each Jaeger holds of a trace.
async fn pieces(jaegers: &[Jaeger], id: &str) -> [Option<Trace>; 2] {
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
    let Some(pipeline) = pipeline("traceID") else {
        return;
    };
    let suite = suite_via(&pipeline.front).await;
    // 12 kept traces of each kind: the chance that all 24 land on one
    // sampler, which would make "spread over both" fail, is 2^-23.
    let sent = mixed_load(&suite, 12).await;

    let mut in_jaeger = [0usize; 2];
    for (kind, id) in sent.iter().filter(|(k, _)| *k != Kind::Fast) {
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
        // ... the one the exporter's ring names for its trace id.
        let key = TraceId::parse(id).unwrap().0.to_be_bytes();
        assert_eq!(
            pipeline.sampler_for(&key),
            Some(whole[0]),
            "{kind:?} trace {id} went to another sampler than the ring says"
        );
        in_jaeger[whole[0]] += 1;
    }
    // A decision period later, nothing of it in the other one: the other
    // sampler never saw a span of it. Fast traces are in neither.
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

/// The control, a test of the test: the same pipeline routed by service.
/// Which sampler a service lands on depends on the samplers' addresses (free
/// ports, new each run): [`ScaleOut::start`] picks addresses for which the
/// ring spreads the three services, so the control splits traces every run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routed_by_service_the_samplers_keep_pieces_of_traces() {
    let Some(pipeline) = pipeline("service") else {
        return;
    };
    let landed: BTreeSet<Option<usize>> = SERVICES
        .iter()
        .map(|s| pipeline.sampler_for(s.as_bytes()))
        .collect();
    assert!(
        landed.len() > 1,
        "the ring keeps the services apart: {landed:?}"
    );
    let suite = suite_via(&pipeline.front).await;
    let sent = mixed_load(&suite, 3).await;
    // The aggregator's part of a slow trace is slow, so its sampler keeps
    // it: wait for those, then a decision period for the other pieces.
    for (_, id) in sent.iter().filter(|(k, _)| *k == Kind::Slow) {
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

    // Every service's spans are in the Jaeger of the sampler the ring names
    // for it, and in no other.
    for (i, jaeger) in pipeline.jaegers.iter().enumerate() {
        for service in jaeger.query().unwrap().services().await.unwrap() {
            assert_eq!(
                pipeline.sampler_for(service.as_bytes()),
                Some(i),
                "{service}'s spans are in Jaeger {i}"
            );
        }
    }
    // And so no kept trace is whole anywhere.
    for (kind, id) in sent.iter().filter(|(k, _)| *k != Kind::Fast) {
        let found = pieces(&pipeline.jaegers, id).await;
        assert!(
            found.iter().any(Option::is_some),
            "nothing of {kind:?} trace {id} kept"
        );
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
}
