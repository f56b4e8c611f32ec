//! One request → one trace across all three services, with the right
//! parent/child links, span kinds and HTTP semantic-convention attributes.

use crate::common::{by_id, one, summary, traceresponse_ids, Options, Suite};
use otlp_receiver::{SpanKind, StatusCode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_request_is_one_trace_across_three_services() {
    let suite = Suite::start(Options::default()).await;
    let response = suite.profile("42", "sequential", &[]).await;
    assert_eq!(response.status(), 200);
    let (trace_id, server_span_id) = traceresponse_ids(&response);
    let server_timing = response
        .headers()
        .get("server-timing")
        .expect("Server-Timing header")
        .to_str()
        .unwrap()
        .to_owned();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["trace_id"], trace_id.as_str());
    assert_eq!(body["user"]["id"], 42);
    assert!(body["orders"].is_array());
    assert_eq!(body["mode"], "sequential");
    for part in ["user;", "orders;", "total;"] {
        assert!(server_timing.contains(part), "{server_timing}");
    }

    let spans = suite.trace(&trace_id, 7).await;
    assert_eq!(spans.len(), 7, "{:#?}", summary(&spans));
    assert!(spans.iter().all(|s| s.trace_id == trace_id));

    let root = one(
        &spans,
        "profile-aggregator",
        SpanKind::Server,
        "GET /user-profile/{id}",
    );
    let user_client = one(
        &spans,
        "profile-aggregator",
        SpanKind::Client,
        "GET /users/{id}",
    );
    let order_client = one(
        &spans,
        "profile-aggregator",
        SpanKind::Client,
        "GET /users/{id}/orders",
    );
    let user_server = one(&spans, "user-service", SpanKind::Server, "GET /users/{id}");
    let order_server = one(
        &spans,
        "order-service",
        SpanKind::Server,
        "GET /users/{id}/orders",
    );
    let user_db = one(
        &spans,
        "user-service",
        SpanKind::Internal,
        "db.query SELECT users",
    );
    let order_db = one(
        &spans,
        "order-service",
        SpanKind::Internal,
        "db.query SELECT orders",
    );

    // Parentage: the chain the timeline draws.
    assert_eq!(root.parent_span_id, None);
    assert_eq!(
        root.span_id, server_span_id,
        "traceresponse names the server span"
    );
    assert_eq!(
        user_client.parent_span_id.as_deref(),
        Some(root.span_id.as_str())
    );
    assert_eq!(
        order_client.parent_span_id.as_deref(),
        Some(root.span_id.as_str())
    );
    assert_eq!(
        user_server.parent_span_id.as_deref(),
        Some(user_client.span_id.as_str())
    );
    assert_eq!(
        order_server.parent_span_id.as_deref(),
        Some(order_client.span_id.as_str())
    );
    assert_eq!(
        user_db.parent_span_id.as_deref(),
        Some(user_server.span_id.as_str())
    );
    assert_eq!(
        order_db.parent_span_id.as_deref(),
        Some(order_server.span_id.as_str())
    );
    assert_eq!(by_id(&spans).len(), 7, "span ids are unique");

    // SERVER span attributes (HTTP semantic conventions).
    let port: i64 = suite
        .aggregator
        .url
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(root.attr_str("http.request.method"), Some("GET"));
    assert_eq!(root.attr_str("http.route"), Some("/user-profile/{id}"));
    assert_eq!(root.attr_str("url.path"), Some("/user-profile/42"));
    assert_eq!(root.attr_str("url.query"), Some("mode=sequential"));
    assert_eq!(root.attr_i64("http.response.status_code"), Some(200));
    assert_eq!(root.attr_str("server.address"), Some("127.0.0.1"));
    assert_eq!(root.attr_i64("server.port"), Some(port));
    assert_eq!(root.status_code, StatusCode::Unset);
    assert_eq!(user_server.attr_str("http.route"), Some("/users/{id}"));
    assert_eq!(
        order_server.attr_str("http.route"),
        Some("/users/{id}/orders")
    );
    assert_eq!(
        order_server.attr_i64("http.response.status_code"),
        Some(200)
    );

    // CLIENT span attributes.
    let users = suite.users.as_ref().unwrap();
    let user_port: i64 = users.url.rsplit(':').next().unwrap().parse().unwrap();
    assert_eq!(
        user_client.attr_str("url.full"),
        Some(format!("{}/users/42", users.url).as_str())
    );
    assert_eq!(user_client.attr_str("server.address"), Some("127.0.0.1"));
    assert_eq!(user_client.attr_i64("server.port"), Some(user_port));
    assert_eq!(user_client.attr_i64("http.response.status_code"), Some(200));
    assert_eq!(user_client.attr_str("http.request.method"), Some("GET"));
    assert_eq!(user_client.attr_str("url.template"), Some("/users/{id}"));

    // INTERNAL database spans say what they stand for.
    assert_eq!(user_db.attr_str("db.collection.name"), Some("users"));
    assert_eq!(order_db.attr_str("db.operation.name"), Some("SELECT"));

    // Each service under its own name, through its own provider.
    for s in &spans {
        assert_eq!(
            s.resource.get("service.name").and_then(|v| v.as_str()),
            Some(s.service_name.as_str())
        );
    }
    // The waits nest: a child lies within its parent.
    for (child, parent) in [(user_db, user_server), (order_db, order_server)] {
        assert!(child.start_unix_nanos >= parent.start_unix_nanos);
        assert!(child.end_unix_nanos <= parent.end_unix_nanos);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ids_and_unknown_users_are_client_errors_not_span_errors() {
    let suite = Suite::start(Options::default()).await;
    // A malformed id is refused by the aggregator itself: no call at all
    // (failures::a_malformed_user_id_is_refused_at_the_edge_without_any_call).
    for id in ["abc", "0"] {
        let response = suite.profile(id, "sequential", &[]).await;
        assert_eq!(response.status(), 400, "id {id}");
        let (trace_id, _) = traceresponse_ids(&response);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_request", "{body}");
        let spans = suite
            .trace_where(&trace_id, |spans| {
                spans.iter().any(|s| s.kind == SpanKind::Server)
            })
            .await;
        let root = one(
            &spans,
            "profile-aggregator",
            SpanKind::Server,
            "GET /user-profile/{id}",
        );
        assert_eq!(root.attr_i64("http.response.status_code"), Some(400));
        assert_eq!(
            root.status_code,
            StatusCode::Unset,
            "4xx is not a server error"
        );
        assert_eq!(spans.len(), 1, "no call: {:#?}", summary(&spans));
    }
    for (id, status, code) in [("99999", 404, "not_found")] {
        let response = suite.profile(id, "sequential", &[]).await;
        assert_eq!(response.status(), status, "id {id}");
        let (trace_id, _) = traceresponse_ids(&response);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{body}");
        // aggregator server + client, user server (no db wait for bad input)
        let spans = suite.trace(&trace_id, 3).await;
        let root = one(
            &spans,
            "profile-aggregator",
            SpanKind::Server,
            "GET /user-profile/{id}",
        );
        assert_eq!(
            root.attr_i64("http.response.status_code"),
            Some(i64::from(status))
        );
        assert_eq!(
            root.status_code,
            StatusCode::Unset,
            "4xx is not a server error"
        );
        let client = one(
            &spans,
            "profile-aggregator",
            SpanKind::Client,
            "GET /users/{id}",
        );
        assert_eq!(
            client.status_code,
            StatusCode::Error,
            "4xx is a failed client call"
        );
        assert!(
            !spans.iter().any(|s| s.name.starts_with("db.query")),
            "invalid input must not cost a database wait: {:#?}",
            summary(&spans)
        );
    }
    let response = suite.profile("42", "parallel", &[]).await;
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("sequential, concurrent or unlinked"));
}

/// The crate versions of the workspace, by crate name (`cargo metadata`).
fn crate_versions() -> std::collections::BTreeMap<String, String> {
    let metadata = crate::common::cargo_metadata(&["--no-deps", "--offline"]);
    metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["version"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn resource_str<'a>(span: &'a otlp_receiver::CollectedSpan, key: &str) -> Option<&'a str> {
    span.resource.get(key).and_then(|v| v.as_str())
}

/// What Jaeger's *Process* section shows: which version of which service,
/// which process (instance, pid, executable, compiler) on which host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_span_says_which_version_which_process_and_which_host_sent_it() {
    let suite = Suite::start(Options::default()).await;
    let response = suite.profile("42", "sequential", &[]).await;
    assert_eq!(response.status(), 200);
    let (trace_id, _) = traceresponse_ids(&response);
    let spans = suite.trace(&trace_id, 7).await;
    assert_eq!(spans.len(), 7, "{:#?}", summary(&spans));

    let versions = crate_versions();
    let processes = [
        (
            "profile-aggregator",
            &suite.aggregator,
            "profile-aggregator",
        ),
        (
            "user-service",
            suite.users.as_ref().unwrap(),
            "mock-service",
        ),
        (
            "order-service",
            suite.orders.as_ref().unwrap(),
            "mock-service",
        ),
    ];
    let mut instance_ids = std::collections::BTreeSet::new();
    for (service, process, crate_name) in processes {
        let ours: Vec<_> = spans.iter().filter(|s| s.service_name == service).collect();
        assert!(!ours.is_empty(), "no span of {service}");
        let first = ours[0];
        assert!(
            ours.iter().all(|s| s.resource == first.resource),
            "one resource per process"
        );
        assert_eq!(
            resource_str(first, "service.version"),
            Some(versions[crate_name].as_str()),
            "{service}: the version of its own crate, {crate_name}"
        );
        assert_eq!(
            first.resource.get("process.pid").and_then(|v| v.as_i64()),
            Some(i64::from(process.pid())),
            "{service}"
        );
        assert_eq!(
            resource_str(first, "process.executable.name"),
            Some("latency-lab")
        );
        assert_eq!(resource_str(first, "process.runtime.name"), Some("rustc"));
        assert_eq!(
            resource_str(first, "host.arch"),
            Some(std::env::consts::ARCH)
        );
        assert!(
            !first.resource.contains_key("process.command_args"),
            "flags may carry credentials: {:?}",
            first.resource
        );
        assert!(
            resource_str(first, "host.name").is_some_and(|h| !h.is_empty()),
            "{:?}",
            first.resource
        );
        let instance = resource_str(first, "service.instance.id").expect("service.instance.id");
        assert_eq!(instance.len(), 36, "a UUID: {instance}");
        instance_ids.insert(instance.to_owned());
        assert_eq!(
            resource_str(first, "deployment.environment.name"),
            None,
            "only where configured"
        );
    }
    assert_eq!(instance_ids.len(), 3, "one instance id per process");
}

/// `OTEL_RESOURCE_ATTRIBUTES` is merged last: it names the environment and
/// overrides what the service detected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_attributes_from_the_environment_win_over_detected_ones() {
    let suite = Suite::start(Options {
        extra_env: vec![(
            "user-service",
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment.name=staging,service.version=9.9.9-canary,host.name=users-1",
        )],
        ..Options::default()
    })
    .await;
    let response = suite.profile("42", "sequential", &[]).await;
    assert_eq!(response.status(), 200);
    let (trace_id, _) = traceresponse_ids(&response);
    let spans = suite.trace(&trace_id, 7).await;
    let user = one(&spans, "user-service", SpanKind::Server, "GET /users/{id}");
    assert_eq!(
        resource_str(user, "deployment.environment.name"),
        Some("staging")
    );
    assert_eq!(resource_str(user, "service.version"), Some("9.9.9-canary"));
    assert_eq!(resource_str(user, "host.name"), Some("users-1"));
    assert!(resource_str(user, "service.instance.id").is_some());
}

/// Jaeger lists a span's tags by name: `code.*`, `target` and `thread.*`
/// would come before `http.*` and `db.*`. They are opt-in; `busy_ns` and
/// `idle_ns` stay (lesson 4 reads them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn span_tags_lead_with_what_the_span_did_and_source_tags_are_a_switch() {
    let suite = Suite::start(Options {
        extra_env: vec![("order-service", "LATENCY_LAB_SPAN_SOURCE", "true")],
        ..Options::default()
    })
    .await;
    let response = suite.profile("42", "sequential", &[]).await;
    assert_eq!(response.status(), 200);
    let (trace_id, _) = traceresponse_ids(&response);
    let spans = suite.trace(&trace_id, 7).await;
    let is_source_tag =
        |key: &str| key.starts_with("code.") || key.starts_with("thread.") || key == "target";
    for span in &spans {
        let keys: Vec<&str> = span.attributes.keys().map(String::as_str).collect();
        assert!(
            span.attr_i64("busy_ns").is_some() && span.attr_i64("idle_ns").is_some(),
            "{} {}: {keys:?}",
            span.service_name,
            span.name
        );
        let source: Vec<&str> = keys.iter().copied().filter(|k| is_source_tag(k)).collect();
        if span.service_name == "order-service" {
            for key in ["code.file.path", "code.line.number", "thread.id", "target"] {
                assert!(source.contains(&key), "{} {}: {keys:?}", span.name, key);
            }
        } else {
            assert!(
                source.is_empty(),
                "{} {}: {source:?}",
                span.service_name,
                span.name
            );
        }
    }
}

/// Lesson 4: `busy_ns` is the time a span was *entered*. A span that waits
/// on a timer is hardly ever entered, although the waterfall counts all its
/// time as self time; a parent is entered whenever a child on the same task
/// is, so its `busy_ns` includes theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_ns_is_time_entered_not_the_waterfalls_self_time() {
    let suite = Suite::start(Options::default()).await;
    let response = suite.profile("42", "sequential", &[]).await;
    assert_eq!(response.status(), 200);
    let (trace_id, _) = traceresponse_ids(&response);
    let spans = suite.trace(&trace_id, 7).await;
    let busy = |s: &otlp_receiver::CollectedSpan| s.attr_i64("busy_ns").unwrap() as u128;
    let idle = |s: &otlp_receiver::CollectedSpan| s.attr_i64("idle_ns").unwrap() as u128;

    // The simulated query: all self time in the waterfall (no children),
    // nearly all idle here (a sleeping future is not entered).
    let db = one(
        &spans,
        "user-service",
        SpanKind::Internal,
        "db.query SELECT users",
    );
    let total = db.duration().as_nanos();
    assert!(total >= 100_000_000, "{total} ns");
    assert!(busy(db) * 4 < total, "busy {} of {total} ns", busy(db));
    assert!(idle(db) * 2 > total, "idle {} of {total} ns", idle(db));

    // The request's SERVER span was entered whenever its CLIENT children
    // (same task) were: its busy time contains theirs.
    let root = one(
        &spans,
        "profile-aggregator",
        SpanKind::Server,
        "GET /user-profile/{id}",
    );
    let clients: Vec<_> = spans
        .iter()
        .filter(|s| s.parent_span_id.as_deref() == Some(root.span_id.as_str()))
        .collect();
    assert_eq!(clients.len(), 2);
    let children_busy: u128 = clients.iter().map(|c| busy(c)).sum();
    assert!(
        busy(root) >= children_busy,
        "root busy {} ns < its children's {children_busy} ns",
        busy(root)
    );
}
