//! The child-process helper against small shell scripts standing in for
//! services (the real services are started with it in `mock-service` and
//! `latency-lab`'s tests).

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use service_kit::child::{ChildError, Children, ServiceCommand, Signal};

fn script(service: &str, body: &str) -> ServiceCommand {
    ServiceCommand::new(service, "sh").args(["-c", body])
}

/// Announces itself, keeps printing (the pipe must keep draining), waits.
const SERVES: &str = "echo starting; echo \"$NAME listening on http://127.0.0.1:$PORT\"; \
                      while true; do echo chatter; sleep 0.01; done";

/// A stand-in service that announces `service` on `port`.
fn serving(service: &str, port: &str) -> ServiceCommand {
    script(service, SERVES)
        .env("NAME", service)
        .env("PORT", port)
}

#[tokio::test]
async fn waits_for_the_readiness_line_and_stops_with_sigterm() {
    let child = serving("fake", "4321").start().await.unwrap();
    assert_eq!(child.service(), "fake");
    assert_eq!(child.url(), "http://127.0.0.1:4321");
    assert_eq!(child.addr().port(), 4321);
    let pid = child.pid();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stopped = child.stop(Duration::from_secs(10)).await.unwrap();
    assert_eq!(stopped.pid, pid);
    assert_eq!(stopped.service, "fake");
    assert!(!stopped.killed);
    assert_eq!(stopped.status.signal(), Some(libc::SIGTERM));
}

#[tokio::test]
async fn an_early_exit_is_an_error_naming_the_service() {
    let err = script("broken-service", "echo 'error: bad flag' >&2; exit 3")
        .start()
        .await
        .err()
        .unwrap();
    assert!(matches!(err, ChildError::ExitedEarly { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("broken-service exited before announcing"),
        "{message}"
    );
    assert!(message.contains("exit status: 3"), "{message}");
}

#[tokio::test]
async fn silence_is_an_error_after_the_timeout() {
    let err = script("silent", "sleep 30")
        .ready_within(Duration::from_millis(200))
        .start()
        .await
        .err()
        .unwrap();
    assert!(matches!(err, ChildError::NotReady { .. }), "{err}");
    assert!(err.to_string().contains("silent did not announce"), "{err}");
}

#[tokio::test]
async fn a_child_that_ignores_sigterm_is_killed_after_the_deadline() {
    let child = script(
        "stubborn",
        "trap '' TERM; echo 'stubborn listening on http://127.0.0.1:1'; while true; do sleep 0.05; done",
    )
    .start()
    .await
    .unwrap();
    let stopped = child.stop(Duration::from_millis(300)).await.unwrap();
    assert!(stopped.killed);
    assert_eq!(stopped.status.signal(), Some(libc::SIGKILL));
}

#[tokio::test]
async fn children_stop_last_started_first_each_reported() {
    let mut children = Children::default();
    for (name, port) in [("first", "1"), ("second", "2"), ("third", "3")] {
        let child = children.start(serving(name, port)).await.unwrap();
        assert_eq!(child.url(), format!("http://127.0.0.1:{port}"));
    }
    let pids: Vec<u32> = children.iter().map(|c| c.pid()).collect();
    let reports = children.stop_all(Duration::from_secs(10)).await;
    let stopped: Vec<(String, u32, bool)> = reports
        .into_iter()
        .map(|r| r.unwrap())
        .map(|s| (s.service, s.pid, s.killed))
        .collect();
    assert_eq!(
        stopped,
        vec![
            ("third".to_owned(), pids[2], false),
            ("second".to_owned(), pids[1], false),
            ("first".to_owned(), pids[0], false),
        ]
    );
    assert_eq!(children.iter().count(), 0);
}

/// Each stand-in takes a while to stop and writes when it was told to and
/// when it is done: the next one is told only once the previous is done.
#[tokio::test]
async fn each_child_is_signalled_only_after_the_one_started_after_it_exited() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stops.log");
    let mut children = Children::default();
    for (name, port) in [("back", "1"), ("middle", "2"), ("front", "3")] {
        let command = script(
            name,
            "trap 'echo \"term $NAME\" >> \"$LOG\"; sleep 0.2; echo \"exit $NAME\" >> \"$LOG\"; exit 0' TERM; \
             echo \"$NAME listening on http://127.0.0.1:$PORT\"; while true; do sleep 0.01; done",
        )
        .env("NAME", name)
        .env("PORT", port)
        .env("LOG", &log);
        children.start(command).await.unwrap();
    }
    for report in children.stop_all(Duration::from_secs(10)).await {
        let stopped = report.unwrap();
        assert!(stopped.status.success() && !stopped.killed, "{stopped:?}");
    }
    let order = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        order.lines().collect::<Vec<_>>(),
        [
            "term front",
            "exit front",
            "term middle",
            "exit middle",
            "term back",
            "exit back"
        ],
        "one at a time, front to back"
    );
}

#[tokio::test]
async fn stopping_with_sigint_and_signalling_a_group() {
    // A job started in the background by a non-interactive shell (CI, a
    // script with `&`) inherits SIGINT *ignored*, and `sh` cannot undo that:
    // perl (Debian's essential perl-base) restores the default first. The
    // real services install their own handlers, so they need no such help.
    let child = ServiceCommand::new("interrupted", "perl")
        .args([
            "-e",
            "$SIG{INT} = 'DEFAULT'; exec 'sh', '-c', $ARGV[0]",
            SERVES,
        ])
        .env("NAME", "interrupted")
        .env("PORT", "9")
        .start()
        .await
        .unwrap();
    let stopped = child
        .stop_with(Signal::Interrupt, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(stopped.status.signal(), Some(libc::SIGINT));
    // No such group: an error, not a panic.
    assert!(service_kit::child::send_to_group(u32::MAX / 2, Signal::Kill).is_err());
}
