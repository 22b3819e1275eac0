//! `cairn bench`: a closed-loop load driver for the KV and auth APIs. Spreads
//! requests over every node, counts only successful requests as throughput, and
//! reports latency percentiles over the measured window (after warm-up).
//!
//! The load runs over plain keep-alive HTTP/1.1 connections, one per worker and
//! node, spoken directly over the socket ([`conn`]): the driver shares the
//! machine with the nodes it measures, so it should cost them as little CPU as it
//! can. Setup (tenant, preloaded keys, users, sign-ins) goes through `reqwest`.
//!
//! The auth workloads set themselves up through the API: a tenant (its API key),
//! users with passwords; `refresh` gives every worker its own session and each
//! worker then rotates its own refresh token chain (a failed rotation is retried
//! with the same token, which the server answers idempotently).
//!
//! `argon2` needs no cluster: the raw Argon2id verification rate of this machine
//! on every core, with the parameters sign-in uses, which the `signin`
//! throughput is measured against. `signin-rejected` is the abuse case: wrong
//! passwords for one email, refused by its rate limit once its burst is spent;
//! there a 429 is the success counted.

mod conn;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use tokio::time::Instant;

use conn::Conn;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// PUT distinct keys.
    KvPut,
    /// Linearizable GET of keys written before the run.
    KvGet,
    /// 80 % linearizable GETs, 20 % PUTs, over the same preloaded keys.
    KvMixed,
    /// Password sign-ins (Argon2id verify + a session write), over `--users` users.
    Signin,
    /// Refresh token rotations: each worker rotates its own session's chain.
    Refresh,
    /// Wrong-password sign-ins for one email: 429s once its bucket is spent
    /// (counted as the successes; warm-up spends the burst).
    SigninRejected,
    /// Raw Argon2id verifications on every core of this machine (no cluster;
    /// `--concurrency` is ignored): the ceiling for `signin`.
    Argon2,
}

#[derive(clap::Args)]
pub struct Args {
    /// The cluster's config (every workload but `argon2`).
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "kv-put")]
    workload: Workload,
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    #[arg(long, default_value_t = 10)]
    duration_secs: u64,
    #[arg(long, default_value_t = 2)]
    warmup_secs: u64,
    #[arg(long, default_value_t = 96)]
    value_size: usize,
    #[arg(long, default_value = "bench")]
    tenant: String,
    /// Send requests only to these node ids (comma-separated; default: every node),
    /// e.g. to measure requests relayed from outside a tenant's region.
    #[arg(long, value_delimiter = ',')]
    nodes: Vec<u64>,
    /// Users the `signin` workload signs in as (created before the run).
    #[arg(long, default_value_t = 64)]
    users: usize,
    /// Also write the figures as JSON to this file (`-`: standard output).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Skip the setup (users, preloaded keys): an earlier run made them.
    #[arg(long)]
    no_setup: bool,
    /// The nodes' process ids (on this machine): their CPU time over the
    /// measured window is reported per successful request.
    #[arg(long, value_delimiter = ',')]
    cpu_pids: Vec<u32>,
}

/// The kernel's unit for process times in `/proc` (`USER_HZ`, fixed at 100).
const USER_HZ: u64 = 100;

/// The CPU time (user and system, in `USER_HZ` ticks) the processes `pids`
/// have used; `None` if one of them cannot be read.
fn cpu_ticks(pids: &[u32]) -> Option<u64> {
    pids.iter().try_fold(0u64, |sum, pid| {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // After the command name, which may hold spaces, in parentheses:
        // state is field 3, utime and stime fields 14 and 15.
        let rest = stat.rsplit_once(')')?.1;
        let mut fields = rest.split_whitespace().skip(11);
        let utime: u64 = fields.next()?.parse().ok()?;
        let stime: u64 = fields.next()?.parse().ok()?;
        Some(sum + utime + stime)
    })
}

/// Latency summary of successful requests, in microseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub count: usize,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
}

/// Nearest-rank percentiles (`p` in 0..=100) of `samples`.
#[must_use]
pub fn summarize(mut samples: Vec<u64>) -> Option<Summary> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let rank = |p: usize| {
        let n = samples.len();
        let idx = (p * n).div_ceil(100).clamp(1, n) - 1;
        samples[idx]
    };
    Some(Summary {
        count: samples.len(),
        p50: rank(50),
        p90: rank(90),
        p99: rank(99),
        max: samples[samples.len() - 1],
    })
}

#[derive(Default)]
struct WorkerResult {
    latencies_us: Vec<u64>,
    errors: usize,
}

impl WorkerResult {
    /// Counts one request that ran from `t0` to `done`, if it ran wholly inside
    /// the measured `window`: a success by its latency, a failure as an error
    /// only (never as throughput, which is the successes over the window).
    fn record(&mut self, window: (Instant, Instant), t0: Instant, done: Instant, ok: bool) {
        if t0 < window.0 || done > window.1 {
            return;
        }
        if ok {
            let us = u64::try_from(done.duration_since(t0).as_micros()).unwrap_or(u64::MAX);
            self.latencies_us.push(us);
        } else {
            self.errors += 1;
        }
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.workload == Workload::Argon2 {
        return argon2_rate(&args).await;
    }
    let config = args
        .config
        .as_deref()
        .context("--config is needed for every workload but argon2")?;
    let (cfg, token) = super::load(config)?;
    let client = super::client_builder(&cfg)?
        .pool_max_idle_per_host(args.concurrency)
        .timeout(Duration::from_secs(10))
        .build()
        .context("http client")?;
    if let Some(id) = args.nodes.iter().find(|id| cfg.node(**id).is_none()) {
        anyhow::bail!("--nodes: node {id} is not in the config");
    }
    let urls: Arc<Vec<String>> = Arc::new(
        cfg.nodes
            .iter()
            .filter(|n| args.nodes.is_empty() || args.nodes.contains(&n.id))
            .map(|n| super::base_url(&cfg, &n.http_addr))
            .collect(),
    );
    let first = urls.first().context("no node to send to")?.clone();
    // The load's own connections trust the cluster CA, as the client above.
    let tls = match &cfg.tls {
        Some(t) => Some(tokio_rustls::TlsConnector::from(
            cairn_raft::tls::client_config(&t.ca_file, &[b"http/1.1"]).context("the cluster CA")?,
        )),
        None => None,
    };
    let admin = token.expose().to_owned();
    let api_key = Arc::new(tenant_api_key(&client, &first, &admin, &args.tenant).await?);
    let value = "v".repeat(args.value_size);
    let keyspace = 1000usize;
    let password = "bench-password-1";

    match args.workload {
        _ if args.no_setup => {}
        Workload::KvGet | Workload::KvMixed => {
            for k in 0..keyspace {
                let url = format!("{}/v1/kv/bench-{k}", urls[k % urls.len()]);
                client
                    .put(url)
                    .bearer_auth(api_key.as_str())
                    .json(&serde_json::json!({ "value": value }))
                    .send()
                    .await?
                    .error_for_status()?;
            }
        }
        Workload::Signin | Workload::Refresh => {
            let users = args.users.max(args.concurrency).max(1);
            for u in 0..users {
                let resp = client
                    .post(format!("{first}/v1/users"))
                    .bearer_auth(api_key.as_str())
                    .json(&serde_json::json!({ "email": bench_email(u), "password": password }))
                    .send()
                    .await?;
                if !matches!(resp.status().as_u16(), 201 | 409) {
                    anyhow::bail!("creating bench user {u}: {}", resp.status());
                }
            }
        }
        Workload::KvPut | Workload::SigninRejected | Workload::Argon2 => {}
    }

    let start = Instant::now();
    let measure_from = start + Duration::from_secs(args.warmup_secs);
    let end = measure_from + Duration::from_secs(args.duration_secs);
    let users = args.users.max(args.concurrency).max(1);
    let mut tasks = Vec::new();
    let auth: Arc<str> = format!("Bearer {api_key}").into();
    let put_body = Bytes::from(serde_json::to_vec(&serde_json::json!({ "value": value }))?);
    for worker in 0..args.concurrency {
        let (client, urls, api_key, auth, put_body) = (
            client.clone(),
            Arc::clone(&urls),
            Arc::clone(&api_key),
            Arc::clone(&auth),
            put_body.clone(),
        );
        let mut conns = cfg
            .nodes
            .iter()
            .filter(|n| args.nodes.is_empty() || args.nodes.contains(&n.id))
            .map(|n| Conn::new(&n.http_addr, tls.clone()))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let workload = args.workload;
        tasks.push(tokio::spawn(async move {
            let mut out = WorkerResult::default();
            let mut refresh_token = match workload {
                Workload::Refresh => {
                    match sign_in(
                        &client,
                        &urls[worker % urls.len()],
                        &api_key,
                        worker,
                        password,
                    )
                    .await
                    {
                        Some(t) => Some(t),
                        None => {
                            out.errors += 1;
                            return out;
                        }
                    }
                }
                _ => None,
            };
            let mut i = 0usize;
            while Instant::now() < end {
                i += 1;
                let conn = (worker + i) % conns.len();
                let (method, path, body) = match workload {
                    Workload::KvPut => (
                        "PUT",
                        format!("/v1/kv/w{worker}-{i}"),
                        Some(put_body.clone()),
                    ),
                    Workload::KvGet => ("GET", format!("/v1/kv/bench-{}", i % keyspace), None),
                    Workload::KvMixed if matches!(i % 5, 0) => (
                        "PUT",
                        format!("/v1/kv/bench-{}", (worker * 7 + i) % keyspace),
                        Some(put_body.clone()),
                    ),
                    Workload::KvMixed => ("GET", format!("/v1/kv/bench-{}", i % keyspace), None),
                    Workload::Signin => (
                        "POST",
                        "/v1/sessions".to_owned(),
                        Some(json_body(&serde_json::json!({
                            "email": bench_email((worker + i * 7) % users),
                            "password": password,
                        }))),
                    ),
                    Workload::Refresh => (
                        "POST",
                        "/v1/sessions/refresh".to_owned(),
                        Some(json_body(
                            &serde_json::json!({ "refresh_token": refresh_token }),
                        )),
                    ),
                    Workload::SigninRejected => (
                        "POST",
                        "/v1/sessions".to_owned(),
                        Some(json_body(&serde_json::json!({
                            "email": "bench-victim@bench.example",
                            "password": "not the password",
                        }))),
                    ),
                    Workload::Argon2 => unreachable!("argon2 runs without a cluster"),
                };
                let t0 = Instant::now();
                let answer = conns[conn]
                    .send(method, &path, &auth, body.as_deref())
                    .await;
                let ok = match answer {
                    // The whole answer counts: a body cut short is an error.
                    Ok(a) if workload == Workload::SigninRejected => a.status == 429,
                    Ok(a) if (200..300).contains(&a.status) => match workload {
                        // Adopt the successor; an unreadable answer is retried
                        // with the same token (answered idempotently).
                        Workload::Refresh => match serde_json::from_slice::<Refreshed>(&a.body) {
                            Ok(r) => {
                                refresh_token = Some(r.refresh_token);
                                true
                            }
                            Err(_) => false,
                        },
                        _ => true,
                    },
                    Ok(_) | Err(_) => false,
                };
                out.record((measure_from, end), t0, Instant::now(), ok);
            }
            out
        }));
    }
    // The nodes' CPU over the measured window only (not setup, not warm-up).
    let pids = args.cpu_pids.clone();
    let cpu = tokio::spawn(async move {
        if pids.is_empty() {
            return None;
        }
        tokio::time::sleep_until(measure_from).await;
        let from = cpu_ticks(&pids)?;
        tokio::time::sleep_until(end).await;
        Some(cpu_ticks(&pids)?.saturating_sub(from))
    });
    let (all, errors) = gather(tasks).await?;
    let cpu = cpu.await.context("cpu sampler")?;
    if !args.cpu_pids.is_empty() && cpu.is_none() {
        anyhow::bail!("--cpu-pids: cannot read /proc/<pid>/stat of every node");
    }
    report(&args, urls.len(), all, errors, cpu)
}

/// Every worker's successful latencies and its error count, together.
async fn gather(
    workers: Vec<tokio::task::JoinHandle<WorkerResult>>,
) -> anyhow::Result<(Vec<u64>, usize)> {
    let mut all = Vec::new();
    let mut errors = 0;
    for w in workers {
        let r = w.await.context("bench worker")?;
        all.extend(r.latencies_us);
        errors += r.errors;
    }
    Ok((all, errors))
}

/// Prints the figures of a run over `nodes` nodes (and writes them as JSON
/// with `--json`).
fn report(
    args: &Args,
    nodes: usize,
    latencies_us: Vec<u64>,
    errors: usize,
    cpu_ticks: Option<u64>,
) -> anyhow::Result<()> {
    let secs = args.duration_secs.max(1) as f64;
    let ok = latencies_us.len();
    // Milliseconds of the nodes' CPU per successful request.
    let cpu_ms = cpu_ticks
        .filter(|_| ok > 0)
        .map(|t| t as f64 * 1000.0 / USER_HZ as f64 / ok as f64);
    println!(
        "workload {:?}, {} connections, {}s measured ({}s warm-up), {}-byte values, {} nodes",
        args.workload,
        args.concurrency,
        args.duration_secs,
        args.warmup_secs,
        args.value_size,
        nodes
    );
    let summary = summarize(latencies_us);
    if let Some(path) = &args.json {
        let figures = serde_json::json!({
            "workload": format!("{:?}", args.workload),
            "connections": args.concurrency,
            "duration_secs": args.duration_secs,
            "warmup_secs": args.warmup_secs,
            "value_size": args.value_size,
            "nodes": nodes,
            "ok": summary.as_ref().map_or(0, |s| s.count),
            "errors": errors,
            "throughput_per_sec": summary.as_ref().map_or(0.0, |s| s.count as f64 / secs),
            "p50_ms": summary.as_ref().map(|s| s.p50 as f64 / 1000.0),
            "p90_ms": summary.as_ref().map(|s| s.p90 as f64 / 1000.0),
            "p99_ms": summary.as_ref().map(|s| s.p99 as f64 / 1000.0),
            "max_ms": summary.as_ref().map(|s| s.max as f64 / 1000.0),
            "node_cpu_ms_per_ok": cpu_ms,
        });
        let text = serde_json::to_string_pretty(&figures)?;
        if path.as_os_str() == "-" {
            println!("{text}");
        } else {
            std::fs::write(path, text + "\n")
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    match summary {
        Some(s) => println!(
            "ok {}  errors {}  throughput {:.0} req/s  p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            s.count,
            errors,
            s.count as f64 / secs,
            s.p50 as f64 / 1000.0,
            s.p90 as f64 / 1000.0,
            s.p99 as f64 / 1000.0,
            s.max as f64 / 1000.0
        ),
        None => println!("ok 0  errors {errors}: no successful requests"),
    }
    if let Some(ms) = cpu_ms {
        println!("node CPU per ok request: {ms:.3} ms (over the measured window)");
    }
    Ok(())
}

/// The `argon2` workload: one thread per core, each verifying a password
/// against its Argon2id hash (the parameters sign-in uses, its own 19 MiB
/// workspace) for the run; the latency is one verification's.
async fn argon2_rate(args: &Args) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    println!(
        "{} on {cores} cores",
        cairn_crypto::password::params_description()
    );
    let start = Instant::now();
    let measure_from = start + Duration::from_secs(args.warmup_secs);
    let end = measure_from + Duration::from_secs(args.duration_secs);
    let threads: Vec<_> = (0..cores)
        .map(|_| {
            tokio::task::spawn_blocking(move || {
                let mut out = WorkerResult::default();
                let mut ws = cairn_crypto::password::Workspace::new();
                let password = b"bench-password-1";
                let Ok(phc) = ws.hash(password) else {
                    out.errors += 1;
                    return out;
                };
                while Instant::now() < end {
                    let t0 = Instant::now();
                    let ok = ws.verify(password, &phc);
                    out.record((measure_from, end), t0, Instant::now(), ok);
                }
                out
            })
        })
        .collect();
    let (all, errors) = gather(threads).await?;
    report(args, 0, all, errors, None)
}

#[derive(serde::Deserialize)]
struct Refreshed {
    refresh_token: String,
}

fn json_body(v: &serde_json::Value) -> Bytes {
    Bytes::from(serde_json::to_vec(v).unwrap_or_default())
}

fn bench_email(n: usize) -> String {
    format!("bench-user-{n}@bench.example")
}

/// An API key of tenant `name` (all scopes): the tenant is created if it does
/// not exist, else a new key is issued for it.
async fn tenant_api_key(
    client: &reqwest::Client,
    base: &str,
    admin: &str,
    name: &str,
) -> anyhow::Result<String> {
    let resp = client
        .post(format!("{base}/v1/admin/tenants"))
        .bearer_auth(admin)
        .json(&serde_json::json!({ "name": name }))
        .send()
        .await?;
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    let tenant_id = match status {
        201 => {
            return body["api_key"]
                .as_str()
                .map(str::to_owned)
                .context("tenant creation answered no api_key")
        }
        409 => {
            let list: serde_json::Value = client
                .get(format!("{base}/v1/admin/tenants"))
                .bearer_auth(admin)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            list["tenants"]
                .as_array()
                .and_then(|ts| ts.iter().find(|t| t["name"] == name))
                .and_then(|t| t["id"].as_str())
                .map(str::to_owned)
                .context("tenant exists but is not listed")?
        }
        _ => anyhow::bail!("creating tenant {name}: {status} {body}"),
    };
    let key: serde_json::Value = client
        .post(format!("{base}/v1/admin/tenants/{tenant_id}/api-keys"))
        .bearer_auth(admin)
        .json(&serde_json::json!({ "scopes": ["read", "write", "manage", "delete"] }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    key["api_key"]
        .as_str()
        .map(str::to_owned)
        .context("api key creation answered no api_key")
}

/// Signs bench user `user` in; returns its refresh token.
async fn sign_in(
    client: &reqwest::Client,
    base: &str,
    api_key: &str,
    user: usize,
    password: &str,
) -> Option<String> {
    for _ in 0..5 {
        let resp = client
            .post(format!("{base}/v1/sessions"))
            .bearer_auth(api_key)
            .json(&serde_json::json!({ "email": bench_email(user), "password": password }))
            .send()
            .await;
        if let Ok(r) = resp {
            if r.status().as_u16() == 201 {
                let v: serde_json::Value = r.json().await.ok()?;
                return v["refresh_token"].as_str().map(str::to_owned);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s = summarize((1..=100).collect()).expect("summary");
        assert_eq!(
            (s.count, s.p50, s.p90, s.p99, s.max),
            (100, 50, 90, 99, 100)
        );
        let s = summarize(vec![7]).expect("summary");
        assert_eq!((s.p50, s.p99, s.max), (7, 7, 7));
        let s = summarize(vec![5, 1, 3, 2, 4]).expect("summary");
        assert_eq!((s.p50, s.p90, s.max), (3, 5, 5));
        assert_eq!(summarize(Vec::new()), None);
    }

    #[test]
    fn failures_count_as_errors_never_as_throughput() {
        let start = Instant::now();
        let ms = |n| start + Duration::from_millis(n);
        let window = (ms(100), ms(1100));
        let mut out = WorkerResult::default();
        out.record(window, ms(100), ms(103), true);
        out.record(window, ms(200), ms(210), false);
        out.record(window, ms(300), ms(301), true);
        out.record(window, ms(400), ms(900), false);
        // Outside the window (warm-up, or still running at its end): not counted.
        out.record(window, ms(50), ms(150), true);
        out.record(window, ms(99), ms(120), false);
        out.record(window, ms(1000), ms(1200), true);
        assert_eq!(out.errors, 2);
        assert_eq!(out.latencies_us, vec![3_000, 1_000]);
        let s = summarize(out.latencies_us).expect("summary");
        assert_eq!((s.count, s.p50, s.max), (2, 1_000, 3_000));
    }
}
