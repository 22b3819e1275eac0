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

/// The base URL of a node's HTTP port: `https://` unless the cluster runs in
/// (loopback-only) plaintext.
pub(crate) fn base_url(cfg: &ClusterConfig, http_addr: &str) -> String {
    let scheme = if cfg.tls.is_some() { "https" } else { "http" };
    format!("{scheme}://{http_addr}")
}

/// An HTTP client builder that speaks to the cluster's nodes: with TLS on, it
/// trusts exactly the CAs of the config's `tls.ca_file` (no system roots) and
/// verifies each node by its address, and it refuses plaintext.
///
/// # Errors
/// The CA bundle cannot be read or holds no certificate.
pub(crate) fn client_builder(cfg: &ClusterConfig) -> anyhow::Result<reqwest::ClientBuilder> {
    let Some(tls) = &cfg.tls else {
        return Ok(reqwest::Client::builder());
    };
    let pem = std::fs::read(&tls.ca_file)
        .with_context(|| format!("reading the CA bundle {}", tls.ca_file.display()))?;
    https_client_builder(&pem).with_context(|| tls.ca_file.display().to_string())
}

/// An HTTPS-only client builder that trusts exactly the CAs of the PEM bundle
/// `ca_pem` (no system roots), verifying each node by its address.
///
/// # Errors
/// The bundle is not PEM or holds no certificate.
pub fn https_client_builder(ca_pem: &[u8]) -> anyhow::Result<reqwest::ClientBuilder> {
    let certs =
        reqwest::Certificate::from_pem_bundle(ca_pem).context("not a PEM certificate bundle")?;
    anyhow::ensure!(!certs.is_empty(), "holds no certificate");
    Ok(certs.into_iter().fold(
        reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .https_only(true),
        reqwest::ClientBuilder::add_root_certificate,
    ))
}

/// A client for operator commands (see [`client_builder`]).
///
/// # Errors
/// As [`client_builder`].
pub(crate) fn http_client(
    cfg: &ClusterConfig,
    timeout: std::time::Duration,
) -> anyhow::Result<reqwest::Client> {
    client_builder(cfg)?
        .timeout(timeout)
        .connect_timeout(std::time::Duration::from_secs(1))
        .build()
        .context("building the HTTP client")
}
