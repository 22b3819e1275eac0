//! A real 3-node cluster: replication through every node, leader failover, catch-up
//! by snapshot after log compaction, whole-cluster restart, exactly-once bootstrap,
//! and data-dir identity.

use std::time::Duration;

use cairn_tests::TestCluster;

/// Snapshots every 20 entries and keeps no log behind them, so a node that misses
/// more than a few writes can only catch up by snapshot.
const COMPACTING: &str =
    "[raft]\nsnapshot_logs_since_last = 20\nmax_logs_kept_after_snapshot = 0\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_replicate_survive_leader_kill_and_catch_up_by_snapshot() {
    let mut c = TestCluster::new(3, COMPACTING);
    c.boot().await;

    // Writes through every node are readable through every node.
    for via in c.ids() {
        let body = c
            .put_ok(via, "acme", &format!("through-{via}"), &format!("v{via}"))
            .await;
        assert!(body["revision"].as_u64().is_some_and(|r| r > 0), "{body}");
    }
    for via in c.ids() {
        for from in c.ids() {
            let v = c.get_value(via, "acme", &format!("through-{from}")).await;
            assert_eq!(v.expect("present")["value"], format!("v{from}"));
        }
    }

    // Kill the data group's leader; keep writing through the survivors.
    let leader = c.leader(1, "local").await;
    let before_kill = c.group_status(leader, "local").await["last_log_index"]
        .as_u64()
        .expect("index");
    c.kill(leader);
    let survivors: Vec<u64> = c.ids().into_iter().filter(|id| *id != leader).collect();
    for i in 0..80 {
        let via = survivors[i % survivors.len()];
        c.put_ok(via, "acme", &format!("after-{i}"), &format!("a{i}"))
            .await;
    }
    let new_leader = c.leader(survivors[0], "local").await;
    assert_ne!(new_leader, leader, "a survivor took over");
    // openraft purges behind the snapshot once no replication stream is reading the
    // range (the stream to the dead node retries every backoff period): wait for it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let leader_status = loop {
        let s = c.group_status(new_leader, "local").await;
        if s["purged_index"].as_u64().unwrap_or(0) > before_kill {
            break s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the leader never compacted its log past the killed node's position: {s}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // The killed node comes back and catches up — by snapshot, since the entries it
    // missed are gone from every log.
    c.start(leader);
    c.wait_ready(leader).await;
    let target = leader_status["commit_index"].as_u64().expect("commit");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let s = c.group_status(leader, "local").await;
        if s["applied_index"].as_u64().unwrap_or(0) >= target {
            assert!(
                s["snapshot_index"].as_u64().unwrap_or(0) > before_kill,
                "caught up by installing a snapshot: {s}"
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no catch-up: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Reads through the restarted node see everything (served from its own replica).
    for i in 0..80 {
        let v = c.get_value(leader, "acme", &format!("after-{i}")).await;
        assert_eq!(v.expect("present")["value"], format!("a{i}"));
    }
    for from in c.ids() {
        assert!(c
            .get_value(leader, "acme", &format!("through-{from}"))
            .await
            .is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_cluster_restart_keeps_every_acknowledged_write_and_never_rebootstraps() {
    let mut c = TestCluster::new(3, "");
    c.boot().await;
    let mut acked = Vec::new();
    for i in 0..30u64 {
        let via = c.ids()[usize::try_from(i % 3).expect("small")];
        let body = c
            .put_ok(via, "t1", &format!("k{i}"), &format!("value-{i}"))
            .await;
        acked.push((
            format!("k{i}"),
            body["revision"].as_u64().expect("revision"),
        ));
    }
    let term_before = c.group_status(1, "local").await["term"]
        .as_u64()
        .expect("term");

    // SIGKILL everything at once: only what was synced survives, and that must be
    // every acknowledged write.
    for id in c.ids() {
        c.kill(id);
    }
    c.start_all();
    for id in c.ids() {
        c.wait_ready(id).await;
    }
    for (i, (key, revision)) in acked.iter().enumerate() {
        let via = c.ids()[i % 3];
        let v = c
            .get_value(via, "t1", key)
            .await
            .expect("acknowledged write survived");
        assert_eq!(v["value"], format!("value-{i}"));
        assert_eq!(v["revision"].as_u64(), Some(*revision));
    }
    let s = c.group_status(2, "local").await;
    assert!(s["term"].as_u64().expect("term") >= term_before);
    assert_eq!(s["voters"], serde_json::json!([1, 2, 3]));

    // Bootstrap happens exactly once: a second init is refused.
    let out = c.init();
    assert!(!out.status.success(), "second init must be refused");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already_initialized"), "{err}");

    // A single restarted node resumes from its data dir; it does not re-bootstrap.
    let applied_before = c.group_status(3, "local").await["applied_index"]
        .as_u64()
        .expect("applied");
    assert!(c.terminate(3), "SIGTERM exits cleanly");
    c.start(3);
    c.wait_ready(3).await;
    let s = c.group_status(3, "local").await;
    assert!(
        s["applied_index"].as_u64().expect("applied") >= applied_before,
        "{s}"
    );
    assert_eq!(s["voters"], serde_json::json!([1, 2, 3]));
    assert_eq!(
        c.log(3).matches("fresh=true").count(),
        1,
        "the data dir was fresh only at the first start"
    );
    let v = c.get_value(3, "t1", "k0").await.expect("present");
    assert_eq!(v["value"], "value-0");
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_dir_of_another_node_or_cluster_is_refused() {
    let mut c = TestCluster::new(2, "");
    c.start(1);
    c.wait_ready_or_running(1).await;
    assert!(c.terminate(1));

    // Node 2 pointed at node 1's data dir.
    let swapped = c
        .config_text("test", "")
        .replace("data_dir = \"node-2\"", "data_dir = \"node-x\"")
        .replace("data_dir = \"node-1\"", "data_dir = \"node-2\"")
        .replace("data_dir = \"node-x\"", "data_dir = \"node-1\"");
    std::fs::write(&c.config, swapped).expect("write config");
    c.start(2);
    let status = c.wait_exit(2).await;
    assert!(!status.success());
    assert!(
        c.log(2).contains("data dir belongs to another node"),
        "{}",
        c.log(2)
    );

    // Node 1 of another cluster on the same data dir.
    std::fs::write(&c.config, c.config_text("other", "")).expect("write config");
    c.start(1);
    let status = c.wait_exit(1).await;
    assert!(!status.success());
    assert!(c.log(1).contains("cluster \"test\""), "{}", c.log(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_refuses_to_start_with_a_bad_master_key_file() {
    use std::os::unix::fs::PermissionsExt;
    let mut c = TestCluster::new(1, "");
    let key = c.dir.path().join("master.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    c.start(1);
    assert!(!c.wait_exit(1).await.success());
    assert!(c.log(1).contains("chmod 600"), "{}", c.log(1));
}

trait WaitExt {
    async fn wait_exit(&mut self, id: u64) -> std::process::ExitStatus;
    async fn wait_ready_or_running(&mut self, id: u64);
}

impl WaitExt for TestCluster {
    async fn wait_exit(&mut self, id: u64) -> std::process::ExitStatus {
        for _ in 0..200 {
            if let Some(s) = self.exited(id) {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("node {id} did not exit; log:\n{}", self.log(id));
    }

    /// An uninitialised single node serves /healthz (it has no leader yet).
    async fn wait_ready_or_running(&mut self, id: u64) {
        for _ in 0..200 {
            if let Ok(r) = self.client().get(self.url(id, "/healthz")).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("node {id} never served /healthz; log:\n{}", self.log(id));
    }
}

/// A node whose data dir is lost and recreated must not vote: it may lack entries
/// it acknowledged before, and its vote could elect a leader missing an
/// acknowledged write. It replicates (and serves reads), but the group waits for a
/// node with the full history rather than elect without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_data_dir_rejoins_as_a_replica_that_never_votes() {
    let mut c = TestCluster::new(3, "");
    c.boot().await;
    for id in c.ids() {
        assert_eq!(
            c.status(id).await["admitted"],
            true,
            "node {id} admitted at init"
        );
    }
    for i in 0..10 {
        c.put_ok(1, "t", &format!("k{i}"), &format!("v{i}")).await;
    }
    // Wipe the data dir of a follower of the data group and restart it.
    let leader = c.leader(1, "local").await;
    let wiped = c
        .ids()
        .into_iter()
        .find(|id| *id != leader)
        .expect("a follower");
    assert!(c.terminate(wiped));
    std::fs::remove_dir_all(c.data_dir(wiped)).expect("wipe");
    c.start(wiped);
    c.wait_ready(wiped).await;
    assert_eq!(c.status(wiped).await["admitted"], false);
    // It replicates: every key is readable through it.
    for i in 0..10 {
        let got = c
            .get_value(wiped, "t", &format!("k{i}"))
            .await
            .expect("present");
        assert_eq!(got["value"], format!("v{i}"));
    }
    // A second `cairn init` does not admit it, nor does a restart now that it
    // holds replicated state.
    assert!(!c.init().status.success(), "already initialised");
    assert_eq!(c.status(wiped).await["admitted"], false);
    assert!(c.terminate(wiped));
    c.start(wiped);
    c.wait_ready(wiped).await;
    assert_eq!(
        c.status(wiped).await["admitted"],
        false,
        "still not admitted after a restart"
    );

    // Kill the leader: the one remaining full node cannot win without the wiped
    // node's vote, and the wiped node never campaigns. Writes wait.
    c.kill(leader);
    let r = c.put(wiped, "t", "during", "x").await;
    assert_eq!(
        r.status(),
        503,
        "no leader may be elected with a wiped voter"
    );
    let other = c
        .ids()
        .into_iter()
        .find(|id| *id != leader && *id != wiped)
        .expect("third node");
    let g = c.group_status(other, "local").await;
    assert_ne!(g["role"], "leader", "{g}");
    assert!(
        c.log(wiped).contains("vote refused"),
        "the wiped node refused to vote"
    );

    // The killed node returns: a leader with the full history is elected.
    c.start(leader);
    c.wait_ready(leader).await;
    c.put_ok(other, "t", "after", "y").await;
    for i in 0..10 {
        let got = c
            .get_value(other, "t", &format!("k{i}"))
            .await
            .expect("present");
        assert_eq!(got["value"], format!("v{i}"));
    }
}
