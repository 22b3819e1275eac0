//! The peer port under attack, from the test over raw TLS: a client without a
//! certificate, a certificate of another CA, an expired certificate signed by
//! the cluster's own CA, and node 2's valid certificate sending `from = 3`.
//! Each carries one of today's concrete attacks — a `ForwardBatch` that mints
//! an API key (`AddApiKey`), a `Vote` that would depose `meta`'s leader, an
//! `Admit` before `cairn init` — and each is refused, logged at warn by the
//! node, and applies nothing.
//!
//! Every refusal has a positive control: the same payload over a member's own
//! identity is applied (the API key authenticates, the leader steps down, the
//! node is admitted), so a refusal cannot be a decode error in disguise; and a
//! certificate the test signs with the CA's key exactly as it signed the
//! expired one, but valid today, is accepted, so the expired one is refused
//! for its dates alone.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use cairn_crypto::token::ApiKey;
use cairn_raft::RaftNodeError;
use cairn_storage::sm::api_keys::AddApiKey;
use cairn_storage::sm::{Command, Outcome};
use cairn_storage::{codec, ApiKeyRecord, DirectoryCommand, DirectoryOutcome};
use cairn_tests::peer::{cluster_ca, rogue_ca, Identity, RawPeer, Rpc, Validity};
use cairn_tests::{TestCluster, TOKEN};
use openraft::error::RaftError;
use openraft::raft::{VoteRequest, VoteResponse};
use openraft::{CommittedLeaderId, LogId, Vote};
use tokio::time::Instant;

/// The `meta` group's id on the peer wire.
const META: u64 = 0;

/// The cluster name every test cluster runs under.
const CLUSTER: &str = "test";

/// Where forged certificates say their node is (the nodes' IP SAN).
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    codec::encode("forged peer request", value).expect("encode")
}

fn decode<T: serde::de::DeserializeOwned>(payload: &[u8]) -> T {
    codec::decode("peer reply", payload).expect("a well-formed reply")
}

fn raft_addr(c: &TestCluster, id: u64) -> String {
    c.nodes()
        .iter()
        .find(|n| n.id == id)
        .expect("node id")
        .raft
        .clone()
}

/// Waits until node `id` has logged, past byte `mark` of its log, a warn line
/// holding every one of `needles`.
async fn wait_for_warning(c: &TestCluster, id: u64, mark: usize, needles: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = c.log(id);
        let tail = log.get(mark..).unwrap_or_default();
        if tail
            .lines()
            .any(|l| l.contains("WARN") && needles.iter().all(|n| l.contains(n)))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node {id} logged no warning with {needles:?}; its log since the attack:\n{tail}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The answer to a KV write with `api_key` through node `via`: 401 for a key the
/// cluster does not know.
async fn kv_put_status(c: &TestCluster, via: u64, api_key: &str) -> u16 {
    c.client()
        .put(c.url(via, "/v1/kv/peer-attack-probe"))
        .bearer_auth(api_key)
        .json(&serde_json::json!({ "value": "v" }))
        .send()
        .await
        .expect("kv put")
        .status()
        .as_u16()
}

/// Node `id`'s view of `meta`: (leader, term).
async fn meta_view(c: &TestCluster, id: u64) -> (Option<u64>, u64) {
    let g = c.group_status(id, "meta").await;
    (g["leader"].as_u64(), g["term"].as_u64().expect("term"))
}

/// Asserts that an attack's call failed (`Err`) and, when the connection got
/// as far as a message, that it was refused for its identity.
#[track_caller]
/// The identities the peer port refuses in the handshake, whatever the message
/// (each calling itself node 2): what it is, the certificate (or none), and the
/// word of the refusal the node logs.
fn strangers(dir: &std::path::Path) -> [(&'static str, Option<Identity>, &'static str); 3] {
    [
        ("no certificate", None, "peer sent no certificates"),
        (
            "a certificate of another CA",
            Some(Identity::forged(
                &rogue_ca(CLUSTER),
                CLUSTER,
                2,
                LOOPBACK,
                Validity::Current,
            )),
            "invalid peer certificate",
        ),
        (
            "an expired certificate of the cluster CA",
            Some(Identity::forged(
                &cluster_ca(dir, CLUSTER),
                CLUSTER,
                2,
                LOOPBACK,
                Validity::Expired,
            )),
            "certificate expired",
        ),
    ]
}

fn refused(what: &str, r: &Result<Vec<u8>, tonic::Status>, identity_refusal: bool) {
    let Err(status) = r else {
        panic!("{what}: the peer port answered a forged call");
    };
    if identity_refusal {
        assert_eq!(
            status.code(),
            tonic::Code::PermissionDenied,
            "{what}: {status:?}"
        );
        assert!(
            status.message().contains("certificate names"),
            "{what}: {status:?}"
        );
    } else {
        // Refused in the TLS handshake: never an answer from the peer service.
        assert!(
            !matches!(
                status.code(),
                tonic::Code::InvalidArgument | tonic::Code::PermissionDenied
            ),
            "{what}: {status:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_forward_batch_and_vote_are_refused_logged_and_never_applied() {
    let mut c = TestCluster::new(3, "");
    c.boot().await;
    let dir = c.dir.path().to_path_buf();
    let ca = c.ca_pem().expect("a TLS cluster").to_vec();

    // The API key a forged AddApiKey would mint for tenant acme: all scopes
    // the KV routes need, a hash of the attacker's choosing.
    let created: serde_json::Value = c
        .client()
        .post(c.url(1, "/v1/admin/tenants"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({ "name": "acme" }))
        .send()
        .await
        .expect("create tenant")
        .json()
        .await
        .expect("tenant json");
    let tenant_id = created["id"].as_str().expect("tenant id").to_owned();
    let key = ApiKey::generate();
    let key_text = key.encode().to_string();
    let mint = encode(&vec![Command::Directory(DirectoryCommand::AddApiKey(
        AddApiKey(ApiKeyRecord {
            id: key.id().to_owned(),
            tenant_id,
            hash: key.hash().to_vec(),
            scopes: vec!["read".to_owned(), "write".to_owned()],
            created_at: 1,
        }),
    ))]);
    assert_eq!(kv_put_status(&c, 1, &key_text).await, 401);

    // The Vote would depose meta's leader: a term far ahead, a log longer than
    // any, from a candidate that is not the leader (`voter`), sent by another
    // node (`sender`: node 2 unless it is the voter).
    let leader = c.leader(1, "meta").await;
    let (_, term) = meta_view(&c, leader).await;
    let last_index = c.group_status(leader, "meta").await["last_log_index"]
        .as_u64()
        .expect("last_log_index");
    let voter = if leader == 3 { 2 } else { 3 };
    let sender = if voter == 2 { 3 } else { 2 };
    let forged_term = term + 1000;
    let depose = encode(&VoteRequest::new(
        Vote::new(forged_term, voter),
        Some(LogId::new(
            CommittedLeaderId::new(forged_term, voter),
            last_index + 1_000_000,
        )),
    ));

    // 1-3: refused in the handshake, whatever the message.
    for (what, identity, reason) in strangers(&dir) {
        for (target, rpc, from, payload) in [
            (1, Rpc::ForwardBatch, 2, &mint),
            (leader, Rpc::Vote, voter, &depose),
        ] {
            let mark = c.log(target).len();
            let r = RawPeer::connect(&raft_addr(&c, target), &ca, identity.as_ref())
                .call(rpc, META, from, payload.clone())
                .await;
            refused(&format!("{what}: {rpc:?} to node {target}"), &r, false);
            wait_for_warning(&c, target, mark, &["peer connection refused", reason]).await;
        }
    }

    // 4: a member's valid certificate, another member's name in `from`.
    let mark = c.log(1).len();
    let r = RawPeer::connect(&raft_addr(&c, 1), &ca, Some(&Identity::member(&dir, 2)))
        .call(Rpc::ForwardBatch, META, 3, mint.clone())
        .await;
    refused("node 2's certificate, from = 3: ForwardBatch", &r, true);
    wait_for_warning(
        &c,
        1,
        mark,
        &["peer message refused", "ForwardBatch", "claimed_from=3"],
    )
    .await;
    let mark = c.log(leader).len();
    let r = RawPeer::connect(
        &raft_addr(&c, leader),
        &ca,
        Some(&Identity::member(&dir, sender)),
    )
    .call(Rpc::Vote, META, voter, depose.clone())
    .await;
    refused(
        &format!("node {sender}'s certificate, from = {voter}: Vote"),
        &r,
        true,
    );
    wait_for_warning(
        &c,
        leader,
        mark,
        &[
            "peer message refused",
            "Vote",
            &format!("claimed_from={voter}"),
        ],
    )
    .await;

    // Nothing applied: the key authenticates nowhere, and every node still
    // sees the same leader in the same term.
    for id in c.ids() {
        assert_eq!(kv_put_status(&c, id, &key_text).await, 401, "node {id}");
        assert_eq!(
            meta_view(&c, id).await,
            (Some(leader), term),
            "node {id}'s view of meta after the forged votes"
        );
    }

    // Controls. A certificate signed like the expired one, valid today, is
    // accepted: the expired one was refused for its dates.
    let fresh = Identity::forged(
        &cluster_ca(&dir, CLUSTER),
        CLUSTER,
        2,
        LOOPBACK,
        Validity::Current,
    );
    let reply = RawPeer::connect(&raft_addr(&c, 1), &ca, Some(&fresh))
        .call(Rpc::GroupState, META, 2, encode(&()))
        .await
        .expect("a fresh certificate of the cluster CA is accepted");
    assert_eq!(decode::<Result<bool, String>>(&reply), Ok(true));

    // The same ForwardBatch over node 2's own name mints the key (had any
    // forged one been applied, this would be an id collision).
    let reply = RawPeer::connect(&raft_addr(&c, 1), &ca, Some(&Identity::member(&dir, 2)))
        .call(Rpc::ForwardBatch, META, 2, mint)
        .await
        .expect("node 2's ForwardBatch is answered");
    assert_eq!(
        decode::<Vec<Result<Outcome, RaftNodeError>>>(&reply),
        vec![Ok(Outcome::Directory(DirectoryOutcome::ApiKeyAdded))]
    );
    let status = kv_put_status(&c, 3, &key_text).await;
    assert!(
        (200..300).contains(&status),
        "the minted key writes: {status}"
    );

    // The same Vote over the voter's own name deposes the leader. (The leader
    // grants it once its own vote is older than its lease; retried until then.)
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = RawPeer::connect(
            &raft_addr(&c, leader),
            &ca,
            Some(&Identity::member(&dir, voter)),
        )
        .call(Rpc::Vote, META, voter, depose.clone())
        .await
        .expect("the voter's Vote is answered");
        let answer = decode::<Result<VoteResponse<u64>, RaftError<u64>>>(&reply)
            .expect("the vote is decided");
        if answer.vote_granted {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node {leader} never granted the vote: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, after) = meta_view(&c, leader).await;
    assert!(
        after >= forged_term,
        "node {leader}'s term after the granted vote: {after}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admit_before_init_is_refused_and_init_still_works() {
    let mut c = TestCluster::new(3, "");
    c.start_all();
    let dir = c.dir.path().to_path_buf();
    let ca = c.ca_pem().expect("a TLS cluster").to_vec();
    for id in c.ids() {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !c
            .client()
            .get(c.url(id, "/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(
                Instant::now() < deadline,
                "node {id} not up:\n{}",
                c.log(id)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    let admission = "peer-attack-admission".to_owned();
    let admit = encode(&admission);
    let mut attacks: Vec<(&str, Option<Identity>, u64, Vec<&str>)> = strangers(&dir)
        .into_iter()
        .map(|(what, identity, reason)| {
            (what, identity, 2, vec!["peer connection refused", reason])
        })
        .collect();
    attacks.push((
        "node 2's certificate, from = 3",
        Some(Identity::member(&dir, 2)),
        3,
        vec!["peer message refused", "Admit", "claimed_from=3"],
    ));
    for (what, identity, from, warning) in &attacks {
        let mark = c.log(1).len();
        let r = RawPeer::connect(&raft_addr(&c, 1), &ca, identity.as_ref())
            .call(Rpc::Admit, META, *from, admit.clone())
            .await;
        refused(
            &format!("{what}: Admit"),
            &r,
            identity.is_some() && *from == 3,
        );
        wait_for_warning(&c, 1, mark, warning).await;
    }
    for id in c.ids() {
        assert_eq!(
            c.status(id).await["admitted"],
            false,
            "node {id} admitted by a forged Admit"
        );
    }

    // Control: the same Admit over node 2's own name admits node 1 (as `cairn
    // init` would: a retried init then reuses this admission for every node).
    let reply = RawPeer::connect(&raft_addr(&c, 1), &ca, Some(&Identity::member(&dir, 2)))
        .call(Rpc::Admit, META, 2, admit)
        .await
        .expect("node 2's Admit is answered");
    assert_eq!(decode::<Result<(), String>>(&reply), Ok(()));
    assert_eq!(c.status(1).await["admitted"], true);

    // Init works as ever, and the cluster serves.
    c.init_ready().await;
    for id in c.ids() {
        assert_eq!(c.status(id).await["admitted"], true, "node {id}");
    }
    c.put_ok(2, "t", "k", "v").await;
    assert_eq!(
        c.get_value(3, "t", "k").await.expect("present")["value"],
        "v"
    );

    // Every node was admitted under the control's admission (init found it on
    // node 1 and reused it): another one is refused, naming it.
    let reply = RawPeer::connect(&raft_addr(&c, 3), &ca, Some(&Identity::member(&dir, 2)))
        .call(Rpc::Admit, META, 2, encode(&"another-admission".to_owned()))
        .await
        .expect("node 2's Admit is answered");
    let answer = decode::<Result<(), String>>(&reply);
    assert!(
        answer.as_ref().is_err_and(|e| e.contains(&admission)),
        "{answer:?}"
    );
}
