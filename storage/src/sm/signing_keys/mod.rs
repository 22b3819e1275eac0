//! A tenant's token signing keys in the `meta` group: the private halves sealed
//! under the tenant's data key by the node before proposing. A rotation keeps the
//! retired public keys (for verifiers) until every token they signed has expired.

use serde::{Deserialize, Serialize};

pub mod apply;
pub mod read;
pub mod rules;

/// One token signing key of a tenant.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKeyRecord {
    /// The JWK thumbprint of the public key (the JWT header's `kid`).
    pub kid: String,
    /// Ed25519 public key, 32 bytes.
    pub public: Vec<u8>,
    /// The private key, sealed under the tenant's data key by the proposing node.
    pub sealed_private: Vec<u8>,
    pub created_at: u64,
    /// When a newer key replaced it (it then only verifies, never signs).
    pub retired_at: Option<u64>,
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

/// A tenant's signing keys, oldest first; the last one signs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKeys {
    pub keys: Vec<SigningKeyRecord>,
}

impl SigningKeys {
    #[must_use]
    pub fn current(&self) -> Option<&SigningKeyRecord> {
        self.keys.last()
    }
}

/// Makes `key` the signing key; the previous one is retired at `at`, and keys
/// retired before `at - keep_retired_secs` are dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotateSigningKey {
    pub tenant_id: String,
    pub key: SigningKeyRecord,
    pub at: u64,
    pub keep_retired_secs: u64,
}

/// Reads a tenant's signing keys (empty if none or no such tenant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetSigningKeys {
    pub tenant_id: String,
}

/// What [`RotateSigningKey`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotateSigningKeyOutcome {
    SigningKeyRotated(SigningKeys),
    TenantNotFound,
    /// The key's `kid` is already one of the tenant's; nothing changed.
    IdCollision,
}
