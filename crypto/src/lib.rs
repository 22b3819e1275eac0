//! Cairn cryptography: key material and secrets, loaded from files with their
//! permissions checked, held zeroized, compared in constant time.
//!
//! Layout:
//! - [`MasterKey`]: the cluster key-encryption key (KEK), 32 bytes from a 0600 file.
//! - [`AdminToken`]: the operator bearer token, from a 0600 file; verification in
//!   constant time.
//! - [`secret_file`]: the shared file loader (mode check, no secret in errors).
//! - [`envelope`]: tenant data keys, HKDF purpose subkeys, XChaCha20-Poly1305
//!   sealing bound to (tenant, group, key path, key version), blind indexes.
//! - [`keywrap`]: DEKs wrapped under the KEK, bound to (tenant, DEK version, KEK
//!   version); the KEK's public fingerprint.
//! - [`jwt`]: access tokens as strict compact JWS, EdDSA (Ed25519) only; RFC 7638
//!   key ids and the public JWK.
//! - [`password`]: Argon2id password hashing (OWASP parameters, PHC strings).
//! - [`token`]: opaque bearer secrets: refresh tokens as a keyed forward hash chain,
//!   tenant API keys; only their hashes are stored.
//! - [`webhook`]: Standard Webhooks secrets (`whsec_`) and `v1` signatures.
//!
//! Pure: no network, no storage. Errors never contain key bytes or secrets.

mod admin_token;
pub mod envelope;
pub mod jwt;
pub mod keywrap;
mod master_key;
pub mod password;
pub mod secret_file;
pub mod token;
pub mod webhook;

pub use admin_token::AdminToken;
pub use master_key::{MasterKey, MASTER_KEY_LEN};
pub use secret_file::SecretFileError;

/// Compares two byte strings in constant time (with respect to their contents; the
/// lengths are hashed first so a length mismatch is not a shortcut either).
#[must_use]
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    use subtle::ConstantTimeEq;
    let ha = Sha256::digest(a);
    let hb = Sha256::digest(b);
    ha.ct_eq(&hb).into()
}

/// `n` random bytes from the operating system's CSPRNG, hex-encoded.
#[must_use]
pub fn random_hex(n: usize) -> String {
    use rand::RngCore;
    let mut buf = zeroize::Zeroizing::new(vec![0u8; n]);
    rand::rngs::OsRng.fill_bytes(&mut buf);
    let mut out = String::with_capacity(n * 2);
    for b in buf.iter() {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 0xf)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_contents_and_length() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn random_hex_is_random_and_sized() {
        let a = random_hex(16);
        let b = random_hex(16);
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
