//! `cairn init`: ask one node to initialise every group's membership from the config.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::time::Instant;

/// The least time given to raising a new cluster's wire version after init.
const MIN_FINALIZE: Duration = Duration::from_secs(10);

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    config: PathBuf,
    /// Node to send the request to (default: the lowest id).
    #[arg(long)]
    node: Option<u64>,
    /// How long to keep retrying while nodes are still starting.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let (cfg, token) = super::load(&args.config)?;
    let node = match args.node {
        Some(id) => cfg
            .node(id)
            .with_context(|| format!("node {id} not in config"))?,
        None => cfg.nodes.iter().min_by_key(|n| n.id).context("no nodes")?,
    };
    let url = format!("{}/v1/cluster/init", super::base_url(&cfg, &node.http_addr));
    let client = super::http_client(&cfg, Duration::from_secs(20))?;
    let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);
    loop {
        let attempt = client.post(&url).bearer_auth(token.expose()).send().await;
        let retry_reason = match attempt {
            Ok(resp) => {
                let status = resp.status();
                let body: serde_json::Value = resp.json().await.unwrap_or_default();
                if status.is_success() {
                    for g in body["groups"].as_array().into_iter().flatten() {
                        println!(
                            "group {}: {}",
                            g["group"].as_str().unwrap_or("?"),
                            g["outcome"].as_str().unwrap_or("?")
                        );
                    }
                    println!("cluster {} initialised", cfg.cluster_name);
                    let left = deadline.saturating_duration_since(Instant::now());
                    return super::upgrade::after_init(&cfg, &token, left.max(MIN_FINALIZE)).await;
                }
                let code = body["code"].as_str().unwrap_or("").to_owned();
                let detail = body["detail"].as_str().unwrap_or("").to_owned();
                if code != "node_unreachable" {
                    bail!("init refused ({status}, {code}): {detail}");
                }
                detail
            }
            Err(e) => format!("node {} not reachable at {url}: {e}", node.id),
        };
        if Instant::now() >= deadline {
            bail!("{retry_reason}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
