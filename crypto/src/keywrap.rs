//! Wrapping tenant data keys (DEKs) under the cluster master key (KEK), and the
//! KEK's public fingerprint.
//!
//! A wrapped DEK uses the sealed-value envelope (`docs/envelope.md`) with the KEK
//! version in its header and associated data that binds it to its tenant and DEK
//! version: a wrapped key copied to another tenant or version fails to unwrap.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::envelope::{open_raw, seal_raw, CryptoError, DataKey, KEY_LEN};
use crate::MasterKey;

/// What a wrapped DEK belongs to.
#[derive(Debug, Clone, Copy)]
pub struct WrapBinding<'a> {
    pub tenant_id: &'a str,
    pub dek_version: u32,
    pub kek_version: u32,
}

impl WrapBinding<'_> {
    fn encode(&self) -> Vec<u8> {
        let mut aad = Vec::with_capacity(40 + self.tenant_id.len());
        aad.extend_from_slice(b"cairn/v1/dek-wrap");
        aad.extend_from_slice(&(self.tenant_id.len() as u64).to_be_bytes());
        aad.extend_from_slice(self.tenant_id.as_bytes());
        aad.extend_from_slice(&self.dek_version.to_be_bytes());
        aad.extend_from_slice(&self.kek_version.to_be_bytes());
        aad
    }
}

impl MasterKey {
    /// A public, stable name for this key: 16 hex digits of an HMAC of a fixed label
    /// under the key. Tells nodes and operators which KEK wrapped a DEK without
    /// revealing anything about the key.
    #[must_use]
    pub fn fingerprint(&self) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.expose())
            .expect("HMAC accepts keys of any length");
        mac.update(b"cairn/v1/kek-fingerprint");
        let tag = mac.finalize().into_bytes();
        tag[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Wraps `dek` (its version is taken from the key) for `binding`.
    ///
    /// # Errors
    /// `binding.dek_version` differs from the key's version, or the AEAD fails.
    pub fn wrap(&self, dek: &DataKey, binding: &WrapBinding<'_>) -> Result<Vec<u8>, CryptoError> {
        if dek.version() != binding.dek_version {
            return Err(CryptoError::KeyVersionMismatch {
                found: dek.version(),
                expected: binding.dek_version,
            });
        }
        seal_raw(
            self.expose(),
            binding.kek_version,
            &binding.encode(),
            dek.expose(),
        )
    }

    /// Unwraps a DEK wrapped by [`MasterKey::wrap`] under this key and `binding`.
    ///
    /// # Errors
    /// Another KEK, another binding, tampering or truncation.
    pub fn unwrap_key(
        &self,
        wrapped: &[u8],
        binding: &WrapBinding<'_>,
    ) -> Result<DataKey, CryptoError> {
        let plain = open_raw(
            self.expose(),
            binding.kek_version,
            &binding.encode(),
            wrapped,
        )?;
        let mut bytes: [u8; KEY_LEN] = plain
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::Malformed)?;
        Ok(DataKey::from_bytes(&mut bytes, binding.dek_version))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Purpose;

    const B: WrapBinding<'static> = WrapBinding {
        tenant_id: "t1",
        dek_version: 1,
        kek_version: 1,
    };

    #[test]
    fn wrap_round_trip_keeps_the_key() {
        let kek = MasterKey::generate();
        let dek = DataKey::generate(1);
        let wrapped = kek.wrap(&dek, &B).expect("wrap");
        let back = kek.unwrap_key(&wrapped, &B).expect("unwrap");
        assert_eq!(back.version(), 1);
        assert_eq!(
            back.subkey(Purpose::BlindIndex).mac(b"x"),
            dek.subkey(Purpose::BlindIndex).mac(b"x")
        );
    }

    #[test]
    fn wrapped_key_is_bound_to_tenant_versions_and_kek() {
        let kek = MasterKey::generate();
        let wrapped = kek.wrap(&DataKey::generate(1), &B).expect("wrap");
        for other in [
            WrapBinding {
                tenant_id: "t2",
                ..B
            },
            WrapBinding {
                dek_version: 2,
                ..B
            },
        ] {
            assert_eq!(
                kek.unwrap_key(&wrapped, &other).err(),
                Some(CryptoError::DecryptionFailed)
            );
        }
        assert_eq!(
            kek.unwrap_key(
                &wrapped,
                &WrapBinding {
                    kek_version: 2,
                    ..B
                }
            )
            .err(),
            Some(CryptoError::KeyVersionMismatch {
                found: 1,
                expected: 2
            })
        );
        let other_kek = MasterKey::generate();
        assert_eq!(
            other_kek.unwrap_key(&wrapped, &B).err(),
            Some(CryptoError::DecryptionFailed)
        );
        let mut flipped = wrapped.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(kek.unwrap_key(&flipped, &B).is_err());
        assert!(
            kek.wrap(&DataKey::generate(2), &B).is_err(),
            "version mismatch"
        );
    }

    #[test]
    fn fingerprint_is_stable_distinct_and_not_the_key() {
        let a = MasterKey::generate();
        let b = MasterKey::generate();
        assert_eq!(a.fingerprint(), a.fingerprint());
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint().len(), 16);
        let hex: String = a.expose().iter().map(|x| format!("{x:02x}")).collect();
        assert!(!hex.contains(&a.fingerprint()));
    }
}
