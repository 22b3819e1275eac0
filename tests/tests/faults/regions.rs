//! Region-pinned placement on a 5-node, two-region cluster of real processes:
//! `eu` is hard-pinned to nodes 1-3; `us` is best-effort on nodes 4-5 and borrows
//! node 1. Residency is checked where the data lives (rows, log entries and
//! snapshots by group id on each node's disk), not by whether it is readable.

use std::time::Duration;

use cairn_tests::{open_db, TestCluster, TOKEN};
use serde_json::{json, Value};

const EU_GROUP: u64 = 1;
const US_GROUP: u64 = 2;

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
