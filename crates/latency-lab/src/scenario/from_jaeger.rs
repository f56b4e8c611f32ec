//! With `--target` and `--jaeger`: a phase's traces read back from the
//! running suite's Jaeger, by the trace ids its answers named
//! (`traceresponse`). Spans reach Jaeger from each service on its own
//! schedule (and through a collector's batches), so a trace counts as whole
//! once two readings a moment apart agree.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use trace_view::{JaegerClient, Trace, TraceId};

/// Between two readings of the traces not settled yet.
const POLL: Duration = Duration::from_secs(1);

/// How long the phase's traces may take to arrive and settle.
const WAIT: Duration = Duration::from_secs(60);

/// The traces of `ids` (each once), as Jaeger serves them once settled; an
/// id Jaeger never served is left out (its figures then count fewer spans).
pub async fn traces(client: &JaegerClient, ids: &[TraceId]) -> anyhow::Result<Vec<Trace>> {
    let mut wanted: Vec<TraceId> = ids.to_vec();
    wanted.sort_by_key(|id| id.to_string());
    wanted.dedup();
    // The spans each trace had at the last reading, and whether that
    // reading matched the one before.
    let mut seen: HashMap<TraceId, (usize, bool)> = HashMap::new();
    let mut latest: HashMap<TraceId, Trace> = HashMap::new();
    let deadline = Instant::now() + WAIT;
    loop {
        for id in &wanted {
            if seen.get(id).is_some_and(|(_, settled)| *settled) {
                continue;
            }
            if let Some(trace) = client.find_trace(*id).await? {
                let spans = trace.spans.len();
                let settled = seen.get(id).is_some_and(|(before, _)| *before == spans);
                seen.insert(*id, (spans, settled));
                latest.insert(*id, trace);
            }
        }
        let all_settled = wanted
            .iter()
            .all(|id| seen.get(id).is_some_and(|(_, settled)| *settled));
        if all_settled || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(wanted.iter().filter_map(|id| latest.remove(id)).collect())
}
