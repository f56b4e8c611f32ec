//! Lesson 8, "From a percentile to a trace": its command, run as the lesson
//! writes it, and every claim the lesson makes about what it prints.

use std::time::Duration;

use telemetry::metrics::DURATION_BOUNDARIES as BOUNDS;
use trace_view::analysis::analyse;
use trace_view::jaeger_json;

use crate::up_metrics::table;

const LESSON: &str = "08-from-a-percentile-to-a-trace.md";

/// The bucket index a duration falls in: (bounds[i-1], bounds[i]].
fn bucket(d: Duration) -> usize {
    let s = d.as_secs_f64();
    BOUNDS.iter().position(|b| s <= *b).unwrap_or(BOUNDS.len())
}

/// One endpoint's row of the exit table: (p50, p99).
struct Row {
    p50: Duration,
    p99: Duration,
}

fn row(table: &[&str], service: &str) -> Row {
    let line = table
        .iter()
        .find(|l| l.split_whitespace().next() == Some(service))
        .unwrap_or_else(|| panic!("no {service} row: {table:#?}"));
    let w: Vec<&str> = line.split_whitespace().collect();
    // service method route requests rate errors p50 unit p90 unit p99 unit max unit
    Row {
        p50: crate::common::printed_duration(w[6], w[7]),
        p99: crate::common::printed_duration(w[10], w[11]),
    }
}

#[tokio::test]
async fn lesson_8_the_bad_percentile_leads_to_the_slow_dependency() {
    let words = crate::common::lesson_command(LESSON);
    let spiky = crate::common::run_lesson_up(&words).await;
    let exit = table(&spiky.stdout, "at exit");
    let second = Duration::from_secs(1);
    let quick = Duration::from_millis(250);

    // p50 and p99 tell different stories; the tail is the order service's.
    let aggregator = row(&exit, "profile-aggregator");
    assert!(aggregator.p50 < quick, "aggregator p50: {exit:#?}");
    assert!(aggregator.p99 >= second, "aggregator p99: {exit:#?}");
    assert!(row(&exit, "order-service").p99 >= second, "{exit:#?}");
    assert!(row(&exit, "user-service").p99 < quick, "{exit:#?}");

    // The table's p50 (from buckets) and the load's own (stopwatch) p50
    // differ, but lie in the same bucket.
    let load_p50 = spiky
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("latency  p50 "))
        .map(|rest| {
            let w: Vec<&str> = rest.split_whitespace().collect();
            crate::common::printed_duration(w[0], w[1])
        })
        .unwrap_or_else(|| panic!("no load report:\n{}", spiky.stdout));
    assert_eq!(
        bucket(load_p50),
        bucket(aggregator.p50),
        "load p50 {load_p50:?} vs table p50 {:?}",
        aggregator.p50
    );

    // The worst p99 names a saved trace from its bucket: the order
    // service's db.query holds the second, on the critical path.
    let worst = exit
        .iter()
        .find_map(|l| l.trim().strip_prefix("worst p99: profile-aggregator "))
        .unwrap_or_else(|| panic!("no worst p99 for the aggregator: {exit:#?}"));
    let id = worst
        .split_whitespace()
        .skip_while(|w| *w != "trace")
        .nth(1)
        .unwrap_or_else(|| panic!("no trace id: {worst}"));
    let file = spiky.traces.path().join(format!("{id}.json"));
    let traces = jaeger_json::read_file(&file).unwrap_or_else(|e| panic!("{file:?}: {e}"));
    let trace = &traces[0];
    let analysis = analyse(trace);
    let query = analysis
        .rows
        .iter()
        .find(|r| {
            let span = &trace.spans[r.span];
            span.service == "order-service" && span.name.starts_with("db.query")
        })
        .unwrap_or_else(|| panic!("no order-service db.query in {id}"));
    assert!(
        trace.spans[query.span].duration_us >= 1_000_000,
        "the named trace's order query: {} µs",
        trace.spans[query.span].duration_us
    );
    assert!(
        query.critical_us() > 0,
        "the order query is on the critical path"
    );

    // Change it: a spike rarer than 1 % leaves p99 alone.
    let rare: Vec<String> = words
        .iter()
        .map(|w| w.replace("p=0.05", "p=0.001"))
        .collect();
    assert_ne!(rare, words, "the lesson's spike is p=0.05");
    let calm = crate::common::run_lesson_up(&rare).await;
    let exit = table(&calm.stdout, "at exit");
    assert!(row(&exit, "profile-aggregator").p99 < quick, "{exit:#?}");
}
