//! Tenant API keys in the `meta` group: only a hash of each key is stored, with its
//! scopes. A key exists only for an existing tenant, and goes with it when the
//! tenant is deleted (`sm::tenants`, through the keyspace).

use serde::{Deserialize, Serialize};

pub mod apply;
pub mod read;

/// A tenant API key: only its hash is stored.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub id: String,
    pub tenant_id: String,
    /// The key's hash (SHA-256 over the domain-separated id and secret).
    pub hash: Vec<u8>,
    /// Sorted, no duplicates: a subset of `read`, `write`, `manage`, `delete`.
    pub scopes: Vec<String>,
    pub created_at: u64,
}

/// Hashes are not secrets, but they stay out of logs all the same.
impl std::fmt::Debug for ApiKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyRecord")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("scopes", &self.scopes)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// Adds an API key to its tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddApiKey(pub ApiKeyRecord);

/// Revokes (deletes) a tenant's API key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeApiKey {
    pub tenant_id: String,
    pub key_id: String,
}

/// Reads an API key with its tenant and the master key state, at one index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetApiKey {
    pub key_id: String,
}

/// What [`AddApiKey`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddApiKeyOutcome {
    ApiKeyAdded,
    TenantNotFound,
    /// A random id collided with an existing one; nothing changed.
    IdCollision,
}

/// What [`RevokeApiKey`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeApiKeyOutcome {
    ApiKeyRevoked,
    /// No such key, or another tenant's.
    ApiKeyNotFound,
}
