//! Synthetic traces with a known answer: the shares are exact.

use std::collections::BTreeMap;

use trace_view::model::{SpanKind, Status, Value};
use trace_view::{Span, Trace, TraceId};

use super::attribute::attribute;
use super::groups::{self, differences};

/// A span: `(id, parent, service, name, start ms, duration ms)`.
type S = (
    &'static str,
    Option<&'static str>,
    &'static str,
    &'static str,
    u64,
    u64,
);

fn trace(n: u64, spans: &[S]) -> Trace {
    Trace {
        trace_id: TraceId::parse(&format!("{n:032x}")).unwrap(),
        spans: spans
            .iter()
            .map(|(id, parent, service, name, start, dur)| Span {
                span_id: format!("{:0>16}", id),
                parent_id: parent.map(|p| format!("{p:0>16}")),
                service: (*service).to_owned(),
                name: (*name).to_owned(),
                kind: SpanKind::Internal,
                start_us: 1_000_000 + start * 1000,
                duration_us: dur * 1000,
                status: Status::Unset,
                scope: String::new(),
                attributes: BTreeMap::new(),
                resource: BTreeMap::new(),
                events: Vec::new(),
                links: Vec::new(),
            })
            .collect(),
    }
}

const ROOT: &str = "agg GET /p";
const USERS: &str = "users db";
const ORDERS: &str = "orders db";
const POOL: &str = "orders pool.wait";

/// Users 100 ms and orders `orders` ms, one after the other.
fn sequential(n: u64, orders: u64) -> Trace {
    trace(
        n,
        &[
            ("1", None, "agg", "GET /p", 0, 100 + orders),
            ("2", Some("1"), "users", "db", 0, 100),
            ("3", Some("1"), "orders", "db", 100, orders),
        ],
    )
}

/// Users 100 ms and orders 200 ms at once; with `wait` ms of pool wait
/// before the orders query.
fn concurrent(n: u64, wait: u64) -> Trace {
    let mut spans: Vec<S> = vec![
        ("1", None, "agg", "GET /p", 0, 200 + wait),
        ("2", Some("1"), "users", "db", 0, 100),
        ("3", Some("1"), "orders", "db", wait, 200),
    ];
    if wait > 0 {
        spans.push(("4", Some("1"), "orders", "pool.wait", 0, wait));
    }
    trace(n, &spans)
}

fn critical(t: &Trace, op: &str) -> u64 {
    attribute(t)
        .unwrap()
        .critical_us
        .get(op)
        .copied()
        .unwrap_or(0)
}

#[test]
fn sequential_calls_are_both_on_the_path() {
    let t = sequential(1, 200);
    let a = attribute(&t).unwrap();
    assert_eq!(a.endpoint, ROOT);
    assert_eq!(a.latency_us, 300_000);
    assert_eq!(critical(&t, USERS), 100_000);
    assert_eq!(critical(&t, ORDERS), 200_000);
    assert_eq!(critical(&t, ROOT), 0);
    assert_eq!(a.exclusive_us[ROOT], 0);
}

#[test]
fn the_flame_graphs_stacks_are_the_critical_path_from_the_root() {
    let a = attribute(&sequential(1, 200)).unwrap();
    let b = attribute(&concurrent(2, 600)).unwrap();
    assert_eq!(
        super::flame::folded(&[&a, &b]),
        [
            "agg GET /p;orders db 400000",
            "agg GET /p;orders pool.wait 600000",
            "agg GET /p;users db 100000",
        ]
    );
}

#[test]
fn of_concurrent_calls_only_the_slower_is_on_the_path() {
    let t = concurrent(1, 0);
    assert_eq!(critical(&t, ORDERS), 200_000);
    assert_eq!(critical(&t, USERS), 0);
    // Off the path, but its exclusive time is still its own.
    assert_eq!(attribute(&t).unwrap().exclusive_us[USERS], 100_000);
}

#[test]
fn pool_queueing_in_the_tail_only_is_named() {
    // 98 typical traces without a wait, 2 with 600 ms in the pool.
    let mut set: Vec<_> = (0..98)
        .map(|n| attribute(&concurrent(n, 0)).unwrap())
        .collect();
    set.extend((98..100).map(|n| attribute(&concurrent(n, 600)).unwrap()));
    let (typical, tail) = groups::split(&set, 0.99).unwrap();
    assert_eq!(typical.traces, 98);
    assert_eq!(tail.traces, 2);
    assert_eq!(tail.bound_us, 800_000);
    let share = |g: &groups::Group, op: &str| {
        g.operations
            .iter()
            .find(|o| o.operation == op)
            .map_or(0.0, |o| o.share)
    };
    assert_eq!(share(&typical, ORDERS), 1.0);
    assert_eq!(share(&typical, POOL), 0.0);
    // 600 of 800 ms waiting for the connection, 200 in the query.
    assert_eq!(share(&tail, POOL), 0.75);
    assert_eq!(share(&tail, ORDERS), 0.25);
    assert_eq!(
        differences(&typical, &tail),
        [
            "at p99, 75% of the critical path is orders pool.wait (at p50: 0%)",
            "orders pool.wait holds the critical path only in the tail (75%)",
        ]
    );
    let pool = tail
        .operations
        .iter()
        .find(|o| o.operation == POOL)
        .unwrap();
    assert_eq!(
        (pool.exclusive_p50_us, pool.exclusive_p99_us),
        (600_000, 600_000)
    );
}

#[test]
fn a_child_that_outlives_its_parent_counts_only_while_the_parent_waited() {
    // The orders query runs 100 ms past its parent's end (work left running
    // after the answer went out).
    let t = trace(
        1,
        &[
            ("1", None, "agg", "GET /p", 0, 200),
            ("2", Some("1"), "orders", "db", 50, 250),
        ],
    );
    let a = attribute(&t).unwrap();
    assert_eq!(a.critical_us[ORDERS], 150_000);
    assert_eq!(a.critical_us[ROOT], 50_000);
    assert_eq!(a.critical_us.values().sum::<u64>(), a.latency_us);
}

#[test]
fn a_missing_span_is_counted_and_its_children_are_not_on_the_root_path() {
    // The users call's span was lost; its query's span arrived.
    let t = trace(
        1,
        &[
            ("1", None, "agg", "GET /p", 0, 300),
            ("3", Some("9"), "users", "db", 0, 100),
            ("4", Some("1"), "orders", "db", 100, 200),
        ],
    );
    let a = attribute(&t).unwrap();
    assert_eq!(a.orphaned_spans, 1);
    assert_eq!(a.critical_us.get(USERS), None);
    // The root holds the gap itself: nobody below it accounts for it.
    assert_eq!(a.critical_us[ROOT], 100_000);
    assert_eq!(a.critical_us[ORDERS], 200_000);
}

#[test]
fn the_failures_of_each_group_are_counted_by_operation() {
    // 99 fast traces; the slowest one's order query timed out.
    let mut set: Vec<Trace> = (1..=99).map(|n| sequential(n, 100)).collect();
    let mut slow = sequential(100, 900);
    slow.spans[2].status = Status::Error("timed out".into());
    set.push(slow);
    let attributions: Vec<_> = set.iter().filter_map(attribute).collect();
    let (typical, tail) = groups::split(&attributions, 0.99).unwrap();
    assert_eq!((typical.failed, tail.failed), (0, 1));
    let orders = tail
        .operations
        .iter()
        .find(|o| o.operation == ORDERS)
        .unwrap();
    assert_eq!(orders.failed, 1);
    let text = super::render(ROOT, 100, 0, 0, &typical, &tail, &[]);
    assert!(
        text.contains("  with an error: 0 of the typical, 1 of the tail (orders db in 1)\n"),
        "{text}"
    );
}

#[test]
fn the_split_quantile_names_the_tail() {
    assert_eq!(super::parse_split("p99"), Ok(0.99));
    assert!((super::parse_split("p99.9").unwrap() - 0.999).abs() < 1e-12);
    assert!(super::parse_split("p50").is_err());
    assert!(super::parse_split("99").is_err());
    assert_eq!(groups::quantile_label(0.999), "p99.9");
    assert_eq!(groups::quantile_label(0.9), "p90");
}

mod what_if {
    use super::super::whatif::latency_if_faster;
    use super::*;

    const MS: u64 = 1000;

    #[test]
    fn a_sequential_call_made_faster_shortens_the_request_by_what_it_saved() {
        let t = sequential(1, 200);
        assert_eq!(latency_if_faster(&t, ORDERS, 0.5), Some(200 * MS));
        assert_eq!(latency_if_faster(&t, USERS, 0.5), Some(250 * MS));
    }

    #[test]
    fn a_concurrent_call_made_faster_helps_only_until_the_other_one_is_slower() {
        let t = concurrent(1, 0);
        // Orders 200 → 100 ms: the users call (100 ms) now decides.
        assert_eq!(latency_if_faster(&t, ORDERS, 0.5), Some(100 * MS));
        // Orders 200 → 60 ms: still the users call's 100 ms.
        assert_eq!(latency_if_faster(&t, ORDERS, 0.7), Some(100 * MS));
        // Users is off the critical path: no change.
        assert_eq!(latency_if_faster(&t, USERS, 0.5), Some(200 * MS));
    }

    #[test]
    fn what_waited_for_the_faster_span_starts_earlier() {
        // 600 ms in the pool, then the 200 ms query that waited for it.
        let t = concurrent(1, 600);
        assert_eq!(latency_if_faster(&t, POOL, 0.5), Some(500 * MS));
        assert_eq!(latency_if_faster(&t, POOL, 1.0), Some(200 * MS));
    }

    #[test]
    fn a_nested_span_made_faster_moves_its_parents_end() {
        // agg → orders server → db query; the server has 10 ms of its own after the query.
        let t = trace(
            1,
            &[
                ("1", None, "agg", "GET /p", 0, 320),
                ("2", Some("1"), "orders", "GET /o", 5, 310),
                ("3", Some("2"), "orders", "db", 10, 200),
                ("4", Some("2"), "orders", "render", 210, 95),
            ],
        );
        // db 200 → 100: render (which waited for it) moves 100 ms earlier,
        // and so do the server's and the request's ends.
        assert_eq!(latency_if_faster(&t, ORDERS, 0.5), Some(220 * MS));
    }

    #[test]
    fn a_parent_that_did_not_wait_for_its_child_keeps_its_length() {
        let t = trace(
            1,
            &[
                ("1", None, "agg", "GET /p", 0, 200),
                ("2", Some("1"), "orders", "db", 50, 250),
            ],
        );
        assert_eq!(latency_if_faster(&t, ORDERS, 0.5), Some(200 * MS));
    }
}

#[test]
fn a_hedge_counts_for_its_operation_whichever_copy_won() {
    // The first copy spiked and was cancelled a moment after the second
    // answered; the path follows the copy that ended last, and either way
    // the operation holds it.
    let hedged = trace(
        1,
        &[
            ("1", None, "agg", "GET /p", 0, 462),
            ("2", Some("1"), "agg", "GET /o", 0, 461),
            ("3", Some("2"), "orders", "db", 0, 461),
            ("4", Some("1"), "agg", "GET /o", 250, 210),
            ("5", Some("4"), "orders", "db", 250, 200),
        ],
    );
    let plain = trace(
        2,
        &[
            ("1", None, "agg", "GET /p", 0, 202),
            ("2", Some("1"), "agg", "GET /o", 0, 201),
            ("3", Some("2"), "orders", "db", 0, 200),
        ],
    );
    for (t, query) in [(&hedged, 461_000), (&plain, 200_000)] {
        let a = attribute(t).unwrap();
        assert_eq!(a.critical_us[ORDERS], query);
        assert_eq!(a.critical_us.values().sum::<u64>(), a.latency_us);
    }
}

#[test]
fn without_the_clock_adjustment_a_skewed_child_is_clipped_and_the_path_still_adds_up() {
    // The order service's clock runs 5 ms behind: its span starts before
    // the call that made it.
    let t = trace(
        1,
        &[
            ("1", None, "agg", "GET /p", 0, 300),
            ("2", Some("1"), "agg", "GET /o", 100, 200),
            ("3", Some("2"), "orders", "db", 95, 200),
        ],
    );
    let a = attribute(&t).unwrap();
    assert_eq!(a.critical_us[ORDERS], 195_000);
    assert_eq!(a.critical_us.values().sum::<u64>(), a.latency_us);
}

/// The aggregator calls the order service (50 ms to 300 ms); the order
/// service answers from 60 ms to 290 ms (the network's 10 ms each way),
/// 210 ms of it its query. With its clock `skew_ms` off.
fn remote_call(skew_ms: i64) -> Trace {
    let mut t = trace(
        7,
        &[
            ("1", None, "agg", "GET /p", 0, 300),
            ("2", Some("1"), "agg", "GET /o", 50, 250),
            ("3", Some("2"), "orders", "GET /o", 60, 230),
            ("4", Some("3"), "orders", "db", 70, 210),
        ],
    );
    for span in t.spans.iter_mut().filter(|s| s.service == "orders") {
        span.start_us = span.start_us.saturating_add_signed(skew_ms * 1000);
    }
    t
}

#[test]
fn a_skewed_clock_is_moved_into_the_call_and_the_path_is_what_it_was() {
    let truth = attribute(&remote_call(0)).unwrap();
    assert_eq!(truth.critical_us[ORDERS], 210_000);
    for skew_ms in [-400, -61, 11, 400] {
        let (adjusted, moved) = super::skew::adjust(&remote_call(skew_ms));
        assert_eq!(moved, 2, "skew {skew_ms} ms: both order-service spans move");
        assert_eq!(adjusted, remote_call(0), "skew {skew_ms} ms");
        assert_eq!(attribute(&adjusted).unwrap().critical_us, truth.critical_us);
    }
}

#[test]
fn a_callee_that_fits_in_its_call_is_taken_as_measured() {
    // 10 ms late is still inside the call: nothing can tell it from a slow
    // network, so nothing moves.
    let (adjusted, moved) = super::skew::adjust(&remote_call(10));
    assert_eq!(moved, 0);
    assert_eq!(adjusted, remote_call(10));
    // Within one service a clock cannot disagree with itself: a child that
    // starts before its parent (same service) is left to the clipping.
    let same = trace(
        8,
        &[
            ("1", None, "agg", "GET /p", 10, 100),
            ("2", Some("1"), "agg", "work", 0, 50),
        ],
    );
    assert_eq!(super::skew::adjust(&same), (same.clone(), 0));
}

#[test]
fn a_callee_longer_than_its_call_starts_with_it() {
    let t = trace(
        9,
        &[
            ("1", None, "agg", "GET /o", 100, 50),
            ("2", Some("1"), "orders", "GET /o", 20, 80),
        ],
    );
    let (adjusted, moved) = super::skew::adjust(&t);
    assert_eq!(moved, 1);
    assert_eq!(adjusted.spans[1].start_us, adjusted.spans[0].start_us);
    // One that already starts inside is left alone.
    let late = trace(
        10,
        &[
            ("1", None, "agg", "GET /o", 100, 50),
            ("2", Some("1"), "orders", "GET /o", 120, 80),
        ],
    );
    assert_eq!(super::skew::adjust(&late).1, 0);
}

#[test]
fn two_instances_of_one_service_are_two_clocks() {
    let mut t = trace(
        11,
        &[
            ("1", None, "orders", "GET /o", 100, 100),
            ("2", Some("1"), "orders", "GET /o", 400, 50),
        ],
    );
    t.spans[0]
        .resource
        .insert("service.instance.id".into(), Value::String("a".into()));
    t.spans[1]
        .resource
        .insert("service.instance.id".into(), Value::String("b".into()));
    let (adjusted, moved) = super::skew::adjust(&t);
    assert_eq!(moved, 1);
    assert_eq!(adjusted.spans[1].start_us, 1_000_000 + 125_000);
}
