//! Leader failover: a killed leader's group keeps serving through the
//! survivors, and the killed node catches up by snapshot after log compaction;
//! refresh chains run through a SIGKILL of the data group's leader without a
//! lost rotation or a revoked session.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cairn_tests::api::{bearer, user_request, Api, Auth, CreateTenantRequest, HttpApi};
use cairn_tests::jwt::generation;
use cairn_tests::TestCluster;
use serde_json::{json, Value};
use tokio::time::Instant;

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

// ---------------------------------------------------------------------------
// Refresh chains through a SIGKILL of the data group's leader.
// ---------------------------------------------------------------------------

#[derive(Debug, Default)]
struct ChainReport {
    chain: usize,
    /// The last acknowledged refresh token and its access token.
    token: String,
    access: String,
    rotations: u64,
    replays: u64,
    unavailable: u64,
    /// Connection refused (nothing was sent: the node was down).
    refused: u64,
    /// Sent, and no answer came back (the outcome is unknown).
    lost: u64,
    /// 200s that came after an attempt whose outcome was unknown.
    recovered: u64,
    violations: Vec<String>,
}

/// One client refreshing its own chain in a loop through every node until `stop`:
/// on 200 it adopts the new token (and, every 4th rotation, replays the previous
/// token once, as a client whose answer was lost would); on 503, a timeout or a
/// connection error it retries the same token; anything else is a violation.
async fn refresh_chain(
    chain: usize,
    client: reqwest::Client,
    urls: Vec<String>,
    key: String,
    first: String,
    stop: Arc<AtomicBool>,
) -> ChainReport {
    let mut rep = ChainReport {
        chain,
        token: first.clone(),
        ..ChainReport::default()
    };
    // Presented token -> the (refresh, access) pair answered for it.
    let mut answered: HashMap<String, (String, String)> = HashMap::new();
    let mut presented = first;
    let mut unknown = false;
    let mut i = chain;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if stop.load(Ordering::SeqCst) && !unknown && presented == rep.token {
            break;
        }
        if Instant::now() > deadline {
            rep.violations.push(format!(
                "no acknowledged answer for generation {} before the deadline",
                generation(&presented)
            ));
            break;
        }
        let url = &urls[i % urls.len()];
        i += 1;
        let sent = client
            .post(url)
            .bearer_auth(&key)
            .json(&json!({ "refresh_token": presented }))
            .send()
            .await;
        let answer = match sent {
            Ok(r) => {
                let status = r.status().as_u16();
                r.json::<Value>().await.map(|b| (status, b))
            }
            Err(e) => Err(e),
        };
        let (status, body) = match answer {
            Ok(x) => x,
            Err(e) => {
                if e.is_connect() {
                    rep.refused += 1;
                } else {
                    rep.lost += 1;
                    unknown = true;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        match status {
            200 => {
                let next = s(&body, "refresh_token");
                let access = s(&body, "access_token");
                if unknown {
                    rep.recovered += 1;
                }
                unknown = false;
                if let Some(earlier) = answered.get(&presented) {
                    if *earlier != (next.clone(), access.clone()) {
                        rep.violations.push(format!(
                            "generation {} answered two different successors",
                            generation(&presented)
                        ));
                        break;
                    }
                }
                if generation(&next) != generation(&presented) + 1 {
                    rep.violations.push(format!(
                        "generation {} answered generation {}",
                        generation(&presented),
                        generation(&next)
                    ));
                    break;
                }
                answered.insert(presented.clone(), (next.clone(), access.clone()));
                if presented == rep.token {
                    rep.rotations += 1;
                    let previous = std::mem::replace(&mut rep.token, next);
                    rep.access = access;
                    presented = if rep.rotations.is_multiple_of(4) {
                        previous
                    } else {
                        rep.token.clone()
                    };
                } else {
                    // The replay of the previous token answered the same pair.
                    assert_eq!(next, rep.token, "checked above");
                    rep.replays += 1;
                    presented = rep.token.clone();
                }
            }
            503 => {
                rep.unavailable += 1;
                unknown = true;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => {
                rep.violations.push(format!(
                    "presenting generation {} (after {} rotations, last outcome {}): {other} {body}",
                    generation(&presented),
                    rep.rotations,
                    if unknown { "unknown" } else { "known" },
                ));
                break;
            }
        }
    }
    rep
}

/// The string `field` of an answer.
fn s(v: &Value, field: &str) -> String {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("no string {field:?} in {v}"))
        .to_owned()
}

/// Node 1, 2, 3, 1, … for `i` = 0, 1, 2, 3, …
fn node(i: usize) -> u64 {
    u64::try_from(i % 3).expect("small") + 1
}

const PASSWORD: &str = "correct horse battery";

/// Refresh chains through a SIGKILL of the data group's leader: every chain
/// makes progress, no acknowledged rotation is lost, no session is revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_chains_survive_a_leader_kill() {
    const CHAINS: usize = 6;
    let mut c = TestCluster::new(3, "");
    c.boot().await;
    let api: HttpApi = c.http_api();
    let t = api
        .create_tenant(
            1,
            Auth::OPERATOR,
            CreateTenantRequest {
                name: "storm".to_owned(),
                ..CreateTenantRequest::default()
            },
        )
        .await
        .expect("create tenant");
    assert_eq!((t.name.as_str(), t.region.as_str()), ("storm", "local"));
    let key = t.api_key.clone();
    let mut sessions = Vec::new();
    for i in 0..CHAINS {
        let email = format!("storm{}@example.com", i % 3);
        if i < 3 {
            api.create_user(node(i), bearer(&key), user_request(&email, Some(PASSWORD)))
                .await
                .expect("create user");
        }
        let s = api
            .sign_in(node(i + 1), bearer(&key), &email, PASSWORD)
            .await
            .expect("sign in");
        assert_eq!(s.token_type, "Bearer");
        sessions.push(s);
    }
    // Longer than any server-side deadline, so no request outlives its client.
    let client = c
        .client_builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let urls: Vec<String> = c
        .ids()
        .into_iter()
        .map(|id| c.url(id, "/v1/sessions/refresh"))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let tasks: Vec<_> = sessions
        .iter()
        .enumerate()
        .map(|(i, session)| {
            tokio::spawn(refresh_chain(
                i,
                client.clone(),
                urls.clone(),
                key.clone(),
                session.refresh_token.clone(),
                Arc::clone(&stop),
            ))
        })
        .collect();

    tokio::time::sleep(Duration::from_secs(3)).await;
    let leader = c.leader(1, "local").await;
    println!("killing node {leader}, the leader of local, mid-storm");
    c.kill(leader);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let survivor = c
        .ids()
        .into_iter()
        .find(|id| *id != leader)
        .expect("a survivor");
    let new_leader = c.leader(survivor, "local").await;
    println!("new leader of local: node {new_leader}; restarting node {leader}");
    c.start(leader);
    c.wait_ready(leader).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::SeqCst);

    let mut reports = Vec::new();
    for task in tasks {
        reports.push(task.await.expect("chain task"));
    }
    println!("storm ran {:?}", started.elapsed());
    for r in &reports {
        println!(
            "chain {}: {} rotations, {} replays, {} answered 503, {} refused connections, \
             {} lost answers, {} successes after an unknown outcome",
            r.chain, r.rotations, r.replays, r.unavailable, r.refused, r.lost, r.recovered
        );
    }
    let violations: Vec<String> = reports
        .iter()
        .flat_map(|r| {
            r.violations
                .iter()
                .map(move |v| format!("chain {}: {v}", r.chain))
        })
        .collect();
    assert!(violations.is_empty(), "violations: {violations:#?}");
    assert!(
        reports.iter().all(|r| r.rotations >= 5),
        "every chain made progress"
    );

    // No acknowledged rotation was lost and no session was revoked: every chain's
    // last acknowledged token is current and refreshes, on every node.
    for (r, session) in reports.iter().zip(&sessions) {
        assert_eq!(
            generation(&r.token),
            r.rotations,
            "chain {}: one generation per acknowledged rotation",
            r.chain
        );
        for via in c.ids() {
            let v = api
                .introspect(via, bearer(&key), &r.token, None)
                .await
                .expect("introspect");
            assert!(
                v.active,
                "chain {}: last token on node {via}: {v:?}",
                r.chain
            );
            assert_eq!(v.sid.as_deref(), Some(session.session_id.as_str()));
            let a = api
                .introspect(via, bearer(&key), &r.access, None)
                .await
                .expect("introspect");
            assert!(a.active);
        }
        let next = api
            .refresh(node(r.chain), bearer(&key), &r.token)
            .await
            .expect("refresh");
        assert_eq!(generation(&next.refresh_token), r.rotations + 1);
        let listed = api
            .list_sessions(node(r.chain + 1), bearer(&key), &session.user_id)
            .await
            .expect("list sessions");
        assert!(
            listed.iter().any(|s| s.id == session.session_id),
            "chain {}: session still active",
            r.chain
        );
    }
}
