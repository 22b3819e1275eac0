//! A node's peer port as an attacker sees it: a raw mutual-TLS client of
//! `cairn.peer.v1.Peer` that presents whatever the test chooses (no
//! certificate, a member's, or one it forged with rcgen), and sends any
//! `GroupMessage` it likes, `from` included.
//!
//! - [`Identity`] — a certificate chain and key to present: a member's files
//!   (`tls/node-<id>.pem`), or a node certificate forged under an [`Issuer`]:
//!   the cluster's own CA key ([`cluster_ca`]) or a CA of the attacker's
//!   ([`rogue_ca`]), currently valid or long expired.
//! - [`RawPeer`] — a peer client over the test's own TLS connector (it verifies
//!   the node against the cluster CA, as any client would, and nothing more).

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cairn_node::cli::certs::{ca_params, node_cert_params};
use cairn_raft::proto::peer_client::PeerClient;
use cairn_raft::proto::GroupMessage;
use rcgen::{Issuer, KeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tonic::transport::{Channel, Endpoint};

/// What one peer call may take, connection included.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A certificate chain (leaf first) and its private key, to present as a
/// client certificate.
pub struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

/// Whether a forged certificate is valid now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// rcgen's default window (1975 to 4096).
    Current,
    /// Valid during 2020 only.
    Expired,
}

impl Identity {
    /// Node `id`'s own certificate and key in a TLS test cluster's dir (the
    /// files `cairn certs init` wrote).
    ///
    /// # Panics
    /// If the files are missing or not PEM.
    #[must_use]
    pub fn member(dir: &Path, id: u64) -> Self {
        let cert = dir.join(format!("tls/node-{id}.pem"));
        let key = dir.join(format!("tls/node-{id}-key.pem"));
        Self {
            chain: CertificateDer::pem_file_iter(&cert)
                .unwrap_or_else(|e| panic!("{}: {e}", cert.display()))
                .collect::<Result<_, _>>()
                .unwrap_or_else(|e| panic!("{}: {e}", cert.display())),
            key: PrivateKeyDer::from_pem_file(&key)
                .unwrap_or_else(|e| panic!("{}: {e}", key.display())),
        }
    }

    /// A certificate for node `id` of `cluster` as `cairn certs` makes one (its
    /// SPIFFE id, an IP SAN for `host`, serverAuth and clientAuth), with a new
    /// key, signed by `issuer`.
    ///
    /// # Panics
    /// If rcgen refuses the parameters.
    #[must_use]
    pub fn forged(
        issuer: &Issuer<'_, KeyPair>,
        cluster: &str,
        id: u64,
        host: IpAddr,
        validity: Validity,
    ) -> Self {
        let mut params = node_cert_params(cluster, id, &[&host.to_string()])
            .expect("node certificate parameters");
        if validity == Validity::Expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().expect("node key");
        let cert = params
            .signed_by(&key, issuer)
            .expect("sign the certificate");
        Self {
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        }
    }
}

/// The cluster's own CA, from its key in a TLS test cluster's dir
/// (`tls/ca-key.pem`).
///
/// # Panics
/// If the key is missing or not PEM.
#[must_use]
pub fn cluster_ca(dir: &Path, cluster: &str) -> Issuer<'static, KeyPair> {
    let path = dir.join("tls/ca-key.pem");
    let pem = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Issuer::new(
        ca_params(cluster),
        KeyPair::from_pem(&pem).expect("the CA key"),
    )
}

/// A CA of the attacker's: the same name as the cluster's dev CA, another key
/// (only the signature tells its certificates apart).
///
/// # Panics
/// If no key can be generated.
#[must_use]
pub fn rogue_ca(cluster: &str) -> Issuer<'static, KeyPair> {
    Issuer::new(
        ca_params(cluster),
        KeyPair::generate().expect("rogue CA key"),
    )
}

/// A peer RPC a [`RawPeer`] can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rpc {
    Vote,
    ForwardBatch,
    Query,
    GroupState,
    Admit,
}

/// A client of one node's peer port over the test's own TLS connection,
/// connected on its first call.
pub struct RawPeer {
    client: PeerClient<Channel>,
}

impl RawPeer {
    /// A client of the peer port at `addr` (`127.0.0.1:port`) that trusts the
    /// CAs of `ca_pem` and presents `identity` (or no certificate). Needs a
    /// runtime.
    ///
    /// # Panics
    /// If `ca_pem` holds no usable CA, or `identity`'s key does not fit.
    #[must_use]
    pub fn connect(addr: &str, ca_pem: &[u8], identity: Option<&Identity>) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem) {
            roots.add(cert.expect("CA PEM")).expect("CA certificate");
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots);
        let mut config = match identity {
            Some(id) => builder
                .with_client_auth_cert(id.chain.clone(), id.key.clone_key())
                .expect("client certificate and key"),
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        let config = Arc::new(config);
        let host = cairn_cluster_config::host_of(addr).to_owned();
        let target = addr.to_owned();
        let connector = tower::service_fn(move |_: tonic::transport::Uri| {
            let config = Arc::clone(&config);
            let target = target.clone();
            let name = ServerName::try_from(host.clone());
            async move {
                let name = name.map_err(std::io::Error::other)?;
                let tcp = tokio::net::TcpStream::connect(&target).await?;
                let tls = tokio_rustls::TlsConnector::from(config)
                    .connect(name, tcp)
                    .await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
            }
        });
        // The scheme stays http: TLS is the connector's, below HTTP/2.
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .expect("peer address")
            .connect_timeout(CALL_TIMEOUT)
            .timeout(CALL_TIMEOUT)
            .connect_with_connector_lazy(connector);
        Self {
            client: PeerClient::new(channel),
        }
    }

    /// Sends `rpc` for `group`, claiming to come from node `from`; returns the
    /// reply's payload (bincode, as `cairn_storage::codec` decodes it).
    ///
    /// # Errors
    /// The call's status: a refusal, or the connection's failure.
    pub async fn call(
        &self,
        rpc: Rpc,
        group: u64,
        from: u64,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, tonic::Status> {
        let mut client = self.client.clone();
        let mut request = tonic::Request::new(GroupMessage {
            group,
            from,
            hops: 0,
            payload,
        });
        request.set_timeout(CALL_TIMEOUT);
        let call = async {
            match rpc {
                Rpc::Vote => client.vote(request).await,
                Rpc::ForwardBatch => client.forward_batch(request).await,
                Rpc::Query => client.query(request).await,
                Rpc::GroupState => client.group_state(request).await,
                Rpc::Admit => client.admit(request).await,
            }
        };
        let reply = tokio::time::timeout(CALL_TIMEOUT + Duration::from_secs(1), call)
            .await
            .map_err(|_| tonic::Status::deadline_exceeded("peer call timed out in the test"))??;
        Ok(reply.into_inner().payload)
    }
}
