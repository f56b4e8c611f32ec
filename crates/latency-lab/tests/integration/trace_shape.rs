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
