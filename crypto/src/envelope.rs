//! Envelope encryption primitives: a tenant data key (DEK), HKDF-SHA256 purpose
//! subkeys, XChaCha20-Poly1305 sealing with a small versioned header and associated
//! data that binds a ciphertext to where it belongs, and keyed blind indexes.
//!
//! Sealed value layout (drawn in `docs/`, versioned by its first byte):
//!
//! ```text
//! [format u8 = 1][key_version u32 BE][nonce 24 bytes][ciphertext ‖ Poly1305 tag 16 bytes]
//! ```
//!
//! XChaCha20's 192-bit random nonces make nonce collisions negligible even after
//! billions of messages under one key, so nonces are drawn at random per seal.

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

pub const KEY_LEN: usize = 32;
const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + 4 + NONCE_LEN;

/// What a subkey is for. Each purpose has its own versioned HKDF `info` label, so
/// no two purposes ever share key material.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    ValueSealing,
    BlindIndex,
    TokenMac,
}

impl Purpose {
    fn info(self) -> &'static [u8] {
        match self {
            Self::ValueSealing => b"cairn/v1/value-sealing",
            Self::BlindIndex => b"cairn/v1/blind-index",
            Self::TokenMac => b"cairn/v1/token-mac",
        }
    }
}

/// Errors say what failed, never anything about keys or plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("decryption failed: the sealed value is corrupt, tampered with, or bound elsewhere")]
    DecryptionFailed,
    #[error("sealed value is truncated or malformed")]
    Malformed,
    #[error("unsupported sealed-value format {0}")]
    UnsupportedFormat(u8),
    #[error("sealed under key version {found}, but key version {expected} was supplied")]
    KeyVersionMismatch { found: u32, expected: u32 },
    #[error("encryption failed")]
    EncryptionFailed,
}

/// A tenant's data key (DEK): 32 random bytes, zeroized on drop, never printed.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct DataKey {
    bytes: [u8; KEY_LEN],
    #[zeroize(skip)]
    version: u32,
}

impl DataKey {
    /// A fresh random key from the OS CSPRNG.
    #[must_use]
    pub fn generate(version: u32) -> Self {
        let mut bytes = [0u8; KEY_LEN];
        OsRng.fill_bytes(&mut bytes);
        Self { bytes, version }
    }

    /// Takes ownership of key bytes (e.g. just unwrapped); the source is zeroized.
    #[must_use]
    pub fn from_bytes(bytes: &mut [u8; KEY_LEN], version: u32) -> Self {
        let key = Self {
            bytes: *bytes,
            version,
        };
        bytes.zeroize();
        key
    }

    #[must_use]
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The raw key, for wrapping under the KEK only.
    pub(crate) fn expose(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }

    /// The HKDF-SHA256 subkey for `purpose` (salt-less: the DEK is uniformly random).
    #[must_use]
    pub fn subkey(&self, purpose: Purpose) -> SubKey {
        let hk = Hkdf::<Sha256>::new(None, &self.bytes);
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        hk.expand(purpose.info(), out.as_mut())
            .expect("32 bytes is within HKDF-SHA256's 8160-byte output limit");
        SubKey {
            bytes: out,
            version: self.version,
        }
    }
}

/// A purpose subkey with the version of the DEK it came from.
pub struct SubKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
    version: u32,
}

/// What a sealed value is bound to. Encoded unambiguously (length-prefixed), with
/// the key version, as the AEAD's associated data: a ciphertext moved to another
/// tenant, group or key fails to open.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    pub tenant: &'a str,
    pub group: u64,
    pub key_path: &'a [u8],
}

impl Binding<'_> {
    fn encode(&self, key_version: u32) -> Vec<u8> {
        let mut aad = Vec::with_capacity(32 + self.tenant.len() + self.key_path.len());
        aad.extend_from_slice(b"cairn/v1/aad");
        aad.extend_from_slice(&(self.tenant.len() as u64).to_be_bytes());
        aad.extend_from_slice(self.tenant.as_bytes());
        aad.extend_from_slice(&self.group.to_be_bytes());
        aad.extend_from_slice(&(self.key_path.len() as u64).to_be_bytes());
        aad.extend_from_slice(self.key_path);
        aad.extend_from_slice(&key_version.to_be_bytes());
        aad
    }
}

impl SubKey {
    #[must_use]
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Seals `plaintext` bound to `binding`.
    ///
    /// # Errors
    /// [`CryptoError::EncryptionFailed`] (only if the AEAD refuses the input size).
    pub fn seal(&self, binding: &Binding<'_>, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        seal_raw(
            &self.bytes,
            self.version,
            &binding.encode(self.version),
            plaintext,
        )
    }

    /// Opens a value sealed by [`SubKey::seal`] under the same binding.
    ///
    /// # Errors
    /// Malformed or truncated input, an unknown format, a key-version mismatch, or
    /// any tampering (a flipped bit, another binding) as `DecryptionFailed`.
    pub fn open(
        &self,
        binding: &Binding<'_>,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        open_raw(
            &self.bytes,
            self.version,
            &binding.encode(self.version),
            sealed,
        )
    }

    /// HMAC-SHA256 of `data`: a blind index (equal inputs give equal outputs under
    /// one key, and nothing about the input is revealed without the key).
    #[must_use]
    pub fn mac(&self, data: &[u8]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.bytes.as_ref())
            .expect("HMAC accepts keys of any length");
        mac.update(data);
        mac.finalize().into_bytes().into()
    }
}

/// Seals `plaintext` under `key` with associated data `aad`, in the versioned
/// envelope format (shared by value sealing and DEK wrapping).
pub(crate) fn seal_raw(
    key: &[u8; KEY_LEN],
    version: u32,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let ct = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| CryptoError::EncryptionFailed)?;
    let mut out = Vec::with_capacity(HEADER_LEN + ct.len());
    out.push(FORMAT_V1);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Opens an envelope sealed by [`seal_raw`] under the same key, version and `aad`.
pub(crate) fn open_raw(
    key: &[u8; KEY_LEN],
    version: u32,
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let found = sealed_key_version(sealed)?;
    if found != version {
        return Err(CryptoError::KeyVersionMismatch {
            found,
            expected: version,
        });
    }
    let nonce = XNonce::from_slice(&sealed[5..HEADER_LEN]);
    let cipher = XChaCha20Poly1305::new(key.into());
    cipher
        .decrypt(
            nonce,
            Payload {
                msg: &sealed[HEADER_LEN..],
                aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::DecryptionFailed)
}

/// The key version a sealed value names (to pick the right DEK before opening).
///
/// # Errors
/// Truncated input or an unknown format.
pub fn sealed_key_version(sealed: &[u8]) -> Result<u32, CryptoError> {
    if sealed.len() < HEADER_LEN + TAG_LEN {
        return Err(CryptoError::Malformed);
    }
    if sealed[0] != FORMAT_V1 {
        return Err(CryptoError::UnsupportedFormat(sealed[0]));
    }
    let mut v = [0u8; 4];
    v.copy_from_slice(&sealed[1..5]);
    Ok(u32::from_be_bytes(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(version: u32) -> DataKey {
        let mut bytes = [9u8; KEY_LEN];
        DataKey::from_bytes(&mut bytes, version)
    }

    const B: Binding<'static> = Binding {
        tenant: "acme",
        group: 1,
        key_path: b"kv/greeting",
    };

    #[test]
    fn round_trip() {
        let k = key(1).subkey(Purpose::ValueSealing);
        let sealed = k.seal(&B, b"hello").expect("seal");
        assert_eq!(sealed.len(), HEADER_LEN + 5 + TAG_LEN);
        assert_eq!(k.open(&B, &sealed).expect("open").as_slice(), b"hello");
        let empty = k.seal(&B, b"").expect("seal");
        assert!(k.open(&B, &empty).expect("open").is_empty());
        assert_ne!(k.seal(&B, b"hello").expect("seal"), sealed, "random nonces");
    }

    #[test]
    fn every_binding_component_matters() {
        let k = key(1).subkey(Purpose::ValueSealing);
        let sealed = k.seal(&B, b"secret").expect("seal");
        let others = [
            Binding {
                tenant: "acme2",
                ..B
            },
            Binding { group: 2, ..B },
            Binding {
                key_path: b"kv/other",
                ..B
            },
            // Length prefixes: moving bytes between fields changes the AAD.
            Binding {
                tenant: "acmek",
                key_path: b"v/greeting",
                ..B
            },
        ];
        for other in &others {
            assert_eq!(
                k.open(other, &sealed),
                Err(CryptoError::DecryptionFailed),
                "{other:?}"
            );
        }
    }

    #[test]
    fn any_bit_flip_or_truncation_fails_cleanly() {
        let k = key(1).subkey(Purpose::ValueSealing);
        let sealed = k.seal(&B, b"tamper me").expect("seal");
        for i in 0..sealed.len() {
            for bit in 0..8 {
                let mut t = sealed.clone();
                t[i] ^= 1 << bit;
                assert!(k.open(&B, &t).is_err(), "flip byte {i} bit {bit}");
            }
        }
        for len in 0..sealed.len() {
            assert!(k.open(&B, &sealed[..len]).is_err(), "truncated to {len}");
        }
    }

    #[test]
    fn wrong_key_version_is_a_clear_error() {
        let sealed = key(1)
            .subkey(Purpose::ValueSealing)
            .seal(&B, b"v")
            .expect("seal");
        let err = key(2)
            .subkey(Purpose::ValueSealing)
            .open(&B, &sealed)
            .expect_err("v2");
        assert_eq!(
            err,
            CryptoError::KeyVersionMismatch {
                found: 1,
                expected: 2
            }
        );
        assert_eq!(sealed_key_version(&sealed), Ok(1));
        // Same version number, different key bytes: tamper, not garbage.
        let other = DataKey::generate(1).subkey(Purpose::ValueSealing);
        assert_eq!(other.open(&B, &sealed), Err(CryptoError::DecryptionFailed));
    }

    #[test]
    fn purposes_give_distinct_subkeys() {
        let k = key(1);
        let a = k.subkey(Purpose::ValueSealing).mac(b"x");
        let b = k.subkey(Purpose::BlindIndex).mac(b"x");
        let c = k.subkey(Purpose::TokenMac).mac(b"x");
        assert!(a != b && b != c && a != c);
        assert_eq!(k.subkey(Purpose::BlindIndex).mac(b"x"), b, "deterministic");
        assert_ne!(key(1).subkey(Purpose::BlindIndex).mac(b"y"), b);
    }

    #[test]
    fn hkdf_sha256_matches_rfc5869_test_case_1() {
        let ikm = [0x0bu8; 22];
        let salt: Vec<u8> = (0x00..=0x0c).collect();
        let info: Vec<u8> = (0xf0..=0xf9).collect();
        let mut okm = [0u8; 42];
        Hkdf::<Sha256>::new(Some(&salt), &ikm)
            .expand(&info, &mut okm)
            .expect("expand");
        let hex: String = okm.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        );
    }
}
