//! Readiness and status around faults: a node is not ready before `cairn init`
//! (it has no leader), and `cairn status` names a node that is down.

use cairn_tests::TestCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_before_init_and_status_names_an_unreachable_node() {
    let mut c = TestCluster::new(3, "");
    c.start_all();
    // Before init there is no leader: not ready, yet healthy.
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

    // An unreachable node is named.
    c.kill(3);
    let out = c.cli("status");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("unreachable nodes: [3]"), "{text}");
}
