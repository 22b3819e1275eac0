//! `cairn keys …`: tenant data key rotation, master key rotation, key versions.
//! And `cairn compact`: snapshot every group and purge the log, on every node.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use cairn_cluster_config::ClusterConfig;
use cairn_crypto::AdminToken;
use futures::future::join_all;
use serde_json::{json, Value};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: KeysCmd,
}

#[derive(clap::Subcommand)]
enum KeysCmd {
    /// Rotate a tenant's data key: new writes use the new version, old values stay
    /// readable (and are re-sealed when next written).
    Rotate {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        tenant: String,
    },
    /// Re-wrap every tenant data key under a new master key. The key file (32
    /// random bytes, mode 0600) must exist at this path on every node's host;
    /// every node must be up. Afterwards point `master_key_file` at it.
    RotateMaster {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        new_key_file: PathBuf,
    },
    /// Show the master key and every tenant's key versions (never key material).
    Status {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
pub struct CompactArgs {
    #[arg(long)]
    config: PathBuf,
}

/// POSTs `body` to `path` on one node; the JSON answer, or the problem as an error.
async fn post(
    client: &reqwest::Client,
    token: &AdminToken,
    base_url: &str,
    path: &str,
    body: &Value,
) -> anyhow::Result<Value> {
    let url = format!("{base_url}{path}");
    let resp = client
        .post(&url)
        .bearer_auth(token.expose())
        .json(body)
        .send()
        .await
        .with_context(|| format!("{url} not reachable"))?;
    let status = resp.status();
    let answer: Value = resp.json().await.unwrap_or_default();
    if !status.is_success() {
        bail!(
            "{url}: {status} {}: {}",
            answer["code"].as_str().unwrap_or("?"),
            answer["detail"].as_str().unwrap_or("")
        );
    }
    Ok(answer)
}

/// The first node that answers `path`, trying them in id order.
async fn post_any(
    cfg: &ClusterConfig,
    client: &reqwest::Client,
    token: &AdminToken,
    path: &str,
    body: &Value,
) -> anyhow::Result<Value> {
    let mut last = None;
    for n in &cfg.nodes {
        match post(
            client,
            token,
            &super::base_url(cfg, &n.http_addr),
            path,
            body,
        )
        .await
        {
            Ok(v) => return Ok(v),
            // A refusal is an answer; only an unreachable node moves on.
            Err(e) if format!("{e:#}").contains("not reachable") => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("no nodes in the config")))
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        KeysCmd::Rotate { config, tenant } => {
            let (cfg, token) = super::load(&config)?;
            let client = super::http_client(&cfg, Duration::from_secs(20))?;
            let v = post_any(
                &cfg,
                &client,
                &token,
                "/v1/admin/keys/rotate",
                &json!({"tenant": tenant}),
            )
            .await?;
            println!(
                "tenant {} ({}): data key version {}",
                v["tenant"].as_str().unwrap_or("?"),
                v["tenant_id"].as_str().unwrap_or("?"),
                v["key_version"]
            );
            Ok(())
        }
        KeysCmd::RotateMaster {
            config,
            new_key_file,
        } => rotate_master(&config, new_key_file).await,
        KeysCmd::Status { config, json } => {
            let (cfg, token) = super::load(&config)?;
            let client = super::http_client(&cfg, Duration::from_secs(10))?;
            let mut last = None;
            for n in &cfg.nodes {
                let url = format!("{}/v1/admin/keys", super::base_url(&cfg, &n.http_addr));
                match client.get(&url).bearer_auth(token.expose()).send().await {
                    Ok(resp) => {
                        let status = resp.status();
                        let v: Value = resp.json().await.unwrap_or_default();
                        if !status.is_success() {
                            bail!("{url}: {status} {}", v["detail"].as_str().unwrap_or(""));
                        }
                        print_status(&v, json)?;
                        return Ok(());
                    }
                    Err(e) => last = Some(e),
                }
            }
            match last {
                Some(e) => bail!("no node answered: {e}"),
                None => bail!("no nodes in the config"),
            }
        }
    }
}

fn print_status(v: &Value, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(v)?);
        return Ok(());
    }
    match v["master_key"].as_object() {
        Some(m) => println!(
            "master key: version {} (fingerprint {})",
            m["version"],
            m["fingerprint"].as_str().unwrap_or("?")
        ),
        None => println!("master key: none recorded yet (no tenant)"),
    }
    for r in v["retired_master_keys"].as_array().into_iter().flatten() {
        println!(
            "  retired: version {} (fingerprint {})",
            r["version"],
            r["fingerprint"].as_str().unwrap_or("?")
        );
    }
    println!("{:<24} {:<34} KEY VERSION", "TENANT", "ID");
    for t in v["tenants"].as_array().into_iter().flatten() {
        println!(
            "{:<24} {:<34} {}",
            t["name"].as_str().unwrap_or("?"),
            t["id"].as_str().unwrap_or("?"),
            t["key_version"]
        );
    }
    Ok(())
}

/// Stage the new key on every node (all must load it and agree on its
/// fingerprint), then switch the cluster to it through the log.
async fn rotate_master(config: &std::path::Path, new_key_file: PathBuf) -> anyhow::Result<()> {
    let (cfg, token) = super::load(config)?;
    let client = super::http_client(&cfg, Duration::from_secs(20))?;
    let path = if new_key_file.is_absolute() {
        new_key_file
    } else {
        std::env::current_dir()
            .context("current directory")?
            .join(new_key_file)
    };
    let path = path
        .to_str()
        .context("the key file path is not valid UTF-8")?
        .to_owned();
    let body = json!({"key_file": path});
    let staged = join_all(cfg.nodes.iter().map(|n| {
        let (client, token, body, cfg) = (&client, &token, &body, &cfg);
        async move {
            (
                n.id,
                post(
                    client,
                    token,
                    &super::base_url(cfg, &n.http_addr),
                    "/v1/admin/keys/master/stage",
                    body,
                )
                .await,
            )
        }
    }))
    .await;
    let mut fingerprints = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    for (id, r) in &staged {
        match r {
            Ok(v) => {
                fingerprints.insert(v["fingerprint"].as_str().unwrap_or("").to_owned());
            }
            Err(e) => failures.push(format!("node {id}: {e:#}")),
        }
    }
    if !failures.is_empty() {
        bail!(
            "the new master key was not staged on every node, so nothing was rotated:\n  {}",
            failures.join("\n  ")
        );
    }
    if fingerprints.len() != 1 {
        bail!("nodes loaded different keys from {path}: copy the same key file to every node");
    }
    let fingerprint = fingerprints.pop_first().unwrap_or_default();
    println!("staged master key {fingerprint} on {} nodes", staged.len());
    let v = post_any(
        &cfg,
        &client,
        &token,
        "/v1/admin/keys/master/rotate",
        &json!({"fingerprint": fingerprint}),
    )
    .await?;
    println!(
        "master key is now version {} ({}); {} tenants re-wrapped",
        v["master_key"]["version"],
        v["master_key"]["fingerprint"].as_str().unwrap_or("?"),
        v["tenants"].as_array().map_or(0, Vec::len)
    );
    println!("next: set master_key_file = {path:?} in the config on every node");
    Ok(())
}

pub async fn compact(args: CompactArgs) -> anyhow::Result<()> {
    let (cfg, token) = super::load(&args.config)?;
    let client = super::http_client(&cfg, Duration::from_secs(30))?;
    let results = join_all(cfg.nodes.iter().map(|n| {
        let (client, token, cfg) = (&client, &token, &cfg);
        async move {
            (
                n.id,
                post(
                    client,
                    token,
                    &super::base_url(cfg, &n.http_addr),
                    "/v1/cluster/compact",
                    &json!({}),
                )
                .await,
            )
        }
    }))
    .await;
    let mut failed = 0;
    for (id, r) in results {
        match r {
            Ok(v) => {
                for g in v["groups"].as_array().into_iter().flatten() {
                    println!(
                        "node {id} group {}: snapshot at {}",
                        g["group"].as_str().unwrap_or("?"),
                        g["snapshot_index"]
                    );
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("node {id}: {e:#}");
            }
        }
    }
    if failed > 0 {
        bail!("{failed} node(s) did not compact");
    }
    Ok(())
}
