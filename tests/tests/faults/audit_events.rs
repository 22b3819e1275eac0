//! Audit events, end to end: each state-changing operation of the API leaves
//! exactly one event in the replicated state, with the actor that made it and
//! the request id it came with; reads, refusals and tenant KV writes leave
//! none. The events are read from a stopped node's data dir, as the state
//! machine wrote them (`cairn_storage`), not through an API.

use std::collections::BTreeMap;

use cairn_storage::sm::audit;
use cairn_storage::{Actor, Engine, EventRecord};
use cairn_tests::{TestCluster, TOKEN};
use reqwest::Method;
use serde_json::{json, Value};

/// Calls the API with a request id of its own and records what each call is
/// expected to leave: `(request id, action, actor)`.
struct Recorder<'a> {
    c: &'a TestCluster,
    n: usize,
    expected: Vec<(String, &'static str, Actor)>,
}

impl Recorder<'_> {
    /// `method path` through node `via` with `auth` and `body`; asserts
    /// `status`. The call is expected to leave one event `action` by `actor`
    /// (none when `action` is empty).
    #[allow(clippy::too_many_arguments)]
    async fn call(
        &mut self,
        via: u64,
        method: Method,
        path: &str,
        auth: &str,
        body: Option<Value>,
        status: u16,
        expect: Option<(&'static str, Actor)>,
    ) -> Value {
        self.n += 1;
        let request_id = format!("audit-{:03}", self.n);
        let mut req = self
            .c
            .client()
            .request(method.clone(), self.c.url(via, path))
            .bearer_auth(auth)
            .header("x-request-id", &request_id);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let got = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        assert_eq!(got, status, "{method} {path}: {text}");
        if let Some((action, actor)) = expect {
            self.expected.push((request_id, action, actor));
        }
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }
}

/// Every event record of `tenant` in every group this node holds.
fn records(engine: &Engine, tenant: &str) -> Vec<EventRecord> {
    (0..4)
        .flat_map(|g| audit::read::records(&engine.state(g), tenant, 10_000).expect("read"))
        .map(|(_, r)| r)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_state_change_leaves_one_event_with_its_actor_and_request_id() {
    let mut c = TestCluster::new(3, "");
    c.boot().await;
    for id in c.ids() {
        let wire = &c.status(id).await["wire_version"];
        assert_eq!(
            (wire["node"].as_u64(), wire["cluster"].as_u64()),
            (Some(4), Some(4)),
            "node {id}"
        );
    }
    let op = || Actor::Operator;
    let mut r = Recorder {
        c: &c,
        n: 0,
        expected: Vec::new(),
    };
    use Method as M;

    // Tenants and their keys (operator, `meta`).
    let t = r
        .call(
            1,
            M::POST,
            "/v1/admin/tenants",
            TOKEN,
            Some(json!({"name": "audited"})),
            201,
            Some(("tenant.created", op())),
        )
        .await;
    let tid = t["id"].as_str().expect("id").to_owned();
    let key = t["api_key"].as_str().expect("api key").to_owned();
    let app = || Actor::ApiKey(t["api_key_id"].as_str().expect("key id").to_owned());
    r.call(
        2,
        M::PATCH,
        &format!("/v1/admin/tenants/{tid}"),
        TOKEN,
        Some(json!({"session_idle_timeout_secs": 600})),
        200,
        Some(("tenant.updated", op())),
    )
    .await;
    r.call(
        3,
        M::POST,
        "/v1/admin/keys/rotate",
        TOKEN,
        Some(json!({"tenant": "audited"})),
        200,
        Some(("tenant.updated", op())),
    )
    .await;
    let k2 = r
        .call(
            1,
            M::POST,
            &format!("/v1/admin/tenants/{tid}/api-keys"),
            TOKEN,
            Some(json!({"scopes": ["read"]})),
            201,
            Some(("api_key.created", op())),
        )
        .await;
    let k2 = k2["id"].as_str().expect("key id").to_owned();
    r.call(
        2,
        M::DELETE,
        &format!("/v1/admin/tenants/{tid}/api-keys/{k2}"),
        TOKEN,
        None,
        204,
        Some(("api_key.revoked", op())),
    )
    .await;
    r.call(
        3,
        M::POST,
        &format!("/v1/admin/tenants/{tid}/signing-keys/rotate"),
        TOKEN,
        None,
        200,
        Some(("signing_key.rotated", op())),
    )
    .await;

    // Users and sessions (the tenant's API key, its region's data group).
    let u = r
        .call(
            1,
            M::POST,
            "/v1/users",
            &key,
            Some(json!({"email": "a@example.com", "password": "correct horse battery"})),
            201,
            Some(("user.created", app())),
        )
        .await;
    let uid = u["id"].as_str().expect("user id").to_owned();
    r.call(
        2,
        M::PATCH,
        &format!("/v1/users/{uid}"),
        &key,
        Some(json!({"email": "b@example.com"})),
        200,
        Some(("user.updated", app())),
    )
    .await;
    r.call(
        3,
        M::PATCH,
        &format!("/v1/users/{uid}"),
        &key,
        Some(json!({"password": "another horse battery"})),
        200,
        Some(("password.changed", app())),
    )
    .await;
    let sign_in = json!({"email": "b@example.com", "password": "another horse battery"});
    let s = r
        .call(
            1,
            M::POST,
            "/v1/sessions",
            &key,
            Some(sign_in.clone()),
            201,
            Some(("session.created", app())),
        )
        .await;
    let first = s["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned();
    let refresh = |token: &str| Some(json!({ "refresh_token": token }));
    let r1 = r
        .call(
            2,
            M::POST,
            "/v1/sessions/refresh",
            &key,
            refresh(&first),
            200,
            Some(("session.refreshed", app())),
        )
        .await;
    let r1 = r1["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned();
    r.call(
        3,
        M::POST,
        "/v1/sessions/refresh",
        &key,
        refresh(&r1),
        200,
        Some(("session.refreshed", app())),
    )
    .await;
    r.call(
        1,
        M::POST,
        "/v1/sessions/refresh",
        &key,
        refresh(&first),
        401,
        Some(("session.compromised", app())),
    )
    .await;
    let s2 = r
        .call(
            2,
            M::POST,
            "/v1/sessions",
            &key,
            Some(sign_in),
            201,
            Some(("session.created", app())),
        )
        .await;
    let sid = s2["session_id"].as_str().expect("session id").to_owned();
    r.call(
        3,
        M::POST,
        &format!("/v1/sessions/{sid}/revoke"),
        &key,
        None,
        204,
        Some(("session.revoked", app())),
    )
    .await;
    let u2 = r
        .call(
            1,
            M::POST,
            "/v1/users",
            &key,
            Some(json!({"email": "c@example.com"})),
            201,
            Some(("user.created", app())),
        )
        .await;
    let uid2 = u2["id"].as_str().expect("user id").to_owned();
    r.call(
        2,
        M::DELETE,
        &format!("/v1/users/{uid2}"),
        &key,
        None,
        204,
        Some(("user.deleted", app())),
    )
    .await;

    // Reads, refusals, a revocation that changes nothing and tenant KV leave none.
    r.call(
        3,
        M::GET,
        &format!("/v1/users/{uid}"),
        &key,
        None,
        200,
        None,
    )
    .await;
    r.call(
        1,
        M::POST,
        &format!("/v1/sessions/{sid}/revoke"),
        &key,
        None,
        204,
        None,
    )
    .await;
    r.call(
        2,
        M::DELETE,
        &format!("/v1/users/{uid2}"),
        &key,
        None,
        404,
        None,
    )
    .await;
    r.call(
        3,
        M::POST,
        "/v1/users",
        &key,
        Some(json!({"email": "b@example.com"})),
        409,
        None,
    )
    .await;
    r.call(
        1,
        M::PUT,
        "/v1/kv/some-key",
        &key,
        Some(json!({"value": "v"})),
        200,
        None,
    )
    .await;

    // A second tenant, deleted (its events stay in `meta`).
    let gone = r
        .call(
            2,
            M::POST,
            "/v1/admin/tenants",
            TOKEN,
            Some(json!({"name": "gone"})),
            201,
            Some(("tenant.created", op())),
        )
        .await;
    let gone = gone["id"].as_str().expect("id").to_owned();
    r.call(
        3,
        M::DELETE,
        &format!("/v1/admin/tenants/{gone}"),
        TOKEN,
        None,
        204,
        Some(("tenant.deleted", op())),
    )
    .await;
    let expected = r.expected;

    // Every node applied everything: stop them and read node 3's data dir.
    let _ = c.cli_ok(&["status"]);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    for id in c.ids() {
        assert!(c.terminate(id), "node {id} exits cleanly");
    }
    let engine = Engine::open(&c.data_dir(3)).expect("open node 3's data dir");
    let mut by_request: BTreeMap<String, Vec<EventRecord>> = BTreeMap::new();
    for rec in records(&engine, &tid)
        .into_iter()
        .chain(records(&engine, &gone))
    {
        let id = rec
            .request_id
            .clone()
            .unwrap_or_else(|| format!("none:{}", rec.action));
        by_request.entry(id).or_default().push(rec);
    }
    for (request_id, action, actor) in &expected {
        let got = by_request.remove(request_id).unwrap_or_default();
        assert_eq!(
            got.len(),
            1,
            "{request_id} ({action}): exactly one event, got {got:?}"
        );
        assert_eq!(got[0].action, *action, "{request_id}");
        assert_eq!(got[0].actor, *actor, "{request_id} ({action})");
        assert!(got[0].at > 0, "{request_id}: a time");
    }
    assert!(
        by_request.is_empty(),
        "events no operation asked for: {by_request:?}"
    );
}
