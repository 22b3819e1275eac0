//! Restarts: a whole-cluster SIGKILL and restart keeps every acknowledged
//! write; bootstrap happens exactly once; a restarted node resumes from its
//! data dir.

use cairn_tests::TestCluster;

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
