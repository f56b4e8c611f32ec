//! Stopping a stack front to back: a terminal's Ctrl-C (SIGINT to the
//! whole process group) while a sequential request is halfway through its
//! calls. `up` stops the aggregator first, which finishes the request while
//! the mocks still answer; stopping every tier at once would make it a 502.

use std::time::Duration;

use service_kit::child::{self, Signal};

use crate::common::WAIT;
use crate::up_waterfalls::{read_until, spawn_up};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_on_up_lets_a_sequential_request_in_flight_finish() {
    let dir = tempfile::tempdir().unwrap();
    let (mut up, mut lines, _guard) = spawn_up(
        dir.path(),
        &[
            "--no-demo",
            "--user-latency",
            "600ms",
            "--order-latency",
            "300ms",
        ],
    );
    let group = up.id().expect("up is running");
    let mut out = Vec::new();
    read_until(&mut lines, &mut out, "the follow mode", |l| {
        l.starts_with("waiting for requests")
    })
    .await;
    let aggregator = out
        .iter()
        .filter_map(|l| l.trim().strip_prefix("profile-aggregator"))
        .find(|rest| rest.trim_start().starts_with("http://"))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the aggregator's URL is printed")
        .to_owned();

    let request = tokio::spawn(async move {
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(format!("{aggregator}/user-profile/7?mode=sequential"))
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    // The user service's 600 ms are under way; the order service's call
    // has not started.
    tokio::time::sleep(Duration::from_millis(300)).await;
    child::send_to_group(group, Signal::Interrupt).expect("Ctrl-C to the group");

    let status = tokio::time::timeout(WAIT, request)
        .await
        .expect("the request ends")
        .unwrap();
    assert_eq!(status.ok(), Some(200), "the request in flight finished");
    let (rest, exit) = crate::common::rest_of_output_and_exit(&mut lines, &mut up, WAIT).await;
    out.extend(rest);
    let all = out.join("\n");
    assert!(exit.success(), "{exit}:\n{all}");
    let stopped: Vec<&str> = out
        .iter()
        .filter_map(|l| l.strip_prefix("stopped ")?.split(' ').next())
        .collect();
    assert_eq!(
        stopped,
        ["profile-aggregator", "order-service", "user-service"],
        "{all}"
    );
}
