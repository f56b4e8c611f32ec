//! Sends the requests of a load run and records each one: an open loop on a
//! fixed schedule (the default), or a closed loop of workers.
//!
//! The open loop is what a latency engineer trusts: requests leave when the
//! schedule says, whatever the target does, and each latency counts from
//! the *intended* send time — a stall delays every request due during it,
//! and they all show in the percentiles (no coordinated omission). The
//! number in flight is bounded; a request due while the bound is reached
//! leaves as soon as a slot frees, is counted as late, and is never dropped.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::bail;
use std::time::Instant;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use trace_view::TraceId;

use super::record::{Outcome, Pacing, Record, Run, Variant};
use super::schedule::{Rate, Schedule};

/// How long requests still in flight may finish after Ctrl-C before they
/// are cut short (and recorded as such).
const INTERRUPT_GRACE: Duration = Duration::from_secs(1);

/// Told of each measured request as it ends (the progress bar).
pub type Observer = Arc<std::sync::Mutex<super::progress::Progress>>;

/// What to run.
#[derive(Clone)]
pub struct Plan {
    pub loop_: Loop,
    /// Request `i` goes to variant `i mod n`; at least one.
    pub variants: Vec<Variant>,
    /// Measured requests: at most this many…
    pub requests: Option<u64>,
    /// …and (open loop) due, or (closed loop) sent, within this long.
    pub duration: Option<Duration>,
    pub warmup: Warmup,
    pub request_timeout: Duration,
    /// A live view to keep up to date, if any.
    pub observer: Option<Observer>,
}

/// Open or closed loop.
#[derive(Debug, Clone, Copy)]
pub enum Loop {
    Open { rate: Rate, max_in_flight: u64 },
    Closed { concurrency: u64 },
}

/// Requests sent before the measured ones and left out of the records: a
/// target's caches, pools and history (a `p95` hedge) settle first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warmup {
    Count(u64),
    For(Duration),
}

impl Warmup {
    pub const NONE: Warmup = Warmup::Count(0);
}

/// Shared by every request of a run: whether the target ever answered, and
/// the first refused connection while it had not (the run stops at once).
#[derive(Default)]
struct Reachability {
    connected: AtomicBool,
    refused: Mutex<Option<String>>,
    stop: CancellationToken,
}

impl Reachability {
    fn saw(&self, outcome: &Outcome, url: &reqwest::Url, reason: Option<String>) {
        if *outcome != Outcome::Connect {
            self.connected.store(true, Ordering::Relaxed);
        } else if !self.connected.load(Ordering::Relaxed) {
            let mut refused = self.refused.lock().expect("reachability lock");
            refused.get_or_insert_with(|| {
                format!(
                    "cannot connect to {}{}",
                    url.origin().ascii_serialization(),
                    reason.map(|r| format!(": {r}")).unwrap_or_default()
                )
            });
            self.stop.cancel();
        }
    }

    fn unreachable(&self) -> Option<String> {
        self.refused.lock().expect("reachability lock").clone()
    }
}

/// Tells the plan's observer of a measured request.
fn observe(plan: &Plan, done: &Done) {
    if let (true, Some(observer)) = (done.measured, &plan.observer) {
        observer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .record(&done.record);
    }
}

/// One finished request, before it is known whether it was warm-up.
struct Done {
    measured: bool,
    record: Record,
    /// Open loop: sent later than intended because of `max_in_flight`.
    late: bool,
}

/// Runs the plan until its requests are sent and answered, the target turns
/// out unreachable (an error), or `interrupt` is cancelled (Ctrl-C: the
/// run so far, marked interrupted).
pub async fn run(
    client: &reqwest::Client,
    plan: &Plan,
    interrupt: CancellationToken,
) -> anyhow::Result<Run> {
    assert!(!plan.variants.is_empty(), "a plan has a variant");
    let reach = Arc::new(Reachability::default());
    let cut = CancellationToken::new();
    let (dones, origin, end, pacing) = match plan.loop_ {
        Loop::Open {
            rate,
            max_in_flight,
        } => {
            let (dones, origin) =
                open_loop(client, plan, rate, max_in_flight, &interrupt, &reach, &cut).await;
            let pacing = Pacing::Open {
                rate: (rate.start, rate.end),
                max_in_flight,
            };
            (dones, origin, Instant::now(), pacing)
        }
        Loop::Closed { concurrency } => {
            let (dones, origin) =
                closed_loop(client, plan, concurrency, &interrupt, &reach, &cut).await;
            (
                dones,
                origin,
                Instant::now(),
                Pacing::Closed { concurrency },
            )
        }
    };
    if let Some(unreachable) = reach.unreachable() {
        bail!("{unreachable}");
    }
    let mut late = 0;
    let mut send_lag = Vec::new();
    let mut records: Vec<Record> = dones
        .into_iter()
        .filter(|d| d.measured)
        .map(|d| {
            if d.late {
                late += 1;
            } else if matches!(pacing, Pacing::Open { .. }) {
                send_lag.push(d.record.sent.saturating_sub(d.record.intended));
            }
            d.record
        })
        .collect();
    records.sort_by_key(|r| (r.sent, r.intended));
    let elapsed = match &pacing {
        Pacing::Open { .. } => records
            .iter()
            .map(|r| r.intended + r.latency)
            .max()
            .unwrap_or_default(),
        Pacing::Closed { .. } => end.saturating_duration_since(origin),
    };
    Ok(Run {
        pacing,
        variants: plan.variants.clone(),
        elapsed,
        records,
        late,
        interrupted: interrupt.is_cancelled(),
        send_lag,
    })
}

/// The open loop: one dispatcher wakes at each due time (computed from the
/// start, not accumulated) and hands the request to its own task.
///
/// The dispatcher is an OS thread that sleeps with the system's
/// high-resolution timer: tokio's timer has 1 ms steps, which would make
/// every request up to a millisecond late (and the generator, not the
/// target, the source of that latency).
async fn open_loop(
    client: &reqwest::Client,
    plan: &Plan,
    rate: Rate,
    max_in_flight: u64,
    interrupt: &CancellationToken,
    reach: &Arc<Reachability>,
    cut: &CancellationToken,
) -> (Vec<Done>, Instant) {
    let steady = Schedule::new(
        Rate {
            start: rate.start,
            end: rate.start,
        },
        Duration::ZERO,
    );
    let schedule = Schedule::new(rate, plan.duration.unwrap_or_default());
    // Warm-up at the starting rate, then the measured schedule right after.
    let warmup = match plan.warmup {
        Warmup::Count(n) => n,
        Warmup::For(d) => steady.count_before(d),
    };
    let measured = match (plan.requests, plan.duration) {
        (Some(n), Some(d)) => n.min(schedule.count_before(d)),
        (Some(n), None) => n,
        (None, Some(d)) => schedule.count_before(d),
        (None, None) => unreachable!("the arguments bound every run"),
    };
    let start = Instant::now();
    let origin = start + steady.due(warmup);
    let slots = Arc::new(Semaphore::new(
        usize::try_from(max_in_flight).unwrap_or(Semaphore::MAX_PERMITS),
    ));
    let (tx, mut rx) = mpsc::unbounded_channel::<Done>();
    let dispatcher = Dispatcher {
        runtime: tokio::runtime::Handle::current(),
        client: client.clone(),
        plan: plan.clone(),
        interrupt: interrupt.clone(),
        reach: reach.clone(),
        cut: cut.clone(),
        slots,
        done: tx,
    };
    let thread = std::thread::Builder::new()
        .name("load-dispatcher".to_owned())
        .spawn(move || {
            dispatcher.dispatch(warmup + measured, |k| {
                if k < warmup {
                    (start + steady.due(k), false)
                } else {
                    (origin + schedule.due(k - warmup), true)
                }
            });
        })
        .expect("a thread for the load dispatcher");
    let cutter = cut_after_grace(interrupt, cut);
    let mut dones = Vec::with_capacity(usize::try_from(measured).unwrap_or(0));
    while let Some(done) = rx.recv().await {
        observe(plan, &done);
        dones.push(done);
    }
    cutter.abort();
    // The channel closes when the thread and every request are done.
    let _ = thread.join();
    for done in &mut dones {
        done.record.intended = done.record.intended.saturating_sub(origin - start);
        done.record.sent = done.record.sent.saturating_sub(origin - start);
    }
    (dones, origin)
}

/// What the open loop's dispatcher thread needs.
struct Dispatcher {
    runtime: tokio::runtime::Handle,
    client: reqwest::Client,
    plan: Plan,
    interrupt: CancellationToken,
    reach: Arc<Reachability>,
    cut: CancellationToken,
    slots: Arc<Semaphore>,
    done: mpsc::UnboundedSender<Done>,
}

impl Dispatcher {
    /// Sends requests `0..count`, each at `due(k)` = (when, measured). Times
    /// in the records are from the first request's due time, for now.
    fn dispatch(self, count: u64, due: impl Fn(u64) -> (Instant, bool)) {
        let stopped = || self.interrupt.is_cancelled() || self.reach.stop.is_cancelled();
        let start = due(0).0;
        for k in 0..count {
            let (at, measured) = due(k);
            // Sleep in short steps, to notice Ctrl-C at any rate.
            loop {
                if stopped() {
                    return;
                }
                let now = Instant::now();
                if now >= at {
                    break;
                }
                std::thread::sleep((at - now).min(Duration::from_millis(50)));
            }
            let (permit, late) = match self.slots.clone().try_acquire_owned() {
                Ok(permit) => (permit, false),
                Err(_) => {
                    let waited = self.runtime.block_on(async {
                        tokio::select! {
                            permit = self.slots.clone().acquire_owned() => permit.ok(),
                            _ = self.interrupt.cancelled() => None,
                            _ = self.reach.stop.cancelled() => None,
                        }
                    });
                    match waited {
                        Some(permit) => (permit, true),
                        None => return,
                    }
                }
            };
            let index = usize::try_from(k).unwrap_or(0) % self.plan.variants.len();
            let variant = &self.plan.variants[index];
            let (client, url, headers) = (
                self.client.clone(),
                variant.url.clone(),
                variant.headers.clone(),
            );
            let (reach, cut, timeout) = (
                self.reach.clone(),
                self.cut.clone(),
                self.plan.request_timeout,
            );
            let done = self.done.clone();
            self.runtime.spawn(async move {
                let sent = Instant::now();
                let (outcome, trace_id, reason) =
                    one_request(&client, &url, &headers, timeout, &cut).await;
                let ended = Instant::now();
                drop(permit);
                reach.saw(&outcome, &url, reason);
                let _ = done.send(Done {
                    measured,
                    late,
                    record: Record {
                        variant: index,
                        intended: at.saturating_duration_since(start),
                        sent: sent.saturating_duration_since(start),
                        latency: ended.saturating_duration_since(at),
                        outcome,
                        trace_id,
                    },
                });
            });
        }
    }
}

/// Cancels `cut` [`INTERRUPT_GRACE`] after `interrupt`.
fn cut_after_grace(
    interrupt: &CancellationToken,
    cut: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let (interrupt, cut) = (interrupt.clone(), cut.clone());
    tokio::spawn(async move {
        interrupt.cancelled().await;
        tokio::time::sleep(INTERRUPT_GRACE).await;
        cut.cancel();
    })
}

/// The closed loop: `concurrency` workers, each sending its next request
/// when its previous answer is in. Intended and actual send times are the
/// same: a closed loop has no schedule to fall behind.
async fn closed_loop(
    client: &reqwest::Client,
    plan: &Plan,
    concurrency: u64,
    interrupt: &CancellationToken,
    reach: &Arc<Reachability>,
    cut: &CancellationToken,
) -> (Vec<Done>, Instant) {
    let start = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    // Measured requests sent so far (the warm-up's are not counted).
    let measured_sent = Arc::new(AtomicU64::new(0));
    // When the measured part began: after a timed warm-up, or at the first
    // measured request.
    let origin = Arc::new(OnceLock::new());
    if let Warmup::For(d) = plan.warmup {
        let _ = origin.set(start + d);
    }
    let mut tasks = JoinSet::new();
    for _ in 0..concurrency {
        let (client, plan, next, origin) =
            (client.clone(), plan.clone(), next.clone(), origin.clone());
        let measured_sent = measured_sent.clone();
        let (interrupt, reach, cut) = (interrupt.clone(), reach.clone(), cut.clone());
        tasks.spawn(async move {
            let mut dones = Vec::new();
            loop {
                if interrupt.is_cancelled() || reach.stop.is_cancelled() {
                    break;
                }
                let k = next.fetch_add(1, Ordering::Relaxed);
                let sent = Instant::now();
                let measured = match plan.warmup {
                    Warmup::Count(n) => k >= n,
                    Warmup::For(d) => sent >= start + d,
                };
                if measured {
                    let origin = *origin.get_or_init(|| sent);
                    let m = measured_sent.fetch_add(1, Ordering::Relaxed);
                    let over_count = plan.requests.is_some_and(|n| m >= n);
                    let over_time = plan.duration.is_some_and(|d| sent >= origin + d);
                    if over_count || over_time {
                        break;
                    }
                }
                let index = usize::try_from(k).unwrap_or(0) % plan.variants.len();
                let variant = &plan.variants[index];
                let (outcome, trace_id, reason) = one_request(
                    &client,
                    &variant.url,
                    &variant.headers,
                    plan.request_timeout,
                    &cut,
                )
                .await;
                let ended = Instant::now();
                reach.saw(&outcome, &variant.url, reason);
                let origin = origin.get().copied().unwrap_or(sent);
                let done = Done {
                    measured,
                    late: false,
                    record: Record {
                        variant: index,
                        intended: sent.saturating_duration_since(origin),
                        sent: sent.saturating_duration_since(origin),
                        latency: ended.saturating_duration_since(sent),
                        outcome,
                        trace_id,
                    },
                };
                observe(&plan, &done);
                dones.push(done);
            }
            dones
        });
    }
    let cutter = cut_after_grace(interrupt, cut);
    let mut dones = Vec::new();
    while let Some(worker) = tasks.join_next().await {
        dones.extend(worker.unwrap_or_default());
    }
    cutter.abort();
    let origin = origin.get().copied().unwrap_or(start);
    (dones, origin)
}

/// One GET, to the end of its answer's body: its outcome, the trace id from
/// `traceresponse`, and why a connection failed.
async fn one_request(
    client: &reqwest::Client,
    url: &reqwest::Url,
    headers: &[(String, String)],
    timeout: Duration,
    cut: &CancellationToken,
) -> (Outcome, Option<TraceId>, Option<String>) {
    let mut request = client.get(url.clone()).timeout(timeout);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let exchange = async {
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
                match response.bytes().await {
                    Ok(_) => (Outcome::Status(status), trace_id, None),
                    Err(e) if e.is_timeout() => (Outcome::Timeout, trace_id, None),
                    Err(e) => (
                        Outcome::Other(format!("body: {}", root_cause(&e))),
                        trace_id,
                        None,
                    ),
                }
            }
            Err(e) if e.is_timeout() => (Outcome::Timeout, None, None),
            Err(e) if e.is_connect() => (Outcome::Connect, None, Some(root_cause(&e))),
            Err(e) => (Outcome::Other(root_cause(&e)), None, None),
        }
    };
    tokio::select! {
        result = exchange => result,
        _ = cut.cancelled() => (Outcome::Other("cut short by Ctrl-C".to_owned()), None, None),
    }
}

/// The innermost reason of an error (`Connection refused (os error 111)`).
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut source = error;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}
