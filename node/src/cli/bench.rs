//! `cairn bench`: a closed-loop load driver for the KV API. Spreads requests over
//! every node, counts only successful requests as throughput, and reports latency
//! percentiles over the measured window (after warm-up).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
// The names are the CLI's (`kv-put`, …); auth workloads will join them.
#[allow(clippy::enum_variant_names)]
pub enum Workload {
    /// PUT distinct keys.
    KvPut,
    /// Linearizable GET of keys written before the run.
    KvGet,
    /// 80 % linearizable GETs, 20 % PUTs, over the same preloaded keys.
    KvMixed,
}

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    config: PathBuf,
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
    /// Also write the figures as JSON to this file (`-`: standard output).
    #[arg(long)]
    json: Option<PathBuf>,
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

pub async fn run(args: Args) -> anyhow::Result<()> {
    let (cfg, token) = super::load(&args.config)?;
    let client = reqwest::Client::builder()
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
            .map(|n| format!("http://{}/v1/kv/", n.http_addr))
            .collect(),
    );
    let token = Arc::new(token.expose().to_owned());
    let value = "v".repeat(args.value_size);
    let keyspace = 1000usize;

    // The tenant must exist (an unknown X-Tenant is 404): create it, or find it.
    if let Some(first) = urls.first() {
        let admin = first.replace("/v1/kv/", "/v1/admin/tenants");
        let resp = client
            .post(admin)
            .bearer_auth(token.as_str())
            .json(&serde_json::json!({ "name": args.tenant }))
            .send()
            .await?;
        if !matches!(resp.status().as_u16(), 201 | 409) {
            anyhow::bail!("creating tenant {}: {}", args.tenant, resp.status());
        }
    }
    if matches!(args.workload, Workload::KvGet | Workload::KvMixed) {
        for k in 0..keyspace {
            let url = format!("{}bench-{k}", urls[k % urls.len()]);
            client
                .put(url)
                .bearer_auth(token.as_str())
                .header("x-tenant", &args.tenant)
                .json(&serde_json::json!({ "value": value }))
                .send()
                .await?
                .error_for_status()?;
        }
    }

    let start = Instant::now();
    let measure_from = start + Duration::from_secs(args.warmup_secs);
    let end = measure_from + Duration::from_secs(args.duration_secs);
    let mut tasks = Vec::new();
    for worker in 0..args.concurrency {
        let (client, urls, token, value, tenant) = (
            client.clone(),
            Arc::clone(&urls),
            Arc::clone(&token),
            value.clone(),
            args.tenant.clone(),
        );
        let workload = args.workload;
        tasks.push(tokio::spawn(async move {
            let mut out = WorkerResult::default();
            let mut i = 0usize;
            while Instant::now() < end {
                i += 1;
                let url = &urls[(worker + i) % urls.len()];
                let req = match workload {
                    Workload::KvPut => client
                        .put(format!("{url}w{worker}-{i}"))
                        .json(&serde_json::json!({ "value": value })),
                    Workload::KvGet => client.get(format!("{url}bench-{}", i % keyspace)),
                    Workload::KvMixed if matches!(i % 5, 0) => client
                        .put(format!("{url}bench-{}", (worker * 7 + i) % keyspace))
                        .json(&serde_json::json!({ "value": value })),
                    Workload::KvMixed => client.get(format!("{url}bench-{}", i % keyspace)),
                };
                let t0 = Instant::now();
                let ok = req
                    .bearer_auth(token.as_str())
                    .header("x-tenant", &tenant)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                let done = Instant::now();
                if t0 >= measure_from && done <= end {
                    if ok {
                        let us =
                            u64::try_from(done.duration_since(t0).as_micros()).unwrap_or(u64::MAX);
                        out.latencies_us.push(us);
                    } else {
                        out.errors += 1;
                    }
                }
            }
            out
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let r = t.await.context("bench worker")?;
        all.extend(r.latencies_us);
        errors += r.errors;
    }
    let secs = args.duration_secs.max(1) as f64;
    println!(
        "workload {:?}, {} connections, {}s measured ({}s warm-up), {}-byte values, {} nodes",
        args.workload,
        args.concurrency,
        args.duration_secs,
        args.warmup_secs,
        args.value_size,
        urls.len()
    );
    let summary = summarize(all);
    if let Some(path) = &args.json {
        let figures = serde_json::json!({
            "workload": format!("{:?}", args.workload),
            "connections": args.concurrency,
            "duration_secs": args.duration_secs,
            "warmup_secs": args.warmup_secs,
            "value_size": args.value_size,
            "nodes": urls.len(),
            "ok": summary.as_ref().map_or(0, |s| s.count),
            "errors": errors,
            "throughput_per_sec": summary.as_ref().map_or(0.0, |s| s.count as f64 / secs),
            "p50_ms": summary.as_ref().map(|s| s.p50 as f64 / 1000.0),
            "p90_ms": summary.as_ref().map(|s| s.p90 as f64 / 1000.0),
            "p99_ms": summary.as_ref().map(|s| s.p99 as f64 / 1000.0),
            "max_ms": summary.as_ref().map(|s| s.max as f64 / 1000.0),
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
    Ok(())
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
}
