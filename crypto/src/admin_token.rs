//! The operator's admin token: loaded from a file of mode 0600 or stricter, compared in constant time, never printed.

use std::path::Path;

use zeroize::Zeroizing;

use crate::secret_file::{self, SecretFileError};

/// Shortest operator token accepted (characters); 32 hex characters = 128 bits.
const MIN_LEN: usize = 32;

/// The operator's admin bearer token. Not `Debug`/`Display`: it never reaches a log.
pub struct AdminToken(Zeroizing<String>);

impl AdminToken {
    /// Loads the token from a 0600 file; surrounding whitespace is ignored.
    ///
    /// # Errors
    /// Missing file, loose permissions, not UTF-8, or shorter than 32 characters.
    pub fn load(path: &Path) -> Result<Self, SecretFileError> {
        let bytes = secret_file::read(path)?;
        let invalid = |reason: &str| SecretFileError::Invalid {
            path: path.to_path_buf(),
            reason: reason.to_owned(),
        };
        let text = std::str::from_utf8(&bytes).map_err(|_| invalid("admin token is not UTF-8"))?;
        let token = text.trim();
        if token.len() < MIN_LEN || token.chars().any(char::is_whitespace) {
            return Err(invalid(
                "admin token must be at least 32 characters without whitespace",
            ));
        }
        Ok(Self(Zeroizing::new(token.to_owned())))
    }

    /// Constant-time check of a presented token.
    #[must_use]
    pub fn verify(&self, presented: &str) -> bool {
        crate::constant_time_eq(self.0.as_bytes(), presented.as_bytes())
    }

    /// The token itself, for clients (`cairn status`) that must present it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret_file::test_support::write;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn loads_and_verifies() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(&dir, "t", format!("{TOKEN}\n").as_bytes(), 0o600);
        let token = AdminToken::load(&path).expect("load");
        assert!(token.verify(TOKEN));
        assert!(!token.verify("0123456789abcdef0123456789abcdeX"));
        assert!(!token.verify(""));
    }

    #[test]
    fn refuses_short_token_and_loose_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(&dir, "t", b"short", 0o600);
        assert!(AdminToken::load(&path).is_err());
        let path = write(&dir, "t", TOKEN.as_bytes(), 0o644);
        assert!(matches!(
            AdminToken::load(&path),
            Err(SecretFileError::Permissions { .. })
        ));
    }
}
