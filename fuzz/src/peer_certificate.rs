//! Fuzz target `peer_certificate`: reading a node id from a peer's certificate
//! (`cairn_raft::tls::node_of_cert`, the small DER walk over its URI SANs).
//!
//! The walk runs only on certificates the CA verified, but it is still fed
//! bytes from outside the node, so it must be total.
//!
//! Properties:
//! - It never panics, whatever the bytes.
//! - When it names node `n`, the input holds the URI `spiffe://test/node/<n>`
//!   verbatim (the id is read from the certificate, never made up), and `n` is a
//!   node id (not 0).
//! - On certificates made as `cairn certs` makes them it names exactly their
//!   node, and it refuses one with no URI SAN, two of them, or another
//!   cluster's (checked in the tests below).

use cairn_raft::tls::node_of_cert;
use rcgen::{CertificateParams, KeyPair, SanType};
use rustls_pki_types::CertificateDer;

/// The cluster name the target checks against.
const CLUSTER: &str = "test";

pub fn run(data: &[u8]) {
    let cert = CertificateDer::from(data);
    if let Ok(node) = node_of_cert(&cert, CLUSTER) {
        assert_ne!(node, 0, "node 0 is no node");
        let uri = format!("spiffe://{CLUSTER}/node/{node}");
        assert!(
            data.windows(uri.len()).any(|w| w == uri.as_bytes()),
            "named node {node} without {uri} in the certificate"
        );
    }
}

/// A self-signed certificate with these URI SANs (and an IP SAN, as node
/// certificates have).
fn cert_with(uris: &[&str]) -> Vec<u8> {
    let mut params = CertificateParams::default();
    for uri in uris {
        params.subject_alt_names.push(SanType::URI(
            (*uri).to_owned().try_into().expect("an IA5 string"),
        ));
    }
    params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    let key = KeyPair::generate().expect("key");
    params.self_signed(&key).expect("sign").der().to_vec()
}

pub fn seeds() -> Vec<(String, Vec<u8>)> {
    vec![
        ("node-1".to_owned(), cert_with(&["spiffe://test/node/1"])),
        ("node-42".to_owned(), cert_with(&["spiffe://test/node/42"])),
        ("no-uri".to_owned(), cert_with(&[])),
        (
            "two-uris".to_owned(),
            cert_with(&["spiffe://test/node/1", "spiffe://test/node/2"]),
        ),
        (
            "other-cluster".to_owned(),
            cert_with(&["spiffe://prod/node/1"]),
        ),
        (
            "leading-zero".to_owned(),
            cert_with(&["spiffe://test/node/01"]),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_name_exactly_their_node_or_are_refused() {
        let named: Vec<(String, Option<u64>)> = seeds()
            .into_iter()
            .map(|(name, der)| {
                let node = node_of_cert(&CertificateDer::from(der), CLUSTER).ok();
                (name, node)
            })
            .collect();
        let expect = [
            ("node-1", Some(1)),
            ("node-42", Some(42)),
            ("no-uri", None),
            ("two-uris", None),
            ("other-cluster", None),
            ("leading-zero", None),
        ];
        for ((name, got), (want_name, want)) in named.iter().zip(expect) {
            assert_eq!(name, want_name);
            assert_eq!(*got, want, "{name}");
        }
    }

    #[test]
    fn truncated_certificates_are_refused_without_panicking() {
        let der = cert_with(&["spiffe://test/node/7"]);
        for len in 0..der.len() {
            run(&der[..len]);
        }
    }
}
