//! The chaos run: a fresh cluster of real node processes, a KV workload of
//! concurrent clients recording every operation, and a nemesis injecting one fault
//! at a time from a seed; then the history is checked, per key, for
//! linearizability (which also catches lost acknowledged writes: every key ends
//! with a read).
//!
//! Faults: `kill` (SIGKILL a node, restart it later), `pause` (SIGSTOP, SIGCONT),
//! `partition` (isolate one node, or split a minority from the majority),
//! `restart-all` (SIGKILL every node, start them all). Each lasts a random
//! 0.5–5 s.
//!
//! Partitions are injected inside the nodes (`[debug] fault_injection`, `POST
//! /v1/debug/partition`): each node drops all peer traffic with the nodes on the
//! other side, in both directions, while clients can still reach every node (as
//! in a real partition, where some clients sit with the minority). Chosen over a
//! TCP proxy because every node dials one advertised `raft_addr` per peer, so a
//! proxy could not tell which peer a connection comes from; and over network
//! namespaces because they need root and per-node addresses that the test harness
//! (loopback ports) does not have.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;

use crate::linearizability::{check, Op, Operation, Value as Register};
use crate::{TestCluster, TOKEN};

/// What to run.
#[derive(Debug, Clone)]
pub struct ChaosConfig {
    pub seed: u64,
    pub duration: Duration,
    pub nodes: u64,
    pub clients: usize,
    pub faults: Vec<Fault>,
    /// Keys the clients share (few, so that operations contend).
    pub keys: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    Kill,
    Pause,
    Partition,
    RestartAll,
}

impl Fault {
    /// Parses `kill`, `pause` or `restart-all`.
    ///
    /// # Errors
    /// Any other name.
    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "kill" => Ok(Self::Kill),
            "pause" => Ok(Self::Pause),
            "partition" => Ok(Self::Partition),
            "restart-all" => Ok(Self::RestartAll),
            other => Err(format!(
                "unknown fault {other:?} (known: kill, pause, partition, restart-all)"
            )),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Kill => "kill",
            Self::Pause => "pause",
            Self::Partition => "partition",
            Self::RestartAll => "restart-all",
        }
    }
}

/// What a run found.
#[derive(Debug, Default)]
pub struct ChaosReport {
    pub faults: BTreeMap<&'static str, usize>,
    pub ok: usize,
    pub failed: usize,
    pub unknown: usize,
    /// One entry per key whose history is not linearizable, with the proof.
    pub violations: Vec<String>,
}

impl ChaosReport {
    /// The summary printed at the end of a run (its last lines are the contract:
    /// `faults: N`, `operations: N (ok N, failed N, unknown N)`, `violations: N`).
    #[must_use]
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for v in &self.violations {
            let _ = writeln!(out, "{v}");
        }
        let kinds: Vec<String> = self
            .faults
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let total: usize = self.faults.values().sum();
        let _ = writeln!(out, "faults by kind: {}", kinds.join(", "));
        let _ = writeln!(out, "faults: {total}");
        let _ = writeln!(
            out,
            "operations: {} (ok {}, failed {}, unknown {})",
            self.ok + self.failed + self.unknown,
            self.ok,
            self.failed,
            self.unknown
        );
        let _ = write!(out, "violations: {}", self.violations.len());
        out
    }
}

/// A small deterministic PRNG (xorshift64*), so a seed replays the same choices.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// One recorded operation, before it is turned into a checker operation.
struct Record {
    key: usize,
    op: Operation,
}

/// How one HTTP call ended.
enum Outcome {
    Ok(Value),
    /// Definitely not applied (refused before it was proposed, or a read).
    Failed,
    /// May or may not have been applied.
    Unknown,
    /// A compare-and-set refused by its guard.
    Mismatch,
}

fn classify(status: u16, body: &Value, is_write: bool) -> Outcome {
    match status {
        // Connection refused (see `Workload::call`): not sent.
        1 => Outcome::Failed,
        200 | 204 => Outcome::Ok(body.clone()),
        412 => Outcome::Mismatch,
        404 if !is_write => Outcome::Ok(Value::Null),
        503 if is_write => {
            // "no reachable leader" guarantees nothing was applied; anything else
            // (outcome unknown, a commit timeout) may have been.
            let detail = body["detail"].as_str().unwrap_or("");
            if detail.contains("no reachable leader") {
                Outcome::Failed
            } else {
                Outcome::Unknown
            }
        }
        _ if is_write => Outcome::Unknown,
        _ => Outcome::Failed,
    }
}

struct Workload {
    client: reqwest::Client,
    urls: Vec<String>,
    start: Instant,
    history: Mutex<Vec<Record>>,
    next_value: std::sync::atomic::AtomicU64,
}

const TENANT: &str = "chaos";

impl Workload {
    fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    fn record(&self, key: usize, client: usize, op: Op, invoke: u64, complete: Option<u64>) {
        self.history
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Record {
                key,
                op: Operation {
                    client,
                    op,
                    invoke,
                    complete,
                },
            });
    }

    /// The value and revision of an answered read or write.
    fn learn(body: &Value) -> Option<(Register, u64)> {
        let value: Register = body["value"].as_str()?.parse().ok()?;
        Some((value, body["revision"].as_u64()?))
    }

    async fn call(
        &self,
        node: usize,
        method: reqwest::Method,
        key: usize,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = format!("{}/v1/kv/k{key}", self.urls[node % self.urls.len()]);
        let mut req = self
            .client
            .request(method, url)
            .bearer_auth(TOKEN)
            .header("x-tenant", TENANT);
        if let Some(b) = body {
            req = req.json(&b);
        }
        match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let body = resp.json().await.unwrap_or(Value::Null);
                (status, body)
            }
            // A refused connection never carried the request; a timeout or a
            // broken connection may have.
            Err(e) if e.is_connect() => (1, Value::Null),
            Err(_) => (0, Value::Null),
        }
    }

    /// One client's loop until `deadline`. Each client remembers the last revision
    /// it saw per key, for its compare-and-set operations.
    async fn client(
        &self,
        id: usize,
        seed: u64,
        keys: usize,
        deadline: Instant,
        stats: &Mutex<[usize; 3]>,
    ) {
        let mut rng = Rng::new(seed);
        let mut last_seen: BTreeMap<usize, (Option<Register>, u64)> = BTreeMap::new();
        let backoff = || tokio::time::sleep(Duration::from_millis(20));
        while Instant::now() < deadline {
            let key = usize::try_from(rng.below(keys as u64)).unwrap_or(0);
            let node = usize::try_from(rng.next_u64() % 64).unwrap_or(0);
            let invoke = self.now();
            let choice = rng.below(10);
            let tally = |k: usize| stats.lock().unwrap_or_else(PoisonError::into_inner)[k] += 1;
            if choice < 4 {
                let (status, body) = self.call(node, reqwest::Method::GET, key, None).await;
                let complete = self.now();
                match classify(status, &body, false) {
                    Outcome::Ok(Value::Null) => {
                        self.record(key, id, Op::Read { observed: None }, invoke, Some(complete));
                        last_seen.insert(key, (None, 0));
                        tally(0);
                    }
                    Outcome::Ok(b) => match Self::learn(&b) {
                        Some((v, rev)) => {
                            self.record(
                                key,
                                id,
                                Op::Read { observed: Some(v) },
                                invoke,
                                Some(complete),
                            );
                            last_seen.insert(key, (Some(v), rev));
                            tally(0);
                        }
                        None => tally(1),
                    },
                    _ => {
                        tally(1);
                        backoff().await;
                    }
                }
                continue;
            }
            let value = self
                .next_value
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let cas = choice >= 8 && last_seen.contains_key(&key);
            let (expected_value, expected_revision) = if cas {
                last_seen.get(&key).copied().unwrap_or((None, 0))
            } else {
                (None, 0)
            };
            let body = if cas {
                json!({"value": value.to_string(), "expected_revision": expected_revision})
            } else {
                json!({"value": value.to_string()})
            };
            let (status, answer) = self.call(node, reqwest::Method::PUT, key, Some(body)).await;
            let complete = self.now();
            let (succeeded, complete, counted) = match classify(status, &answer, true) {
                Outcome::Ok(b) => {
                    if let Some((v, rev)) = Self::learn(&b) {
                        last_seen.insert(key, (Some(v), rev));
                    }
                    (Some(true), Some(complete), 0)
                }
                Outcome::Mismatch => (Some(false), Some(complete), 0),
                Outcome::Failed => {
                    tally(1);
                    backoff().await;
                    continue;
                }
                Outcome::Unknown => (None, None, 2),
            };
            tally(counted);
            let op = if cas {
                Op::Cas {
                    expected: expected_value,
                    new: value,
                    succeeded,
                }
            } else {
                Op::Write(value)
            };
            self.record(key, id, op, invoke, complete);
        }
    }
}

/// Sets every node's blocked peers: each side of `minority` loses the other.
/// An empty `minority` heals. Retries while a node is still starting.
async fn partition(client: &reqwest::Client, urls: &BTreeMap<u64, String>, minority: &[u64]) {
    for (id, url) in urls {
        let blocked: Vec<u64> = if minority.is_empty() {
            Vec::new()
        } else if minority.contains(id) {
            urls.keys()
                .filter(|n| !minority.contains(n))
                .copied()
                .collect()
        } else {
            minority.to_vec()
        };
        for _ in 0..50 {
            let sent = client
                .post(format!("{url}/v1/debug/partition"))
                .bearer_auth(TOKEN)
                .json(&json!({ "blocked": blocked }))
                .send()
                .await;
            if sent.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Runs the nemesis until `deadline`: one fault at a time, chosen from the seed.
async fn nemesis(
    cluster: &Mutex<TestCluster>,
    client: &reqwest::Client,
    urls: &BTreeMap<u64, String>,
    cfg: &ChaosConfig,
    deadline: Instant,
    log: &Mutex<Vec<String>>,
    counts: &Mutex<BTreeMap<&'static str, usize>>,
) {
    let mut rng = Rng::new(cfg.seed ^ 0xfa17);
    let ids: Vec<u64> = (1..=cfg.nodes).collect();
    while Instant::now() + Duration::from_secs(6) < deadline {
        tokio::time::sleep(Duration::from_millis(500 + rng.below(1500))).await;
        let Some(&fault) = cfg
            .faults
            .get(usize::try_from(rng.below(cfg.faults.len() as u64)).unwrap_or(0))
        else {
            return;
        };
        let node = ids[usize::try_from(rng.below(ids.len() as u64)).unwrap_or(0)];
        let hold = Duration::from_millis(500 + rng.below(4500));
        let note = |s: String| log.lock().unwrap_or_else(PoisonError::into_inner).push(s);
        *counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(fault.name())
            .or_default() += 1;
        match fault {
            Fault::Kill => {
                note(format!("kill node {node} for {hold:?}"));
                lock(cluster).kill(node);
                tokio::time::sleep(hold).await;
                lock(cluster).start(node);
            }
            Fault::Pause => {
                note(format!("pause node {node} for {hold:?}"));
                lock(cluster).signal(node, "STOP");
                tokio::time::sleep(hold).await;
                lock(cluster).signal(node, "CONT");
            }
            Fault::Partition => {
                // Isolate one node, or (5 nodes) sometimes split off two.
                let size = if ids.len() >= 5 && rng.below(2) == 0 {
                    2
                } else {
                    1
                };
                let mut minority = vec![node];
                while minority.len() < size {
                    let other = ids[usize::try_from(rng.below(ids.len() as u64)).unwrap_or(0)];
                    if !minority.contains(&other) {
                        minority.push(other);
                    }
                }
                note(format!("partition {minority:?} from the rest for {hold:?}"));
                partition(client, urls, &minority).await;
                tokio::time::sleep(hold).await;
                partition(client, urls, &[]).await;
            }
            Fault::RestartAll => {
                note(format!("kill and restart every node after {hold:?}"));
                for id in &ids {
                    lock(cluster).kill(*id);
                }
                tokio::time::sleep(hold.min(Duration::from_secs(2))).await;
                lock(cluster).start_all();
            }
        }
        // Let the cluster settle a little before the next fault.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn lock(c: &Mutex<TestCluster>) -> std::sync::MutexGuard<'_, TestCluster> {
    c.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs one chaos test and checks its history.
///
/// # Panics
/// If the cluster cannot be started (that is not a finding, it is a broken setup).
pub async fn run(cfg: &ChaosConfig) -> ChaosReport {
    let mut cluster = TestCluster::new(cfg.nodes, "[debug]\nfault_injection = true\n");
    cluster.boot().await;
    if let Some(&first) = cluster.ids().first() {
        cluster.create_tenant(first, TENANT).await;
    }
    let node_urls: BTreeMap<u64, String> = cluster
        .ids()
        .iter()
        .map(|id| (*id, cluster.url(*id, "")))
        .collect();
    let urls: Vec<String> = cluster
        .ids()
        .iter()
        .map(|id| cluster.url(*id, ""))
        .collect();
    let workload = Arc::new(Workload {
        client: cluster
            .client_builder()
            // Longer than a node's own 5 s request deadline, so most requests end
            // with the node's answer rather than an unknown outcome.
            .timeout(Duration::from_secs(7))
            .connect_timeout(Duration::from_millis(500))
            .build()
            .expect("http client"),
        urls,
        start: Instant::now(),
        history: Mutex::new(Vec::new()),
        next_value: std::sync::atomic::AtomicU64::new(1),
    });
    let cluster = Arc::new(Mutex::new(cluster));
    let deadline = Instant::now() + cfg.duration;
    let stats = Arc::new(Mutex::new([0usize; 3]));
    let mut tasks = Vec::new();
    for id in 0..cfg.clients {
        let (w, stats) = (Arc::clone(&workload), Arc::clone(&stats));
        let seed = cfg.seed.wrapping_add(id as u64 + 1);
        let keys = cfg.keys;
        tasks.push(tokio::spawn(async move {
            w.client(id, seed, keys, deadline, &stats).await;
        }));
    }
    let log = Mutex::new(Vec::new());
    let counts = Mutex::new(BTreeMap::new());
    nemesis(
        &cluster,
        &workload.client,
        &node_urls,
        cfg,
        deadline,
        &log,
        &counts,
    )
    .await;
    for t in tasks {
        let _ = t.await;
    }
    eprintln!("chaos: workload finished; healing the cluster");
    // Heal: no partition, every node running and ready, then read every key once more.
    partition(&workload.client, &node_urls, &[]).await;
    {
        let mut c = lock(&cluster);
        for id in c.ids() {
            if !c.is_running(id) {
                c.start(id);
            }
            c.signal(id, "CONT");
        }
    }
    let ready_urls: Vec<String> = {
        let c = lock(&cluster);
        c.ids().iter().map(|id| c.url(*id, "/readyz")).collect()
    };
    for url in ready_urls {
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until {
            if workload
                .client
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let mut final_failed = 0;
    for key in 0..cfg.keys {
        let invoke = workload.now();
        let (status, body) = workload.call(key, reqwest::Method::GET, key, None).await;
        let complete = workload.now();
        match classify(status, &body, false) {
            Outcome::Ok(Value::Null) => {
                workload.record(
                    key,
                    usize::MAX,
                    Op::Read { observed: None },
                    invoke,
                    Some(complete),
                );
            }
            Outcome::Ok(b) => {
                if let Some((v, _)) = Workload::learn(&b) {
                    workload.record(
                        key,
                        usize::MAX,
                        Op::Read { observed: Some(v) },
                        invoke,
                        Some(complete),
                    );
                }
            }
            _ => final_failed += 1,
        }
    }
    let [ok, failed, unknown] = *stats.lock().unwrap_or_else(PoisonError::into_inner);
    let mut report = ChaosReport {
        faults: counts.into_inner().unwrap_or_default(),
        ok,
        failed: failed + final_failed,
        unknown,
        violations: Vec::new(),
    };
    if final_failed > 0 {
        report.violations.push(format!(
            "{final_failed} key(s) could not be read after healing the cluster"
        ));
    }
    eprintln!("chaos: checking the history");
    let history = std::mem::take(
        &mut *workload
            .history
            .lock()
            .unwrap_or_else(PoisonError::into_inner),
    );
    let mut by_key: BTreeMap<usize, Vec<Operation>> = BTreeMap::new();
    for r in history {
        by_key.entry(r.key).or_default().push(r.op);
    }
    for (key, ops) in &by_key {
        // Unknown outcomes are what make the search expensive: say how many each
        // key has before checking it.
        let unknown = |f: fn(&Op) -> bool| {
            ops.iter()
                .filter(|o| o.complete.is_none() && f(&o.op))
                .count()
        };
        eprintln!(
            "chaos: key k{key}: {} operations; unknown outcome: {} writes, {} deletes, {} compare-and-sets",
            ops.len(),
            unknown(|o| matches!(o, Op::Write(_))),
            unknown(|o| matches!(o, Op::Delete)),
            unknown(|o| matches!(o, Op::Cas { .. })),
        );
        if let Some(dir) = std::env::var_os("CAIRN_CHAOS_HISTORY") {
            // For offline analysis: one operation a line, as reports print them.
            let text: String = ops.iter().map(|o| format!("{o}\n")).collect();
            let path = std::path::Path::new(&dir).join(format!("k{key}.txt"));
            if let Err(e) = std::fs::write(&path, text) {
                eprintln!("chaos: writing {}: {e}", path.display());
            }
        }
        if let Err(v) = check(ops) {
            report.violations.push(format!(
                "key k{key}: {v}\nfaults injected:\n  {}",
                log.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .join("\n  ")
            ));
        }
    }
    let mut c = lock(&cluster);
    for id in c.ids() {
        c.kill(id);
    }
    report
}
