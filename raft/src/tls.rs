//! TLS for every port of a node (rustls, the `ring` provider): the node's
//! certificate and key, the cluster CA bundle, the server configs for the client
//! ports (HTTP, gRPC) and the peer port (mutual TLS), the client config towards
//! peers, and the one identity peers check: the certificate's URI SAN
//! `spiffe://<cluster_name>/node/<id>`.
//!
//! [`Tls::reload`] (SIGHUP) reads the files again; connections made after it use
//! the new material, open ones keep theirs.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::types::NodeId;

/// Why TLS material did not load. Never carries key bytes.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {detail}")]
    File { path: PathBuf, detail: String },
    #[error("{0}")]
    Key(#[from] cairn_crypto::SecretFileError),
    #[error("tls: {0}")]
    Config(String),
}

/// The files one node's TLS is made of.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM bundle of trusted CAs.
    pub ca_file: PathBuf,
    /// This node's certificate chain (PEM), leaf first.
    pub cert_file: PathBuf,
    /// Its private key (PEM), mode 0600 or stricter.
    pub key_file: PathBuf,
}

/// Which port a server config is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// HTTP JSON API (ALPN `http/1.1`), no client certificate.
    Http,
    /// Client gRPC (ALPN `h2`), no client certificate.
    Grpc,
    /// Raft peers (ALPN `h2`): a certificate from the cluster CA is required.
    Peer,
}

/// One loaded generation of TLS material.
struct Material {
    http: Arc<ServerConfig>,
    grpc: Arc<ServerConfig>,
    peer_server: Arc<ServerConfig>,
    peer_client: Arc<ClientConfig>,
    /// The CA bundle, for clients built from this material.
    roots: Arc<RootCertStore>,
}

/// A node's TLS: the current material, and how to check a peer's identity.
pub struct Tls {
    cluster_name: String,
    /// Nodes whose certificates are accepted on the peer port: today the
    /// config's node list.
    members: BTreeSet<NodeId>,
    files: TlsFiles,
    current: RwLock<Arc<Material>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("cluster_name", &self.cluster_name)
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

/// The crypto provider every config uses: ring, with its default suites, which
/// are TLS 1.3's and, for 1.2, ECDHE with AES-GCM or ChaCha20-Poly1305 only
/// (rustls implements no CBC or RSA key exchange suites).
#[must_use]
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The SPIFFE id that names node `id` of `cluster`.
#[must_use]
pub fn spiffe_id(cluster: &str, id: NodeId) -> String {
    format!("spiffe://{cluster}/node/{id}")
}

impl Tls {
    /// Loads the material of `files`, for a node of `cluster_name` whose peers
    /// are `members`.
    ///
    /// # Errors
    /// A file is missing, unreadable or not PEM; the key file is readable by group
    /// or others; the certificate and key do not match.
    pub fn load(
        cluster_name: &str,
        members: BTreeSet<NodeId>,
        files: TlsFiles,
    ) -> Result<Self, TlsError> {
        let material = Material::load(&files)?;
        Ok(Self {
            cluster_name: cluster_name.to_owned(),
            members,
            files,
            current: RwLock::new(Arc::new(material)),
        })
    }

    /// Reads the files again; new connections use what they hold now.
    ///
    /// # Errors
    /// As [`Self::load`]; the material in use is then kept.
    pub fn reload(&self) -> Result<(), TlsError> {
        let material = Arc::new(Material::load(&self.files)?);
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = material;
        Ok(())
    }

    fn material(&self) -> Arc<Material> {
        Arc::clone(
            &self
                .current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// The server config for `port`, as loaded now.
    #[must_use]
    pub fn server_config(&self, port: Port) -> Arc<ServerConfig> {
        let m = self.material();
        Arc::clone(match port {
            Port::Http => &m.http,
            Port::Grpc => &m.grpc,
            Port::Peer => &m.peer_server,
        })
    }

    /// The client config towards peers (presents this node's certificate).
    #[must_use]
    pub fn peer_client_config(&self) -> Arc<ClientConfig> {
        Arc::clone(&self.material().peer_client)
    }

    /// The trusted CAs, as loaded now.
    #[must_use]
    pub fn roots(&self) -> Arc<RootCertStore> {
        Arc::clone(&self.material().roots)
    }

    #[must_use]
    pub fn cluster_name(&self) -> &str {
        &self.cluster_name
    }

    /// The node a verified peer certificate names, if it names exactly one node
    /// of this cluster that is a current member.
    ///
    /// # Errors
    /// Why the certificate names no member (for the log).
    pub fn member_of(&self, leaf: &CertificateDer<'_>) -> Result<NodeId, String> {
        let id = node_of_cert(leaf, &self.cluster_name)?;
        if self.members.contains(&id) {
            Ok(id)
        } else {
            Err(format!("node {id} is not a member of the cluster"))
        }
    }
}

impl Material {
    fn load(files: &TlsFiles) -> Result<Self, TlsError> {
        let roots = Arc::new(load_roots(&files.ca_file)?);
        let chain = load_chain(&files.cert_file)?;
        let key = load_key(&files.key_file)?;
        let provider = provider();
        let server = |alpn: &[&[u8]],
                      verifier: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>|
         -> Result<Arc<ServerConfig>, TlsError> {
            let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
                .with_protocol_versions(VERSIONS)
                .map_err(|e| TlsError::Config(e.to_string()))?;
            let builder = match verifier {
                Some(v) => builder.with_client_cert_verifier(v),
                None => builder.with_no_client_auth(),
            };
            let mut config = builder
                .with_single_cert(chain.clone(), key.clone_key())
                .map_err(|e| TlsError::File {
                    path: files.cert_file.clone(),
                    detail: format!("certificate and key do not go together: {e}"),
                })?;
            config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
            Ok(Arc::new(config))
        };
        let client_verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::clone(&roots), Arc::clone(&provider))
                .build()
                .map_err(|e| TlsError::Config(format!("peer certificate verifier: {e}")))?;
        let http = server(&[b"http/1.1"], None)?;
        let grpc = server(&[b"h2"], None)?;
        let peer_server = server(&[b"h2"], Some(client_verifier))?;
        let mut peer_client = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(VERSIONS)
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_root_certificates(Arc::clone(&roots))
            .with_client_auth_cert(chain, key)
            .map_err(|e| TlsError::File {
                path: files.cert_file.clone(),
                detail: format!("certificate and key do not go together: {e}"),
            })?;
        peer_client.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Self {
            http,
            grpc,
            peer_server,
            peer_client: Arc::new(peer_client),
            roots,
        })
    }
}

fn file_error(path: &Path, detail: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        detail: detail.to_string(),
    }
}

/// A client config for the cluster's client ports (no client certificate),
/// trusting exactly the CAs of `ca_file`, speaking `alpn`: what the CLI's own
/// connections use.
///
/// # Errors
/// As [`load_roots`].
pub fn client_config(ca_file: &Path, alpn: &[&[u8]]) -> Result<Arc<ClientConfig>, TlsError> {
    let roots = load_roots(ca_file)?;
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// The CAs of a PEM bundle (at least one).
///
/// # Errors
/// The file is unreadable, holds no certificate, or one that is not a CA.
pub fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let certs = load_chain(path)?;
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| file_error(path, format!("not a usable CA certificate: {e}")))?;
    }
    Ok(roots)
}

fn load_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(path, format!("cannot read certificates: {e}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(file_error(path, "holds no certificate"));
    }
    Ok(certs)
}

/// A private key from a PEM file of mode 0600 or stricter.
///
/// # Errors
/// The mode is looser, the file is unreadable, or it holds no private key.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = cairn_crypto::secret_file::read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|_| file_error(path, "holds no PEM private key"))
}

/// The server name to verify a peer's certificate against: the host of its
/// address (an IP SAN or a DNS SAN of the certificate).
///
/// # Errors
/// The host is neither an IP address nor a DNS name.
pub fn server_name(addr: &str) -> Result<ServerName<'static>, String> {
    let host = cairn_cluster_config::host_of(addr);
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(host.to_owned()).map_err(|e| format!("{addr}: {e}"))
}

/// The node id of a certificate whose only URI SAN is
/// `spiffe://<cluster>/node/<id>`. The certificate was verified against the CA
/// before this is asked; the parse is still bounded and total.
///
/// # Errors
/// No URI SAN, more than one, another cluster's, or not a node id.
pub fn node_of_cert(leaf: &CertificateDer<'_>, cluster: &str) -> Result<NodeId, String> {
    let uris = der::uri_sans(leaf).ok_or("certificate does not parse")?;
    let [uri] = uris.as_slice() else {
        return Err(format!(
            "certificate has {} URI SANs; exactly one (its SPIFFE id) is required",
            uris.len()
        ));
    };
    let uri = std::str::from_utf8(uri).map_err(|_| "URI SAN is not text")?;
    let prefix = format!("spiffe://{cluster}/node/");
    let id = uri
        .strip_prefix(&prefix)
        .ok_or_else(|| format!("URI SAN {uri:?} is not {prefix}<id>"))?;
    let node: NodeId = id
        .parse()
        .map_err(|_| format!("URI SAN {uri:?} does not end in a node id"))?;
    if node == 0 || id.starts_with('0') || id.starts_with('+') {
        return Err(format!("URI SAN {uri:?} does not end in a node id"));
    }
    Ok(node)
}

/// Just enough DER to read the URI SANs of an X.509 certificate.
mod der {
    const SEQUENCE: u8 = 0x30;
    const OID: u8 = 0x06;
    const BOOLEAN: u8 = 0x01;
    const OCTET_STRING: u8 = 0x04;
    const EXTENSIONS: u8 = 0xa3; // [3] EXPLICIT
    const URI: u8 = 0x86; // GeneralName uniformResourceIdentifier [6] IMPLICIT
    const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11]; // 2.5.29.17

    /// One TLV: (tag, contents, rest). Definite lengths of up to 4 bytes only.
    fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = input.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, &rest[n..])
        };
        if rest.len() < len {
            return None;
        }
        Some((tag, &rest[..len], &rest[len..]))
    }

    fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
        let (t, body, rest) = tlv(input)?;
        (t == tag).then_some((body, rest))
    }

    /// Every URI SAN of the certificate, or `None` if it does not parse.
    pub fn uri_sans(cert: &[u8]) -> Option<Vec<&[u8]>> {
        let (certificate, _) = expect(cert, SEQUENCE)?;
        let (mut tbs, _) = expect(certificate, SEQUENCE)?;
        let mut uris = Vec::new();
        while !tbs.is_empty() {
            let (tag, body, rest) = tlv(tbs)?;
            tbs = rest;
            if tag != EXTENSIONS {
                continue;
            }
            let (mut exts, _) = expect(body, SEQUENCE)?;
            while !exts.is_empty() {
                let (ext, rest) = expect(exts, SEQUENCE)?;
                exts = rest;
                let (oid, mut ext) = expect(ext, OID)?;
                if oid != SUBJECT_ALT_NAME {
                    continue;
                }
                if let Some((_, rest)) = expect(ext, BOOLEAN) {
                    ext = rest;
                }
                let (value, _) = expect(ext, OCTET_STRING)?;
                let (mut names, _) = expect(value, SEQUENCE)?;
                while !names.is_empty() {
                    let (tag, name, rest) = tlv(names)?;
                    names = rest;
                    if tag == URI {
                        uris.push(name);
                    }
                }
            }
        }
        Some(uris)
    }

    #[cfg(test)]
    mod tests {
        use super::tlv;

        #[test]
        fn lengths_past_the_input_do_not_parse() {
            assert!(tlv(&[0x30, 0x05, 1, 2]).is_none());
            assert!(tlv(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_none());
            assert!(tlv(&[0x30, 0x85, 0, 0, 0, 0, 1]).is_none());
            assert!(tlv(&[0x30]).is_none());
            assert_eq!(
                tlv(&[0x04, 0x01, 9, 7]),
                Some((0x04, &[9u8][..], &[7u8][..]))
            );
        }
    }
}
