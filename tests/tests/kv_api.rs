//! The tenant KV HTTP API on a real 3-node cluster: success paths, every error code,
//! and tenant isolation.

use cairn_tests::{TestCluster, TOKEN};
use serde_json::{json, Value};

async fn problem(r: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(r.status().as_u16(), status);
    assert_eq!(
        r.headers()["content-type"],
        "application/problem+json",
        "problem documents are RFC 9457"
    );
    let body: Value = r.json().await.expect("problem json");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status);
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_api_success_paths_errors_and_tenant_isolation() {
    let mut c = TestCluster::new(3, "");
    c.boot().await;
    let http = c.client().clone();
    let kv = |via: u64, key: &str| c.url(via, &format!("/v1/kv/{key}"));

    // Put / get through different nodes; the shape is {key, value, revision}.
    let put = c.put_ok(1, "alpha", "greeting", "hello").await;
    assert_eq!(put["key"], "greeting");
    assert_eq!(put["value"], "hello");
    let rev = put["revision"].as_u64().expect("revision");
    let r = c.get(2, "alpha", "greeting").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert!(r.headers().contains_key("x-request-id"));
    let got: Value = r.json().await.expect("json");
    assert_eq!(
        got,
        json!({"key": "greeting", "value": "hello", "revision": rev})
    );

    // Keys may contain slashes and escaped characters.
    c.put_ok(3, "alpha", "a/b%20c", "nested").await;
    assert_eq!(
        c.get_value(1, "alpha", "a/b%20c").await.expect("present")["key"],
        "a/b c"
    );

    // Tenants are isolated: the same key holds two values.
    c.put_ok(2, "beta", "greeting", "bonjour").await;
    assert_eq!(
        c.get_value(3, "alpha", "greeting").await.expect("a")["value"],
        "hello"
    );
    assert_eq!(
        c.get_value(3, "beta", "greeting").await.expect("b")["value"],
        "bonjour"
    );
    // A tenant that was never created is not found (and a write does not
    // create it); once created, its keyspace is empty.
    problem(c.get(1, "gamma", "greeting").await, 404, "tenant_not_found").await;
    let refused = c
        .client()
        .put(c.url(1, "/v1/kv/greeting"))
        .bearer_auth(TOKEN)
        .header("x-tenant", "gamma")
        .json(&serde_json::json!({ "value": "x" }))
        .send()
        .await
        .expect("put");
    problem(refused, 404, "tenant_not_found").await;
    c.create_tenant(1, "gamma").await.expect("created");
    problem(c.get(1, "gamma", "greeting").await, 404, "key_not_found").await;

    // Compare-and-set.
    let cas = |via: u64, key: &str, value: &str, expected: u64| {
        http.put(kv(via, key))
            .bearer_auth(TOKEN)
            .header("x-tenant", "alpha")
            .json(&json!({"value": value, "expected_revision": expected}))
            .send()
    };
    let ok = cas(2, "greeting", "hi", rev).await.expect("cas");
    assert_eq!(ok.status(), 200);
    let new_rev = ok.json::<Value>().await.expect("json")["revision"]
        .as_u64()
        .expect("rev");
    assert!(new_rev > rev);
    let stale = problem(
        cas(3, "greeting", "lost", rev).await.expect("cas"),
        412,
        "revision_mismatch",
    )
    .await;
    assert!(stale["detail"]
        .as_str()
        .expect("detail")
        .contains(&new_rev.to_string()));
    assert_eq!(
        c.get_value(1, "alpha", "greeting").await.expect("v")["value"],
        "hi"
    );
    problem(
        cas(1, "greeting", "create", 0).await.expect("cas"),
        412,
        "revision_mismatch",
    )
    .await;
    assert_eq!(
        cas(1, "fresh-key", "created", 0)
            .await
            .expect("cas")
            .status(),
        200
    );

    // Delete: 204, then 404; a guarded delete with a stale revision is 412.
    let del = |via: u64, key: &str| {
        http.delete(kv(via, key))
            .bearer_auth(TOKEN)
            .header("x-tenant", "alpha")
            .send()
    };
    assert_eq!(del(3, "greeting").await.expect("delete").status(), 204);
    problem(c.get(1, "alpha", "greeting").await, 404, "key_not_found").await;
    assert_eq!(
        del(2, "greeting").await.expect("delete").status(),
        204,
        "idempotent"
    );
    let guarded = http
        .delete(format!("{}?expected_revision=1", kv(1, "fresh-key")))
        .bearer_auth(TOKEN)
        .header("x-tenant", "alpha")
        .send()
        .await
        .expect("delete");
    problem(guarded, 412, "revision_mismatch").await;
    assert_eq!(
        c.get_value(2, "beta", "greeting").await.expect("b")["value"],
        "bonjour"
    );

    // Limits: value > 64 KiB, body > 1 MiB, key > 512 bytes -> 413.
    let big = "x".repeat(64 * 1024 + 1);
    problem(
        c.put(1, "alpha", "big", &big).await,
        413,
        "payload_too_large",
    )
    .await;
    let huge = "x".repeat(1024 * 1024 + 10);
    problem(
        c.put(2, "alpha", "huge", &huge).await,
        413,
        "payload_too_large",
    )
    .await;
    problem(
        c.put(3, "alpha", &"k".repeat(513), "v").await,
        413,
        "payload_too_large",
    )
    .await;
    assert_eq!(
        c.put(1, "alpha", "max", &"x".repeat(64 * 1024))
            .await
            .status(),
        200
    );

    // Authentication: missing or wrong token -> 401; missing tenant -> 400.
    let r = http
        .get(kv(1, "fresh-key"))
        .header("x-tenant", "alpha")
        .send()
        .await
        .expect("get");
    assert!(r.headers().contains_key("www-authenticate"));
    problem(r, 401, "unauthorized").await;
    let r = http
        .get(kv(2, "fresh-key"))
        .bearer_auth("test-admin-token-0123456789abcdef0124")
        .header("x-tenant", "alpha")
        .send()
        .await
        .expect("get");
    problem(r, 401, "unauthorized").await;
    let r = http
        .get(kv(3, "fresh-key"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("get");
    problem(r, 400, "missing_tenant").await;

    // Bad bodies: malformed JSON, unknown fields, wrong types -> 400; nothing written.
    for body in [
        r#"{"value": "#,
        r#"{"value": "v", "colour": 1}"#,
        r#"{"value": 5}"#,
        "",
    ] {
        let r = http
            .put(kv(1, "bad"))
            .bearer_auth(TOKEN)
            .header("x-tenant", "alpha")
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("put");
        problem(r, 400, "invalid_request").await;
    }
    problem(c.get(2, "alpha", "bad").await, 404, "key_not_found").await;

    // Unknown routes are problems too.
    let r = http.get(c.url(1, "/v1/nothing")).send().await.expect("get");
    problem(r, 404, "not_found").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_readiness_describe_every_group() {
    let mut c = TestCluster::new(3, "");
    c.start_all();
    // Before init there is no leader: not ready.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let r = c
        .client()
        .get(c.url(1, "/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(r.status(), 503);
    assert_eq!(
        c.client()
            .get(c.url(1, "/healthz"))
            .send()
            .await
            .expect("h")
            .status(),
        200
    );
    let out = c.init();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for id in c.ids() {
        c.wait_ready(id).await;
    }
    let r = c
        .client()
        .get(c.url(2, "/v1/cluster/status"))
        .send()
        .await
        .expect("status");
    assert_eq!(r.status(), 401, "status needs the admin token");

    let leader = c.leader(1, "local").await;
    let s = c.status(leader).await;
    assert_eq!(s["id"], leader);
    assert_eq!(s["region"], "local");
    let groups = s["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 2, "meta + one region group: {s}");
    assert!(groups.iter().any(|g| g["group"] == "meta"), "{s}");
    let data = groups
        .iter()
        .find(|g| g["group"] == "local")
        .expect("local group");
    for field in [
        "group",
        "group_id",
        "leader",
        "term",
        "commit_index",
        "applied_index",
        "voters",
        "learners",
    ] {
        assert!(data.get(field).is_some(), "missing {field}: {data}");
    }
    assert_eq!(data["voters"], json!([1, 2, 3]));
    assert_eq!(data["residency"], "hard");
    let replication = data["replication"].as_array().expect("replication");
    assert_eq!(
        replication.len(),
        3,
        "the leader reports every member's progress"
    );
    assert!(replication
        .iter()
        .all(|p| p.get("matched_index").is_some() && p.get("lag").is_some()));

    // `cairn status` prints a table with a row per node and group.
    let out = c.cli("status");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("LEADER") && text.contains("meta") && text.contains("local (hard)"),
        "{text}"
    );
    assert!(text.contains("all 3 nodes reachable"), "{text}");

    // An unreachable node is named.
    c.kill(3);
    let out = c.cli("status");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("unreachable nodes: [3]"), "{text}");
}
