//! A mock answers in its configured latency, not a millisecond or two later
//! (with Tokio's millisecond timer a 100 ms mock answered in 102.6 ms at
//! p50; mock-db's `timer` explains).
//!
//! On CI, an ordering that holds on a loaded machine: the median excess of
//! the mock's `db.query` spans over their delay is below the median excess
//! of a plain Tokio sleep of the same length, taken by this test between
//! the requests (same machine, same load). With Tokio's timer in the mock
//! the span is that sleep plus the span's own overhead, so it can never be
//! below it.
//!
//! The absolute targets (at p50, the span within 0.5 ms of the delay, the
//! answer as its client times it within 1 ms) are a measurement for a
//! person to run on a quiet machine: `mock_timing::` with `--ignored`, at
//! 20, 100 and 200 ms.

use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use otlp_receiver::{CollectedSpan, ReceiverConfig, RunningReceiver, SpanKind};

use crate::common::{otel_env, Options, ServiceProcess, WAIT};

const USER_DB: &str = "db.query SELECT users";
const SPAN_TARGET: Duration = Duration::from_micros(500);
const CLIENT_TARGET: Duration = Duration::from_millis(1);

/// Medians of one round, as excess over the configured delay.
#[derive(Debug, Clone, Copy)]
struct Overshoot {
    /// The mock's `db.query` spans.
    span: Duration,
    /// Its answers, timed by a client on one kept-alive connection.
    client: Duration,
    /// A Tokio sleep of the same length in this test, between the requests.
    tokio_sleep: Duration,
}

impl Overshoot {
    fn on_target(&self) -> bool {
        self.span <= SPAN_TARGET && self.client <= CLIENT_TARGET
    }
}

struct TimedMock {
    receiver: RunningReceiver,
    /// Held, not read: dropping it stops the service.
    _users: ServiceProcess,
    client: RawClient,
    delay: Duration,
}

impl TimedMock {
    async fn start(delay: Duration) -> Self {
        let receiver = otlp_receiver::start(ReceiverConfig::default())
            .await
            .expect("start OTLP receiver");
        let latency = format!("{}ms", delay.as_millis());
        let env = otel_env(&receiver, &Options::default());
        let users = ServiceProcess::start("user-service", &["--latency", &latency], &env).await;
        let client = RawClient::connect(&users.url).await;
        let mut mock = Self {
            receiver,
            _users: users,
            client,
            delay,
        };
        // The service's lazy set-up is done before anything is timed.
        mock.client.get("/users/42").await;
        mock
    }

    fn db_spans(&self) -> Vec<CollectedSpan> {
        self.receiver
            .store()
            .spans()
            .into_iter()
            .filter(|s| s.kind == SpanKind::Internal && s.name == USER_DB)
            .collect()
    }

    /// `n` requests one at a time, each started `every` after the previous
    /// one (a fixed low rate, no queueing), and the medians of their
    /// excess over the delay: the client's and their `db.query` spans'.
    async fn round(&mut self, n: usize, every: Duration) -> Overshoot {
        let before = self.db_spans().len();
        let (mut client, mut tokio_sleep) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for _ in 0..n {
            let next = Instant::now() + every;
            let took = self.client.get("/users/42").await;
            assert!(took >= self.delay, "answered in {took:?}");
            client.push(took - self.delay);
            let deadline = Instant::now() + self.delay;
            tokio::time::sleep_until(deadline.into()).await;
            tokio_sleep.push(Instant::now() - deadline);
            tokio::time::sleep_until(next.into()).await;
        }
        let spans = self
            .receiver
            .store()
            .wait_for(WAIT, |all| {
                all.iter()
                    .filter(|s| s.kind == SpanKind::Internal && s.name == USER_DB)
                    .count()
                    >= before + n
            })
            .await
            .expect("every query's span is exported");
        let mut spans: Vec<_> = spans
            .into_iter()
            .filter(|s| s.kind == SpanKind::Internal && s.name == USER_DB)
            .collect();
        spans.sort_by_key(|s| s.start_unix_nanos);
        let span = spans[before..]
            .iter()
            .map(|s| {
                let took = s.duration();
                assert!(took >= self.delay, "db.query lasted {took:?}");
                took - self.delay
            })
            .collect();
        Overshoot {
            span: median(span),
            client: median(client),
            tokio_sleep: median(tokio_sleep),
        }
    }

    /// Up to `rounds` rounds; the first on target, or all of them.
    async fn rounds(&mut self, rounds: usize, n: usize, every: Duration) -> Vec<Overshoot> {
        let mut seen = Vec::new();
        for _ in 0..rounds {
            let round = self.round(n, every).await;
            eprintln!(
                "{:?} mock: p50 over the delay: db.query span {:?}, client {:?} (a Tokio sleep: {:?})",
                self.delay, round.span, round.client, round.tokio_sleep
            );
            seen.push(round);
            if round.on_target() {
                break;
            }
        }
        seen
    }
}

/// One kept-alive HTTP/1.1 connection, spoken by hand: what is timed is
/// the mock's answer, not a debug build of a client library (reqwest's
/// stack adds 1–2 ms of its own on a loaded 2-core machine).
struct RawClient {
    connection: BufReader<TcpStream>,
    host: String,
}

impl RawClient {
    async fn connect(url: &str) -> Self {
        let host = url.trim_start_matches("http://").to_owned();
        let stream = TcpStream::connect(&host)
            .await
            .expect("connect to the mock");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        Self {
            connection: BufReader::new(stream),
            host,
        }
    }

    /// `GET path`, a 200 read to the end of its body; how long it took.
    async fn get(&mut self, path: &str) -> Duration {
        let request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", self.host);
        let started = Instant::now();
        self.connection
            .get_mut()
            .write_all(request.as_bytes())
            .await
            .expect("send the request");
        let mut line = String::new();
        self.connection.read_line(&mut line).await.expect("status");
        assert!(line.starts_with("HTTP/1.1 200 "), "{line:?}");
        let mut length = None;
        loop {
            line.clear();
            self.connection.read_line(&mut line).await.expect("header");
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse::<usize>().ok();
                }
            }
        }
        let mut body = vec![0; length.expect("a content-length")];
        self.connection
            .read_exact(&mut body)
            .await
            .expect("the whole answer");
        started.elapsed()
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mocks_query_overshoots_its_delay_less_than_a_tokio_sleep() {
    let mut mock = TimedMock::start(Duration::from_millis(20)).await;
    let round = mock.round(41, Duration::from_millis(50)).await;
    eprintln!("20 ms mock, p50 over the delay: {round:?}");
    assert!(
        round.span < round.tokio_sleep,
        "the db.query span should overshoot less than a Tokio sleep: {round:?}"
    );
}

/// The targets, at the suite's default latencies and a short one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "absolute timings, for a quiet machine: 20, 100 and 200 ms mocks at about 5 requests/s, 25 s (75 s if every round misses)"]
async fn a_mock_answers_on_time_at_p50() {
    let mut missed = Vec::new();
    for ms in [20, 100, 200] {
        let delay = Duration::from_millis(ms);
        let mut mock = TimedMock::start(delay).await;
        let every = Duration::from_millis(200).max(delay + Duration::from_millis(20));
        let seen = mock.rounds(3, 41, every).await;
        if !seen.iter().any(Overshoot::on_target) {
            missed.push((ms, seen));
        }
    }
    assert!(
        missed.is_empty(),
        "p50 over the delay (targets: span {SPAN_TARGET:?}, client {CLIENT_TARGET:?}), by delay in ms and round: {missed:?}"
    );
}
