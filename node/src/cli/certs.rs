//! `cairn certs init|add`: a dev CA for a local cluster (rcgen). Writes the CA at
//! the config's `tls.ca_file`, its key beside it as `ca-key.pem` (0600), and per
//! node a certificate (URI SAN `spiffe://<cluster>/node/<id>`, DNS/IP SANs of its
//! three addresses, EKU serverAuth and clientAuth) and a key (0600) at the node's
//! `tls_cert_file` and `tls_key_file`. Never overwrites without `--force`.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{bail, Context};
use cairn_cluster_config::{host_of, ClusterConfig, NodeConfig, TlsConfig};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Write the CA and every node's certificate and key that are missing.
    Init {
        #[arg(long)]
        config: std::path::PathBuf,
        /// Replace existing files (a new CA, and new certificates for every node).
        #[arg(long)]
        force: bool,
    },
    /// Issue the certificate and key of one node (added to the config later).
    Add {
        #[arg(long)]
        config: std::path::PathBuf,
        #[arg(long)]
        id: u64,
    },
}

/// Runs `cairn certs`.
///
/// # Errors
/// The config does not load or has TLS off; a file cannot be written; the CA
/// key is missing (`add`).
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Init { config, force } => {
            let cfg = ClusterConfig::load(&config)?;
            let tls = tls_of(&cfg)?;
            let ca_key_file = tls.ca_key_file();
            let ca_key = if force || !tls.ca_file.exists() || !ca_key_file.exists() {
                if !force && (tls.ca_file.exists() || ca_key_file.exists()) {
                    bail!(
                        "{} or {} exists without the other; pass --force to make a new CA",
                        tls.ca_file.display(),
                        ca_key_file.display()
                    );
                }
                // Certificates of an earlier CA would not verify under a new one,
                // and nothing is overwritten without --force.
                if let Some(stale) = cfg
                    .nodes
                    .iter()
                    .filter_map(|n| n.tls.as_ref())
                    .flat_map(|f| [&f.cert_file, &f.key_file])
                    .find(|f| !force && f.exists())
                {
                    bail!(
                        "no CA at {}, but {} exists (issued by another CA); remove the node \
                         files or pass --force to make a new CA and reissue every node's",
                        tls.ca_file.display(),
                        stale.display()
                    );
                }
                let key = KeyPair::generate().context("generating the CA key")?;
                let cert = ca_params(&cfg.cluster_name)
                    .self_signed(&key)
                    .context("signing the CA certificate")?;
                write(&ca_key_file, &key.serialize_pem(), 0o600)?;
                write(&tls.ca_file, &cert.pem(), 0o644)?;
                println!(
                    "wrote CA {} (key {})",
                    tls.ca_file.display(),
                    ca_key_file.display()
                );
                key
            } else {
                load_ca_key(&ca_key_file)?
            };
            let issuer = Issuer::new(ca_params(&cfg.cluster_name), ca_key);
            for node in &cfg.nodes {
                let files = node_files(node)?;
                if !force && files.cert_file.exists() && files.key_file.exists() {
                    println!(
                        "node {}: {} exists, kept",
                        node.id,
                        files.cert_file.display()
                    );
                    continue;
                }
                issue(&cfg.cluster_name, node, &issuer)?;
            }
            Ok(())
        }
        Command::Add { config, id } => {
            let cfg = ClusterConfig::load(&config)?;
            let tls = tls_of(&cfg)?;
            let node = cfg
                .node(id)
                .with_context(|| format!("node {id} is not in the config's [[nodes]]"))?;
            let files = node_files(node)?;
            for f in [&files.cert_file, &files.key_file] {
                if f.exists() {
                    bail!("{} exists; remove it first to issue a new one", f.display());
                }
            }
            let issuer = Issuer::new(
                ca_params(&cfg.cluster_name),
                load_ca_key(&tls.ca_key_file())?,
            );
            issue(&cfg.cluster_name, node, &issuer)
        }
    }
}

fn tls_of(cfg: &ClusterConfig) -> anyhow::Result<&TlsConfig> {
    cfg.tls
        .as_ref()
        .context("the config has TLS off (tls.insecure_plaintext = true): no certificates to make")
}

fn node_files(node: &NodeConfig) -> anyhow::Result<&cairn_cluster_config::NodeTls> {
    node.tls
        .as_ref()
        .with_context(|| format!("node {} has no tls_cert_file/tls_key_file", node.id))
}

fn load_ca_key(path: &Path) -> anyhow::Result<KeyPair> {
    let pem = cairn_crypto::secret_file::read(path).context("CA key")?;
    let text = std::str::from_utf8(&pem).context("CA key is not PEM text")?;
    KeyPair::from_pem(text).with_context(|| format!("{}: not a PEM private key", path.display()))
}

/// The CA's parameters. `add` rebuilds them to sign with the CA's key: the
/// issuer name must be the CA certificate's subject, so it is fixed here.
#[must_use]
pub fn ca_params(cluster: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("Cairn dev CA ({cluster})"));
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// A node certificate's parameters: its SPIFFE id, the hosts of its addresses,
/// serverAuth and clientAuth.
///
/// # Errors
/// A host that is not a valid DNS name.
pub fn node_params(cluster: &str, node: &NodeConfig) -> anyhow::Result<CertificateParams> {
    let mut hosts: Vec<&str> = [&node.http_addr, &node.grpc_addr, &node.raft_addr]
        .into_iter()
        .map(|a| host_of(a))
        .collect();
    hosts.sort_unstable();
    hosts.dedup();
    node_cert_params(cluster, node.id, &hosts)
}

/// The parameters of node `id`'s certificate, naming `hosts` (IP addresses or
/// DNS names, each once): what [`node_params`] makes of a node's addresses.
///
/// # Errors
/// A host that is not a valid DNS name.
pub fn node_cert_params(
    cluster: &str,
    id: u64,
    hosts: &[&str],
) -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("cairn {cluster} node {id}"));
    params.distinguished_name = dn;
    let spiffe = format!("spiffe://{cluster}/node/{id}");
    params
        .subject_alt_names
        .push(SanType::URI(spiffe.try_into().context("SPIFFE id")?));
    for &host in hosts {
        params.subject_alt_names.push(match host.parse() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(
                host.to_owned()
                    .try_into()
                    .with_context(|| format!("{host:?} is not a DNS name"))?,
            ),
        });
    }
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

fn issue(cluster: &str, node: &NodeConfig, issuer: &Issuer<'_, KeyPair>) -> anyhow::Result<()> {
    let files = node_files(node)?;
    let key = KeyPair::generate().context("generating a node key")?;
    let cert = node_params(cluster, node)?
        .signed_by(&key, issuer)
        .context("signing a node certificate")?;
    write(&files.key_file, &key.serialize_pem(), 0o600)?;
    write(&files.cert_file, &cert.pem(), 0o644)?;
    println!(
        "node {}: wrote {} (spiffe://{cluster}/node/{})",
        node.id,
        files.cert_file.display(),
        node.id
    );
    Ok(())
}

/// Writes `text` to `path` (replacing it) with `mode`, creating its directory
/// (0700) if needed.
fn write(path: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("chmod 700 {}", dir.display()))?;
        }
    }
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
