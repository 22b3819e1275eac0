//! Data dirs: one of another node or cluster is refused, a bad master key file
//! stops a node at start, and a wiped data dir rejoins as a replica that never
//! votes.

use std::time::Duration;

use cairn_tests::TestCluster;

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
