//! `cluster`: health, readiness and status of the shared cluster, over HTTP and
//! through `cairn status` (there is no gRPC cluster service). Readiness before
//! `init` and a node that is down need clusters of their own: `faults`.

use cairn_tests::api::Auth;
use serde_json::json;

use crate::{Cx, REGION};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_describes_every_group_and_needs_the_admin_token() {
    let cx = Cx::http();
    let c = &cx.cluster;
    for id in c.ids() {
        let health = cx.api.get(id, "/healthz", Auth::NONE).await;
        health.expect(200);
        let ready = cx.api.get(id, "/readyz", Auth::NONE).await;
        ready.expect(200);
    }
    cx.api
        .get(2, "/v1/cluster/status", Auth::NONE)
        .await
        .problem(401, "unauthorized");

    let leader = c.leader(1, REGION).await;
    let s = c.status(leader).await;
    assert_eq!(s["id"], leader);
    assert_eq!(s["region"], REGION);
    let groups = s["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 2, "meta + one region group: {s}");
    assert!(groups.iter().any(|g| g["group"] == "meta"), "{s}");
    let data = groups
        .iter()
        .find(|g| g["group"] == REGION)
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
}

/// `cairn status` prints a table with a row per node and group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cairn_status_prints_a_row_per_node_and_group() {
    let cx = Cx::http();
    let out = cx.cluster.cli("status");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("LEADER") && text.contains("meta") && text.contains("local (hard)"),
        "{text}"
    );
    assert!(text.contains("all 3 nodes reachable"), "{text}");
}
