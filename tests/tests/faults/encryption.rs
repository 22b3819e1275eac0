//! Envelope encryption, end to end on real node processes: nothing written through
//! the API reaches a data dir, Raft log, snapshot or node log in the clear; values
//! survive data key and master key rotation and restarts; tampered, moved or
//! truncated records are refused with `decryption_failed`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cairn_storage::{codec, KvRecord};
use cairn_tests::{cairn_bin, files_containing, open_db, TestCluster, TOKEN};
use serde_json::Value;

const SMALL_SNAPSHOTS: &str =
    "[raft]\nsnapshot_logs_since_last = 20\nmax_logs_kept_after_snapshot = 0\n";

/// A marker no other test or run writes.
fn run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{nanos:x}")
}

async fn wait_caught_up(c: &TestCluster, id: u64, via: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let leader = c.group_status(via, "local").await["commit_index"]
            .as_u64()
            .unwrap_or(0);
        let mine = c.group_status(id, "local").await["applied_index"]
            .as_u64()
            .unwrap_or(0);
        if mine >= leader && leader > 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "node {id} did not catch up: {mine} < {leader}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_plaintext_key_or_value_reaches_any_file() {
    let mut c = TestCluster::new(3, SMALL_SNAPSHOTS);
    c.boot().await;
    let run = run_id();
    let tenant = format!("tenant{run}");
    let key = |i: usize| format!("markerkey{run}n{i:03}");
    let value = |i: usize| format!("markervalue{run}n{i:03}");

    for i in 0..40 {
        let via = u64::try_from(i % 3).expect("small") + 1;
        c.put_ok(via, &tenant, &key(i), &value(i)).await;
    }
    // A follower misses some writes and is brought back by a snapshot.
    c.kill(3);
    for i in 40..80 {
        c.put_ok(
            1 + u64::try_from(i % 2).expect("small"),
            &tenant,
            &key(i),
            &value(i),
        )
        .await;
    }
    let out = c.cli_with(&["compact"]);
    assert!(!out.status.success(), "node 3 is down: compact reports it");
    c.start(3);
    c.wait_ready(3).await;
    wait_caught_up(&c, 3, 1).await;
    for i in 0..80 {
        let got = c.get_value(3, &tenant, &key(i)).await.expect("present");
        assert_eq!(got["value"], value(i), "key {i} through node 3");
    }
    let _ = c.cli_ok(&["compact"]);
    for id in c.ids() {
        assert!(c.terminate(id), "node {id} exits cleanly");
    }

    let root = c.dir.path();
    // Positive control: the scanner does find what is stored in the clear (the
    // tenant's name, in `meta` and in the node logs).
    assert!(
        !files_containing(root, tenant.as_bytes()).is_empty(),
        "the scan must see tenant names in the data dirs"
    );
    for i in 0..80 {
        for needle in [key(i), value(i)] {
            let hits = files_containing(root, needle.as_bytes());
            assert!(hits.is_empty(), "{needle} found in the clear in {hits:?}");
        }
    }
    // Not even a prefix of the markers (e.g. a value split across records).
    let hits = files_containing(root, format!("markervalue{run}").as_bytes());
    assert!(hits.is_empty(), "marker prefix found in {hits:?}");
    let hits = files_containing(root, format!("markerkey{run}").as_bytes());
    assert!(hits.is_empty(), "marker key prefix found in {hits:?}");
}

/// Records `k = v` as the latest expected value of `k`.
fn remember(written: &mut Vec<(String, String)>, k: &str, v: &str) -> (String, String) {
    written.retain(|(wk, _)| wk != k);
    written.push((k.to_owned(), v.to_owned()));
    (k.to_owned(), v.to_owned())
}

async fn keys_status(c: &TestCluster) -> Value {
    let out = c.cli_ok(&["keys", "status", "--json"]);
    serde_json::from_str(&out).expect("keys status json")
}

async fn read_all(c: &TestCluster, via: u64, tenant: &str, expected: &[(String, String)]) {
    for (k, v) in expected {
        let got = c
            .get_value(via, tenant, k)
            .await
            .unwrap_or_else(|| panic!("{k} missing via node {via}"));
        assert_eq!(got["value"], v.as_str(), "{k} via node {via}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_survive_data_key_and_master_key_rotation_and_restarts() {
    let mut c = TestCluster::new(3, "");
    c.boot().await;
    let tenant = "rotating";
    let mut written: Vec<(String, String)> = Vec::new();
    for i in 0..5 {
        let (k, v) = remember(
            &mut written,
            &format!("k{i}"),
            &format!("before-rotation-{i}"),
        );
        c.put_ok(1, tenant, &k, &v).await;
    }
    let status = keys_status(&c).await;
    assert_eq!(status["master_key"]["version"], 1);
    let fp1 = status["master_key"]["fingerprint"]
        .as_str()
        .expect("fingerprint")
        .to_owned();

    // Data key rotation.
    let out = c.cli_ok(&["keys", "rotate", "--tenant", tenant]);
    assert!(out.contains("data key version 2"), "{out}");
    for i in 5..10 {
        let (k, v) = remember(
            &mut written,
            &format!("k{i}"),
            &format!("after-dek-rotation-{i}"),
        );
        c.put_ok(2, tenant, &k, &v).await;
    }
    let (k, v) = remember(&mut written, "k0", "rewritten-under-v2");
    c.put_ok(3, tenant, &k, &v).await;
    read_all(&c, 3, tenant, &written).await;

    // A master key rotation that cannot be staged everywhere changes nothing.
    let loose = c.write_file("loose.key", &[7u8; 32], 0o644);
    let out = c.cli_with(&[
        "keys",
        "rotate-master",
        "--new-key-file",
        loose.to_str().expect("utf-8"),
    ]);
    assert!(!out.status.success(), "a 0644 key file is refused");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nothing was rotated"), "{err}");
    assert_eq!(keys_status(&c).await["master_key"]["version"], 1);

    // Master key rotation, while a client keeps writing: the cluster serves
    // throughout (every write is acknowledged, none needs more than a retry).
    let new_key: Vec<u8> = (0u8..32)
        .map(|b| b.wrapping_mul(7).wrapping_add(3))
        .collect();
    let path = c.write_file("master-2.key", &new_key, 0o600);
    let mut cmd = std::process::Command::new(cairn_bin());
    cmd.args(["keys", "rotate-master", "--new-key-file"])
        .arg(&path)
        .arg("--config")
        .arg(&c.config);
    let rotation = tokio::task::spawn_blocking(move || cmd.output().expect("run cairn"));
    let mut during = Vec::new();
    for i in 0..30 {
        let (k, v) = (
            format!("during-{i}"),
            format!("written-during-rotation-{i}"),
        );
        c.put_ok(1 + (i % 3), tenant, &k, &v).await;
        during.push((k, v));
    }
    let out = rotation.await.expect("rotation task");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("master key is now version 2"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (k, v) in during {
        remember(&mut written, &k, &v);
    }
    for i in 10..15 {
        let (k, v) = remember(
            &mut written,
            &format!("k{i}"),
            &format!("after-kek-rotation-{i}"),
        );
        c.put_ok(1, tenant, &k, &v).await;
    }
    // A new tenant after the master rotation is wrapped under the new key.
    c.put_ok(2, "newcomer", "hello", "world").await;
    let out = c.cli_ok(&["keys", "rotate", "--tenant", tenant]);
    assert!(out.contains("data key version 3"), "{out}");
    let (k, v) = remember(&mut written, "k15", "after-second-dek-rotation");
    c.put_ok(3, tenant, &k, &v).await;

    let status = keys_status(&c).await;
    assert_eq!(status["master_key"]["version"], 2);
    assert_ne!(status["master_key"]["fingerprint"], fp1.as_str());
    assert_eq!(
        status["retired_master_keys"][0]["fingerprint"],
        fp1.as_str()
    );
    let tenants = status["tenants"].as_array().expect("tenants");
    let rot = tenants
        .iter()
        .find(|t| t["name"] == tenant)
        .expect("tenant listed");
    assert_eq!(rot["key_version"], 3);
    for kv in rot["key_versions"].as_array().expect("versions") {
        assert_eq!(kv["master_key_version"], 2, "every key re-wrapped: {kv}");
    }
    for id in c.ids() {
        read_all(&c, id, tenant, &written).await;
    }

    // One node restarted (its config still names the old key file; the staged
    // key is recorded in its data dir), then the whole cluster.
    assert!(c.terminate(2));
    c.start(2);
    c.wait_ready(2).await;
    read_all(&c, 2, tenant, &written).await;
    for id in c.ids() {
        assert!(c.terminate(id));
    }
    c.start_all();
    for id in c.ids() {
        c.wait_ready(id).await;
    }
    for id in c.ids() {
        read_all(&c, id, tenant, &written).await;
    }
    assert_eq!(
        c.get_value(1, "newcomer", "hello").await.expect("present")["value"],
        "world"
    );
}

/// The `sm` rows of `tenant_id`'s KV keys in group 1, on one node's stopped DB.
fn kv_rows(db: &rocksdb::DB, tenant_id: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let cf = db.cf_handle("sm").expect("sm cf");
    let prefix = cairn_storage::keyspace::kv_key(1, tenant_id, b"");
    db.iterator_cf(cf, rocksdb::IteratorMode::Start)
        .map(|item| item.expect("row"))
        .filter(|(k, _)| k.starts_with(&prefix))
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_moved_or_truncated_values_fail_with_decryption_failed() {
    let mut c = TestCluster::new(3, "");
    c.boot().await;
    c.put_ok(1, "swap", "a", "value-a").await;
    c.put_ok(1, "swap", "b", "value-b").await;
    c.put_ok(1, "flip", "k", "value-flip").await;
    c.put_ok(1, "trunc", "k", "value-trunc").await;
    c.put_ok(1, "from", "k", "value-from").await;
    c.put_ok(1, "to", "k", "value-to").await;
    c.put_ok(1, "intact", "k", "value-intact").await;
    let status: Value = c
        .client()
        .get(c.url(1, "/v1/admin/keys"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("keys")
        .json()
        .await
        .expect("json");
    let id = |name: &str| -> String {
        status["tenants"]
            .as_array()
            .expect("tenants")
            .iter()
            .find(|t| t["name"] == name)
            .and_then(|t| t["id"].as_str())
            .expect("tenant id")
            .to_owned()
    };
    let (swap, flip, trunc, from, to) = (id("swap"), id("flip"), id("trunc"), id("from"), id("to"));
    for n in c.ids() {
        assert!(c.terminate(n));
    }

    // Tamper with every replica, so no read can be served from a clean copy.
    for n in c.ids() {
        let db = open_db(&c.data_dir(n));
        let cf = db.cf_handle("sm").expect("sm cf");
        // Values swapped between two keys of one tenant.
        let rows = kv_rows(&db, &swap);
        assert_eq!(rows.len(), 2);
        db.put_cf(cf, &rows[0].0, &rows[1].1).expect("put");
        db.put_cf(cf, &rows[1].0, &rows[0].1).expect("put");
        // One bit flipped inside the sealed value.
        let (k, v) = kv_rows(&db, &flip).remove(0);
        let mut rec: KvRecord = codec::decode("kv record", &v).expect("record");
        let mid = rec.value.len() / 2;
        rec.value[mid] ^= 0x10;
        db.put_cf(cf, &k, codec::encode("kv record", &rec).expect("encode"))
            .expect("put");
        // The sealed value truncated.
        let (k, v) = kv_rows(&db, &trunc).remove(0);
        let mut rec: KvRecord = codec::decode("kv record", &v).expect("record");
        rec.value.truncate(rec.value.len() - 7);
        db.put_cf(cf, &k, codec::encode("kv record", &rec).expect("encode"))
            .expect("put");
        // A value copied from one tenant's key to another tenant's key.
        let (_, v) = kv_rows(&db, &from).remove(0);
        let (k, _) = kv_rows(&db, &to).remove(0);
        db.put_cf(cf, &k, &v).expect("put");
        db.flush_cf(cf).expect("flush");
    }

    c.start_all();
    for n in c.ids() {
        c.wait_ready(n).await;
    }
    for (tenant, key) in [
        ("swap", "a"),
        ("swap", "b"),
        ("flip", "k"),
        ("trunc", "k"),
        ("to", "k"),
    ] {
        let r = c.get(2, tenant, key).await;
        assert_eq!(r.status(), 500, "{tenant}/{key}");
        assert_eq!(
            r.headers()["content-type"],
            "application/problem+json",
            "{tenant}/{key}"
        );
        let body: Value = r.json().await.expect("problem");
        assert_eq!(body["code"], "decryption_failed", "{tenant}/{key}: {body}");
    }
    // Untouched data still reads; the node logged the failures without values.
    assert_eq!(
        c.get_value(2, "intact", "k").await.expect("present")["value"],
        "value-intact"
    );
    assert_eq!(
        c.get_value(2, "from", "k").await.expect("present")["value"],
        "value-from"
    );
    let log = c.log(2);
    assert!(log.contains("failed to decrypt"), "{log}");
    for secret in [
        "value-a",
        "value-b",
        "value-flip",
        "value-trunc",
        "value-to",
    ] {
        assert!(!log.contains(secret), "{secret} in the node log");
    }
    // A tampered key is still writable: a new write replaces it.
    c.put_ok(1, "flip", "k", "value-new").await;
    assert_eq!(
        c.get_value(3, "flip", "k").await.expect("present")["value"],
        "value-new"
    );
}
