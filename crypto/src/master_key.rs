//! The master key (KEK): loaded exactly 32 bytes from a file of mode 0600 or stricter, held zeroized.

use std::path::Path;

use zeroize::Zeroizing;

use crate::secret_file::{self, SecretFileError};

pub const MASTER_KEY_LEN: usize = 32;

/// The cluster master key (KEK). Held zeroized; deliberately not `Debug`, `Display`
/// or `Clone`, so it cannot end up in a log line or a stray copy.
pub struct MasterKey(Zeroizing<[u8; MASTER_KEY_LEN]>);

impl MasterKey {
    /// Loads the KEK: exactly 32 raw bytes, from a file of mode 0600 or stricter.
    ///
    /// # Errors
    /// Missing or unreadable file, loose permissions, or wrong length.
    pub fn load(path: &Path) -> Result<Self, SecretFileError> {
        let bytes = secret_file::read(path)?;
        let mut key = Zeroizing::new([0u8; MASTER_KEY_LEN]);
        if bytes.len() != MASTER_KEY_LEN {
            return Err(SecretFileError::Invalid {
                path: path.to_path_buf(),
                reason: format!(
                    "master key must be exactly {MASTER_KEY_LEN} bytes, found {} \
                     (create one with `head -c 32 /dev/urandom > FILE && chmod 600 FILE`)",
                    bytes.len()
                ),
            });
        }
        key.copy_from_slice(&bytes);
        Ok(Self(key))
    }

    /// A fresh random key (tests and tooling; operators create key files).
    #[must_use]
    pub fn generate() -> Self {
        use rand::RngCore;
        let mut key = Zeroizing::new([0u8; MASTER_KEY_LEN]);
        rand::rngs::OsRng.fill_bytes(key.as_mut());
        Self(key)
    }

    /// The key bytes, for the key-wrapping code only.
    pub(crate) fn expose(&self) -> &[u8; MASTER_KEY_LEN] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret_file::test_support::write;

    #[test]
    fn loads_a_32_byte_0600_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(&dir, "k", &[7u8; 32], 0o600);
        let key = MasterKey::load(&path).expect("load");
        assert_eq!(key.expose(), &[7u8; 32]);
    }

    #[test]
    fn refuses_wrong_length() {
        let dir = tempfile::tempdir().expect("tempdir");
        for len in [0, 31, 33, 64] {
            let path = write(&dir, "k", &vec![1u8; len], 0o600);
            let err = MasterKey::load(&path).err().expect("refused");
            assert!(err.to_string().contains("exactly 32 bytes"), "{err}");
        }
    }

    #[test]
    fn refuses_group_or_world_readable_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        for mode in [0o640, 0o604, 0o644, 0o660] {
            let path = write(&dir, "k", &[1u8; 32], mode);
            let err = MasterKey::load(&path).err().expect("refused");
            assert!(matches!(err, SecretFileError::Permissions { .. }), "{err}");
        }
        let path = write(&dir, "k", &[1u8; 32], 0o400);
        assert!(MasterKey::load(&path).is_ok(), "0400 is stricter than 0600");
    }

    #[test]
    fn refuses_missing_file_without_leaking_contents() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = MasterKey::load(&dir.path().join("absent"))
            .err()
            .expect("refused");
        assert!(matches!(err, SecretFileError::Io { .. }));
        let path = write(&dir, "k", b"super-secret-but-wrong-length", 0o600);
        let err = MasterKey::load(&path).err().expect("refused");
        assert!(!err.to_string().contains("super-secret"));
    }
}
