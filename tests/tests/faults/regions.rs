//! Region-pinned placement on a 5-node, two-region cluster of real processes:
//! `eu` is hard-pinned to nodes 1-3; `us` is best-effort on nodes 4-5 and borrows
//! node 1. Residency is checked where the data lives (rows, log entries and
//! snapshots by group id on each node's disk), not by whether it is readable.

use std::time::Duration;

use cairn_raft::RaftNodeError;
use cairn_storage::codec;
use cairn_storage::sm::users::GetUser;
use cairn_storage::sm::{Answer, Query};
use cairn_tests::api::{
    bearer, fails, user_request, Api, Auth, CreateTenantRequest, CreateTenantResponse,
    CreateUserRequest, USER_AGENT,
};
use cairn_tests::peer::{Identity, RawPeer, Rpc};
use cairn_tests::{open_db, TestCluster, TOKEN};
use serde_json::{json, Value};

const EU_GROUP: u64 = 1;
const US_GROUP: u64 = 2;
const PASSWORD: &str = "correct horse battery";

fn two_regions(extra_toml: &str) -> TestCluster {
    TestCluster::with_regions(
        &[("eu", "hard"), ("us", "best-effort")],
        &[(1, "eu"), (2, "eu"), (3, "eu"), (4, "us"), (5, "us")],
        extra_toml,
    )
}

async fn create_tenant(c: &TestCluster, via: u64, name: &str, region: &str) -> String {
    let r = c
        .client()
        .post(c.url(via, "/v1/admin/tenants"))
        .bearer_auth(TOKEN)
        .json(&json!({"name": name, "region": region}))
        .send()
        .await
        .expect("create tenant");
    assert_eq!(r.status(), 201, "create {name}");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["region"], region);
    body["id"].as_str().expect("id").to_owned()
}

/// Keys of `group` in every column family of a stopped node's DB.
fn rows_of_group(c: &TestCluster, node: u64, group: u64) -> usize {
    let db = open_db(&c.data_dir(node));
    let prefix = group.to_be_bytes();
    ["raft_log", "raft_state", "sm", "snapshot"]
        .iter()
        .map(|cf| {
            let cf = db.cf_handle(cf).expect("cf");
            db.prefix_iterator_cf(cf, prefix)
                .map(|item| item.expect("row"))
                .take_while(|(k, _)| k.starts_with(&prefix))
                .count()
        })
        .sum()
}

/// KV rows of `tenant_id` in `group` on a stopped node.
fn kv_rows(c: &TestCluster, node: u64, group: u64, tenant_id: &str) -> usize {
    let db = open_db(&c.data_dir(node));
    let prefix = cairn_storage::keyspace::kv_key(group, tenant_id, b"");
    let cf = db.cf_handle("sm").expect("sm");
    db.prefix_iterator_cf(cf, &prefix)
        .map(|item| item.expect("row"))
        .take_while(|(k, _)| k.starts_with(&prefix))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn region_hard_pinned_data_stays_on_its_nodes_even_when_relayed() {
    let mut c =
        two_regions("[raft]\nsnapshot_logs_since_last = 20\nmax_logs_kept_after_snapshot = 0\n");
    c.boot().await;
    // Created through a node outside the tenant's region.
    let eu = create_tenant(&c, 4, "eu-tenant", "eu").await;
    let us = create_tenant(&c, 2, "us-tenant", "us").await;

    // Writes for the hard region arrive at every node, including the two us
    // nodes, which relay them; the same for the best-effort region.
    for i in 0..50u64 {
        let via = i % 5 + 1;
        c.put_ok(
            via,
            "eu-tenant",
            &format!("eu-key-{i}"),
            &format!("eu-value-{i}"),
        )
        .await;
        c.put_ok(
            via,
            "us-tenant",
            &format!("us-key-{i}"),
            &format!("us-value-{i}"),
        )
        .await;
    }
    for i in 0..50u64 {
        let got = c.get_value(5, "eu-tenant", &format!("eu-key-{i}")).await;
        assert_eq!(got.expect("present")["value"], format!("eu-value-{i}"));
    }
    let _ = c.cli_ok(&["compact"]);
    for id in c.ids() {
        assert!(c.terminate(id), "node {id} exits cleanly");
    }

    for id in 1..=3 {
        assert_eq!(
            kv_rows(&c, id, EU_GROUP, &eu),
            50,
            "eu rows on eu node {id}"
        );
        assert!(
            rows_of_group(&c, id, EU_GROUP) > 50,
            "eu log/state on node {id}"
        );
    }
    for id in 4..=5 {
        assert_eq!(
            rows_of_group(&c, id, EU_GROUP),
            0,
            "node {id} (us) holds nothing of the hard-pinned eu group: no row, log entry, \
             hard state or snapshot"
        );
        let log = c.log(id);
        assert!(
            !log.contains("hard-pinned"),
            "node {id} never even tried to send eu traffic: {log}"
        );
    }
    // The best-effort region lives on its own nodes and the borrowed node 1 only.
    for id in [1, 4, 5] {
        assert_eq!(kv_rows(&c, id, US_GROUP, &us), 50, "us rows on node {id}");
    }
    for id in [2, 3] {
        assert_eq!(rows_of_group(&c, id, US_GROUP), 0, "us data on node {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn region_outage_fails_only_that_regions_requests() {
    let mut c = two_regions("");
    c.boot().await;
    create_tenant(&c, 1, "eu-tenant", "eu").await;
    create_tenant(&c, 1, "us-tenant", "us").await;
    c.put_ok(1, "eu-tenant", "k", "before").await;
    c.put_ok(1, "us-tenant", "k", "before").await;

    // One eu node down: eu keeps a majority and stays writable.
    c.kill(3);
    c.put_ok(4, "eu-tenant", "k", "one-down").await;
    c.put_ok(1, "eu-tenant", "k2", "one-down").await;

    // A majority of eu down: only eu fails, with region_unavailable.
    c.kill(2);
    for via in [1, 4] {
        let r = c.put(via, "eu-tenant", "k", "no-quorum").await;
        assert_eq!(r.status(), 503, "eu write via node {via}");
        let body: Value = r.json().await.expect("problem");
        assert_eq!(body["code"], "region_unavailable", "{body}");
        assert!(
            body["detail"].as_str().unwrap_or("").contains("eu"),
            "{body}"
        );
    }
    let r = c.get(5, "eu-tenant", "k").await;
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.expect("problem");
    assert_eq!(body["code"], "region_unavailable", "{body}");
    // The other region serves reads and writes through any live node.
    for via in [1, 4, 5] {
        c.put_ok(via, "us-tenant", "k", &format!("via-{via}")).await;
        let got = c.get_value(via, "us-tenant", "k").await.expect("present");
        assert_eq!(got["value"], format!("via-{via}"));
    }
    // New tenants (meta) still work: meta has 3 of its 5 voters.
    create_tenant(&c, 5, "late-us", "us").await;

    // The eu nodes come back: eu serves again, nothing acknowledged was lost.
    c.start(2);
    c.start(3);
    c.wait_ready(2).await;
    c.wait_ready(3).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    c.put_ok(4, "eu-tenant", "k3", "recovered").await;
    assert_eq!(
        c.get_value(5, "eu-tenant", "k2").await.expect("present")["value"],
        "one-down"
    );
}

/// Tenant `name` in `region`, created through node `via`, and an API key of
/// every scope for it, issued through node `key_via`.
async fn tenant_with_key<A: Api>(
    api: &A,
    via: u64,
    key_via: u64,
    name: &str,
    region: &str,
) -> (CreateTenantResponse, String) {
    let request = CreateTenantRequest {
        name: name.to_owned(),
        region: Some(region.to_owned()),
        ..CreateTenantRequest::default()
    };
    let tenant = api
        .create_tenant(via, Auth::OPERATOR, request)
        .await
        .expect("create tenant");
    let scopes = ["read", "write", "manage", "delete"];
    let key = api
        .create_api_key(key_via, Auth::OPERATOR, &tenant.id, &scopes)
        .await
        .expect("api key")
        .api_key;
    (tenant, key)
}

/// The auth API and KV of a tenant homed in the hard region, and of a user of a
/// best-effort tenant pinned to it, all through the two nodes outside it, over
/// `api`'s transport: each request is served by the region's own nodes
/// (relayed whole, since they refuse the outside nodes' queries).
async fn serve_the_hard_region_through_outside_nodes<A: Api>(api: &A, tag: &str) {
    let (tenant, key) = tenant_with_key(api, 4, 5, &format!("eu-{tag}"), "eu").await;
    let k = bearer(&key);
    let email = format!("alice-{tag}@example.com");
    let user = api
        .create_user(4, k, user_request(&email, Some(PASSWORD)))
        .await
        .expect("create user through node 4");
    assert_eq!(user.region, "eu");
    assert_eq!(
        api.get_user(5, k, &user.id).await.expect("get").email,
        email
    );
    let s = api.sign_in(5, k, &email, PASSWORD).await.expect("sign in");
    assert_eq!(s.user_id, user.id);
    fails(
        api.sign_in(4, k, &email, "wrong password!").await,
        401,
        "invalid_credentials",
    );
    let r = api.refresh(4, k, &s.refresh_token).await.expect("refresh");
    let active = api
        .introspect(5, k, &r.access_token, None)
        .await
        .expect("introspect");
    assert!(active.active, "{active:?}");
    let sessions = api.list_sessions(4, k, &user.id).await.expect("list");
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert!(
        sessions[0]
            .user_agent
            .as_deref()
            .is_some_and(|ua| ua.starts_with(USER_AGENT)),
        "the client's user agent, carried by the relay: {sessions:?}"
    );
    assert!(sessions[0].ip.is_some(), "{sessions:?}");
    api.kv_put(4, k, "relayed", "v1", None)
        .await
        .expect("kv put");
    assert_eq!(
        api.kv_get(5, k, "relayed").await.expect("kv get").value,
        "v1"
    );
    // The operator's KV for the tenant (`x-tenant`) goes the same way.
    let as_operator = Auth::operator_for(&tenant.name);
    assert_eq!(
        api.kv_get(4, as_operator, "relayed")
            .await
            .expect("operator kv")
            .value,
        "v1"
    );
    api.revoke_session(5, k, &s.session_id)
        .await
        .expect("revoke");
    fails(
        api.refresh(4, k, &r.refresh_token).await,
        401,
        "session_revoked",
    );
    // A refusal answered by the region is the client's answer, unchanged.
    fails(api.kv_get(4, k, "absent").await, 404, "key_not_found");
    fails(
        api.get_user(5, bearer("ck_not.a-key"), &user.id).await,
        401,
        "unauthorized",
    );

    // A best-effort tenant's user pinned to the hard region: the tenant is
    // served anywhere, the user only by the region's nodes.
    let (_, us_key) = tenant_with_key(api, 5, 4, &format!("us-{tag}"), "us").await;
    let uk = bearer(&us_key);
    let bob_email = format!("bob-{tag}@example.com");
    let bob = api
        .create_user(
            5,
            uk,
            CreateUserRequest {
                region: Some("eu".to_owned()),
                ..user_request(&bob_email, Some(PASSWORD))
            },
        )
        .await
        .expect("create an eu user of a us tenant");
    assert_eq!(bob.region, "eu");
    let bs = api
        .sign_in(4, uk, &bob_email, PASSWORD)
        .await
        .expect("sign in");
    let br = api
        .refresh(5, uk, &bs.refresh_token)
        .await
        .expect("refresh");
    assert!(
        api.introspect(4, uk, &br.access_token, None)
            .await
            .expect("introspect")
            .active
    );
    assert_eq!(
        api.list_sessions(5, uk, &bob.id).await.expect("list").len(),
        1
    );
    api.delete_user(4, uk, &bob.id).await.expect("delete");
    fails(api.get_user(5, uk, &bob.id).await, 404, "user_not_found");
}

/// A sign-in of an unknown email (the path that fails fastest), through node
/// `via` with `extra` headers: its answer's status, headers and time.
async fn unknown_sign_in(
    c: &TestCluster,
    via: u64,
    key: &str,
    extra: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Duration) {
    let mut req = c
        .client()
        .post(c.url(via, "/v1/sessions"))
        .bearer_auth(key)
        .json(&json!({ "email": "nobody@example.com", "password": PASSWORD }));
    for (name, value) in extra {
        req = req.header(*name, *value);
    }
    let started = std::time::Instant::now();
    let r = req.send().await.expect("sign in");
    let took = started.elapsed();
    (r.status().as_u16(), r.headers().clone(), took)
}

/// Minimum response times count from the client's arrival at the node it
/// called, also when the region serves the request: the relayed sign-in takes
/// its 150 ms (lower bounds only), no relay header reaches the client, and a
/// client cannot claim to be a relay to skip the wait.
async fn relayed_answers_keep_their_minimum_time(c: &TestCluster) {
    let api = c.http_api();
    let (_, key) = tenant_with_key(&api, 4, 5, "eu-min-time", "eu").await;
    let min = Duration::from_millis(150);
    let mut relayed = Vec::new();
    for attempt in 0..5 {
        let via = 4 + attempt % 2;
        let (status, headers, took) =
            unknown_sign_in(c, via, &key, &[("cairn-relay-pad-ms", "0")]).await;
        assert_eq!(status, 401);
        assert!(took >= min, "relayed through node {via}: {took:?}");
        for name in ["cairn-relay-pad-ms", "cairn-relay-pads"] {
            assert!(!headers.contains_key(name), "{name} reached the client");
        }
        relayed.push(took);
    }
    for via in 1..=3 {
        let (status, headers, took) =
            unknown_sign_in(c, via, &key, &[("cairn-relay-pads", "1")]).await;
        assert_eq!(status, 401);
        assert!(
            took >= min,
            "node {via} took a client's relay mark: answered in {took:?}"
        );
        assert!(!headers.contains_key("cairn-relay-pad-ms"));
    }
    relayed.sort();
    println!("relayed failed sign-ins took {relayed:?} (minimum {min:?})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn region_hard_pinned_requests_through_outside_nodes_are_served_by_the_region() {
    let mut c = two_regions("");
    c.boot().await;
    serve_the_hard_region_through_outside_nodes(&c.http_api(), "http").await;
    serve_the_hard_region_through_outside_nodes(&c.grpc_api(), "grpc").await;
    relayed_answers_keep_their_minimum_time(&c).await;
    // The region's nodes never answered a query of an outside node: they
    // would have refused it, and logged the refusal.
    for id in 1..=3 {
        let log = c.log(id);
        assert!(
            !log.contains("peer message refused"),
            "node {id} refused a peer message: {log}"
        );
    }
    for id in c.ids() {
        assert!(c.terminate(id), "node {id} exits cleanly");
    }
    for id in 4..=5 {
        assert_eq!(
            rows_of_group(&c, id, EU_GROUP),
            0,
            "node {id} (us) holds nothing of the eu group"
        );
    }
}

/// What a `Query` for `group` from node `from` (its own certificate) gets from
/// node 1.
async fn query_as(
    c: &TestCluster,
    from: u64,
    group: u64,
    tenant: &str,
) -> Result<Vec<u8>, tonic::Status> {
    let ca = c.ca_pem().expect("a TLS cluster").to_vec();
    let peer_addr = c
        .nodes()
        .iter()
        .find(|n| n.id == 1)
        .expect("node 1")
        .raft
        .clone();
    let peer = RawPeer::connect(&peer_addr, &ca, Some(&Identity::member(c.dir.path(), from)));
    let query: Query = GetUser {
        tenant: tenant.to_owned(),
        user_id: format!("usr_{group}_{}", "0".repeat(32)),
    }
    .into();
    let payload = codec::encode("query", &query).expect("encode");
    peer.call(Rpc::Query, group, from, payload).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn region_hard_pinned_group_refuses_queries_from_outside_nodes() {
    let mut c = two_regions("");
    c.boot().await;
    let eu = create_tenant(&c, 1, "eu-tenant", "eu").await;
    let us = create_tenant(&c, 1, "us-tenant", "us").await;

    // Node 4, with its own valid certificate, asks node 1 for eu's data.
    let mark = c.log(1).len();
    let refused = query_as(&c, 4, EU_GROUP, &eu).await;
    let status = refused.expect_err("a query of the hard group from outside it is refused");
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert!(
        status.message().contains("pinned to region eu"),
        "{status:?}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let log = c.log(1);
        if log[mark..]
            .lines()
            .any(|l| l.contains("WARN") && l.contains("Query") && l.contains("hard-pinned"))
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "node 1 logged no refusal: {}",
            &log[mark..]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Positive controls: the same query from an eu node is answered, and so is
    // node 4's query of the best-effort group node 1 also holds.
    let answered: Result<Answer, RaftNodeError> = codec::decode(
        "reply",
        &query_as(&c, 2, EU_GROUP, &eu).await.expect("eu member"),
    )
    .expect("reply");
    assert!(answered.is_ok(), "{answered:?}");
    let answered: Result<Answer, RaftNodeError> = codec::decode(
        "reply",
        &query_as(&c, 4, US_GROUP, &us).await.expect("us group"),
    )
    .expect("reply");
    assert!(answered.is_ok(), "{answered:?}");
}
