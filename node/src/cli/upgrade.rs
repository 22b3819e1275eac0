//! `cairn finalize-upgrade`: once every node runs a binary that decodes a newer
//! log entry format (wire version), raise the cluster to it, so that writes
//! carry what that format adds (each command's actor and request id). `cairn
//! init` does the same on a new cluster.
//!
//! The cluster writes the older format until then: a rolling restart onto a new
//! binary keeps every not-yet-restarted node able to apply the log. The check
//! reads each node's `/v1/cluster/status` (`wire_version.node`; a binary that
//! predates wire versions reports none: version 1). Raise only after the last
//! node is upgraded, and do not start an older binary afterwards: it could not
//! decode the log.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use cairn_cluster_config::ClusterConfig;
use cairn_crypto::AdminToken;
use cairn_storage::sm::cluster::{FIRST_WIRE_VERSION, WIRE_VERSION};
use serde_json::Value;
use tokio::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    config: PathBuf,
    /// How long to wait for every node to report, and to apply the new version.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let (cfg, token) = super::load(&args.config)?;
    let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);
    let versions = node_versions(&cfg, &token, deadline).await?;
    let behind: Vec<String> = versions
        .iter()
        .filter(|(_, v)| v.node < WIRE_VERSION)
        .map(|(id, v)| format!("node {id} (wire version {})", v.node))
        .collect();
    if !behind.is_empty() {
        bail!(
            "not every node runs a binary that speaks wire version {WIRE_VERSION}: upgrade {} first",
            behind.join(", ")
        );
    }
    let cluster = raise(&cfg, &token, WIRE_VERSION, deadline).await?;
    println!("cluster {} at wire version {cluster}", cfg.cluster_name);
    Ok(())
}

/// After `cairn init`: raise a new cluster to the highest wire version all its
/// nodes speak. A node on an older binary keeps the cluster where it is (said,
/// not an error: the cluster works, on the older format).
pub(crate) async fn after_init(
    cfg: &ClusterConfig,
    token: &AdminToken,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let versions = node_versions(cfg, token, deadline).await?;
    let lowest = versions
        .iter()
        .map(|(_, v)| v.node)
        .min()
        .unwrap_or(FIRST_WIRE_VERSION)
        .min(WIRE_VERSION);
    if lowest <= FIRST_WIRE_VERSION {
        println!(
            "wire version {FIRST_WIRE_VERSION}: a node runs an older binary \
             (run `cairn finalize-upgrade` once every node is upgraded)"
        );
        return Ok(());
    }
    let cluster = raise(cfg, token, lowest, deadline).await?;
    println!("wire version {cluster}");
    Ok(())
}

#[derive(Debug, Clone, Copy)]
struct Versions {
    node: u32,
    cluster: u32,
}

/// Every node's wire versions from its status, retried until `deadline` while a
/// node does not answer.
async fn node_versions(
    cfg: &ClusterConfig,
    token: &AdminToken,
    deadline: Instant,
) -> anyhow::Result<Vec<(u64, Versions)>> {
    let client = super::http_client(cfg, Duration::from_secs(5))?;
    let mut out = Vec::with_capacity(cfg.nodes.len());
    for n in &cfg.nodes {
        let url = format!("{}/v1/cluster/status", super::base_url(cfg, &n.http_addr));
        loop {
            let attempt = async {
                let resp = client.get(&url).bearer_auth(token.expose()).send().await?;
                let status = resp.status();
                let body: Value = resp.json().await?;
                Ok::<_, reqwest::Error>((status, body))
            }
            .await;
            let failure = match attempt {
                Ok((status, body)) if status.is_success() => {
                    out.push((n.id, versions_of(&body)));
                    break;
                }
                Ok((status, body)) => format!(
                    "node {} answered {status}: {}",
                    n.id,
                    body["detail"].as_str().unwrap_or("")
                ),
                Err(e) => format!("node {} not reachable at {url}: {e}", n.id),
            };
            if Instant::now() >= deadline {
                bail!("{failure}");
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    Ok(out)
}

/// A status body's wire versions; a binary that predates them reports none.
fn versions_of(body: &Value) -> Versions {
    let field = |name: &str| {
        body["wire_version"][name]
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(FIRST_WIRE_VERSION)
    };
    Versions {
        node: field("node"),
        cluster: field("cluster"),
    }
}

/// Raises the cluster to `version` through the lowest-id node, then waits until
/// every node's `meta` replica shows it (so writes right after are traced on
/// every node). Returns the cluster's version.
async fn raise(
    cfg: &ClusterConfig,
    token: &AdminToken,
    version: u32,
    deadline: Instant,
) -> anyhow::Result<u32> {
    let node = cfg.nodes.iter().min_by_key(|n| n.id).context("no nodes")?;
    let url = format!(
        "{}/v1/cluster/wire-version",
        super::base_url(cfg, &node.http_addr)
    );
    let client = super::http_client(cfg, Duration::from_secs(20))?;
    let resp = client
        .post(&url)
        .bearer_auth(token.expose())
        .json(&serde_json::json!({ "version": version }))
        .send()
        .await
        .with_context(|| format!("node {} not reachable at {url}", node.id))?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or_default();
    if !status.is_success() {
        bail!(
            "raising the wire version refused ({status}, {}): {}",
            body["code"].as_str().unwrap_or(""),
            body["detail"].as_str().unwrap_or("")
        );
    }
    let cluster = body["cluster"]
        .as_u64()
        .and_then(|v| u32::try_from(v).ok())
        .context("the node's answer has no cluster version")?;
    loop {
        let versions = node_versions(cfg, token, deadline).await?;
        let lagging: Vec<u64> = versions
            .iter()
            .filter(|(_, v)| v.cluster < cluster)
            .map(|(id, _)| *id)
            .collect();
        if lagging.is_empty() {
            return Ok(cluster);
        }
        if Instant::now() >= deadline {
            bail!("nodes {lagging:?} have not applied wire version {cluster} yet");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_without_wire_versions_is_version_one() {
        let old = serde_json::json!({"id": 1, "groups": []});
        let v = versions_of(&old);
        assert_eq!((v.node, v.cluster), (1, 1));
        let new = serde_json::json!({"wire_version": {"node": 2, "cluster": 1}});
        let v = versions_of(&new);
        assert_eq!((v.node, v.cluster), (2, 1));
    }
}
