//! The suite a scenario runs against: started for it (the three services
//! as child processes on free ports, exporting to an embedded receiver on a
//! free port, so a scenario never clashes with a running `latency-lab up`),
//! or an already running one (`--target`).

use std::collections::{BTreeMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use otlp_receiver::{ReceiverConfig, RunningReceiver};
use trace_view::{Trace, TraceId};

use crate::up::children::Children;

/// Traces held in memory: every trace of the longest scenario, with room.
const MAX_TRACES: usize = 200_000;

/// A trace's spans are all in once none has arrived for this long (the
/// services export every 100 ms).
const QUIET: Duration = Duration::from_millis(800);

/// How long a phase's spans may take to arrive.
const SETTLE_WAIT: Duration = Duration::from_secs(30);

/// A suite this scenario started.
pub struct Started {
    pub aggregator: reqwest::Url,
    pub receiver: RunningReceiver,
    children: Children,
}

/// The prefixes of the services' own settings: inherited ones are dropped,
/// so a scenario runs as its description says whatever the shell exports.
const SERVICE_PREFIXES: [&str; 3] = ["USER_SERVICE_", "ORDER_SERVICE_", "AGGREGATOR_"];

impl Started {
    /// Starts the receiver and the three services with `env` (the
    /// scenario's start-up settings) and the mocks' seeds. With
    /// `export_to`, the services send their spans and metrics there (a
    /// collector) instead of to the receiver — their spans only, when
    /// `metrics_to_receiver` (the scale-out pipeline carries traces alone).
    pub async fn start(
        env: &BTreeMap<String, String>,
        seed: u64,
        export_to: Option<String>,
        metrics_to_receiver: bool,
        aggregator_export_delay: Option<Duration>,
    ) -> anyhow::Result<Started> {
        let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let receiver = otlp_receiver::start(ReceiverConfig {
            grpc_addr: any,
            http_addr: any,
            max_traces: MAX_TRACES,
            forward_to: None,
        })
        .await
        .context("cannot start the embedded OTLP receiver")?;
        let endpoint = export_to.unwrap_or_else(|| receiver.grpc_endpoint());
        let inherited: Vec<String> = std::env::vars()
            .map(|(key, _)| key)
            .filter(|key| SERVICE_PREFIXES.iter().any(|p| key.starts_with(p)))
            .collect();
        let mut settings: Vec<(String, String)> =
            env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        settings.push(("USER_SERVICE_SEED".to_owned(), seed.to_string()));
        settings.push((
            "ORDER_SERVICE_SEED".to_owned(),
            seed.wrapping_add(1).to_string(),
        ));
        // The services' own log lines (an injected failure is an ERROR)
        // would interleave with the report: off, unless RUST_LOG asks.
        if metrics_to_receiver {
            settings.push((
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT".to_owned(),
                receiver.grpc_endpoint(),
            ));
        }
        if std::env::var_os("RUST_LOG").is_none() {
            settings.push(("RUST_LOG".to_owned(), "off".to_owned()));
        }
        // Quiet: the report is the output, not a line per stopped service.
        let mut children = Children::with_env(settings, inherited, true);
        if let Some(delay) = aggregator_export_delay {
            children.set_for(
                "profile-aggregator",
                "OTEL_BSP_SCHEDULE_DELAY",
                delay.as_millis().to_string(),
            );
        }
        let listen = ["--listen", "127.0.0.1:0"];
        let users = children.start("user-service", &listen, &endpoint).await?;
        let orders = children.start("order-service", &listen, &endpoint).await?;
        let aggregator = children
            .start(
                "profile-aggregator",
                &[
                    "--listen",
                    "127.0.0.1:0",
                    "--user-service-url",
                    &users,
                    "--order-service-url",
                    &orders,
                ],
                &endpoint,
            )
            .await?;
        let aggregator = reqwest::Url::parse(&aggregator).context("the aggregator's URL")?;
        Ok(Started {
            aggregator,
            receiver,
            children,
        })
    }

    /// Stops the services (each flushes its spans and metrics) and the receiver.
    pub async fn stop(mut self) {
        self.children.stop().await;
        self.receiver.shutdown().await;
    }

    /// Stops the services only: their last metrics are then in the receiver.
    pub async fn stop_services(&mut self) {
        self.children.stop().await;
    }
}

/// The traces the receiver holds now.
pub fn known_traces(receiver: &RunningReceiver) -> HashSet<String> {
    receiver.store().trace_ids().into_iter().collect()
}

/// Waits until the spans of `expected` have arrived and no span has come for
/// a moment, then returns every trace not in `known`, in id order.
pub async fn new_traces(
    receiver: &RunningReceiver,
    known: &HashSet<String>,
    expected: &[TraceId],
) -> Vec<Trace> {
    let store = receiver.store();
    let mut feed = store.subscribe();
    let deadline = Instant::now() + SETTLE_WAIT;
    loop {
        match tokio::time::timeout(QUIET, feed.recv()).await {
            Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => break,
            Err(_quiet) => {
                let present: HashSet<TraceId> = store
                    .trace_ids()
                    .iter()
                    .filter_map(|id| TraceId::parse(id).ok())
                    .collect();
                if expected.iter().all(|id| present.contains(id)) {
                    break;
                }
            }
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    let mut ids: Vec<String> = store
        .trace_ids()
        .into_iter()
        .filter(|id| !known.contains(id))
        .collect();
    ids.sort();
    ids.iter()
        .filter_map(|id| {
            let spans = store.trace(id);
            Trace::from_collected(&spans)
        })
        .collect()
}
