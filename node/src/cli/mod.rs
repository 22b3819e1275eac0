//! Operator and benchmark commands that talk to running nodes over HTTP.

pub mod bench;
pub mod certs;
pub mod init;
pub mod keys;
pub mod status;
pub mod upgrade;

use std::path::Path;

use anyhow::Context;
use cairn_cluster_config::ClusterConfig;
use cairn_crypto::AdminToken;

/// Loads the config and the admin token it names.
pub(crate) fn load(config: &Path) -> anyhow::Result<(ClusterConfig, AdminToken)> {
    let cfg = ClusterConfig::load(config)?;
    let token = AdminToken::load(&cfg.admin_token_file).context("admin token")?;
    Ok((cfg, token))
}

pub(crate) fn http_client(timeout: std::time::Duration) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(std::time::Duration::from_secs(1))
        .build()
        .context("building the HTTP client")
}
