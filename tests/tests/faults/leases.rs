//! Leader leases (`raft/src/lease.rs`) under faults: a leader paused past its
//! lease, or cut off from its followers, never serves a stale read.

use cairn_tests::TestCluster;

/// Leader leases (`raft/src/lease.rs`): a leader answers reads from its lease
/// without a quorum round. One paused past its lease, and replaced meanwhile,
/// must never answer from what it held before, not even with its first read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_leader_never_serves_a_stale_read_after_it_resumes() {
    let (c, leader, others) = leader_with_a_fresh_lease("").await;
    assert!(c.signal(leader, "STOP"));
    c.put_ok(others[0], "acme", "k", "after").await;
    let new_leader = c.leader(others[1], "local").await;
    assert_ne!(new_leader, leader, "the survivors elected a leader");
    assert!(c.signal(leader, "CONT"));
    for i in 0..30 {
        let v = c.get_value(leader, "acme", "k").await.expect("present");
        assert_eq!(v["value"], "after", "read {i} through the resumed node");
    }
}

/// A leader cut off from its followers keeps believing it leads (it hears of no
/// newer term), so only the lease's clock stops it: once the survivors have
/// elected a leader and acknowledged a write, the cut-off node must not answer a
/// read from its old state (it may answer 503).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_past_its_lease_never_serves_a_stale_read() {
    let (c, leader, others) = leader_with_a_fresh_lease("[debug]\nfault_injection = true\n").await;
    partition(&c, leader, &others).await;
    for o in &others {
        partition(&c, *o, &[leader]).await;
    }
    c.put_ok(others[0], "acme", "k", "after").await;
    assert_ne!(c.leader(others[1], "local").await, leader);
    for i in 0..2 {
        let r = c.get(leader, "acme", "k").await;
        match r.status().as_u16() {
            200 => {
                let v: serde_json::Value = r.json().await.expect("json");
                assert_eq!(v["value"], "after", "read {i} through the cut-off node");
            }
            503 => {}
            s => panic!("read {i}: {s} {}", r.text().await.unwrap_or_default()),
        }
    }
    for id in c.ids() {
        partition(&c, id, &[]).await;
    }
    let v = c.get_value(leader, "acme", "k").await.expect("present");
    assert_eq!(v["value"], "after");
}

/// A booted 3-node cluster where `acme/k` = "before", the data group's leader
/// (its lease kept fresh by reads through it) and the other nodes.
async fn leader_with_a_fresh_lease(extra_toml: &str) -> (TestCluster, u64, Vec<u64>) {
    let mut c = TestCluster::new(3, extra_toml);
    c.boot().await;
    c.put_ok(1, "acme", "k", "before").await;
    let leader = c.leader(1, "local").await;
    for _ in 0..20 {
        let v = c.get_value(leader, "acme", "k").await.expect("present");
        assert_eq!(v["value"], "before");
    }
    let others = c.ids().into_iter().filter(|id| *id != leader).collect();
    (c, leader, others)
}

async fn partition(c: &TestCluster, id: u64, blocked: &[u64]) {
    let r = c
        .client()
        .post(c.url(id, "/v1/debug/partition"))
        .bearer_auth(cairn_tests::TOKEN)
        .json(&serde_json::json!({ "blocked": blocked }))
        .send()
        .await
        .expect("partition request");
    assert!(
        r.status().is_success(),
        "partition via {id}: {}",
        r.status()
    );
}
