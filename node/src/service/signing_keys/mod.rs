//! Tenants' token signing keys as the API shows them: the public JWKS (no
//! credentials needed) and the operator's rotation. The keys themselves, and
//! signing, are `core`'s (sessions sign with them).

use cairn_crypto::jwt;
use cairn_storage::SigningKeys;

use super::core::{public_bytes, Call, Core};
use crate::error::ServiceError;

/// The public JSON Web Key Set of a tenant.
#[derive(Debug)]
pub struct Jwks {
    pub keys: Vec<serde_json::Value>,
}

/// The tenants' public keys, and their rotation.
#[derive(Clone)]
pub struct SigningKeyService {
    core: Core,
}

impl SigningKeyService {
    #[must_use]
    pub fn new(core: Core) -> Self {
        Self { core }
    }

    /// Rotates tenant `tenant_id`'s token signing key (operator); returns the new
    /// JWKS. The retired public key stays published until its tokens expire.
    ///
    /// # Errors
    /// Not the operator, unknown tenant, keys unavailable.
    pub async fn rotate(&self, call: &Call, tenant_id: &str) -> Result<Jwks, ServiceError> {
        call.operator()?;
        let keys = self
            .core
            .tenant_keys_by_id(tenant_id)
            .await?
            .ok_or(ServiceError::TenantNotFound)?;
        let records = self.core.rotate_signing_key(call.into(), &keys).await?;
        Ok(jwks_of(&records))
    }

    /// The public keys of tenant `tenant_id` (anyone: they are public).
    ///
    /// # Errors
    /// Unknown tenant, `meta` unavailable.
    pub async fn jwks(&self, call: &Call, tenant_id: &str) -> Result<Jwks, ServiceError> {
        if tenant_id.is_empty()
            || tenant_id.len() > 64
            || !tenant_id.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(ServiceError::TenantNotFound);
        }
        let since = call.context().arrival;
        let records = self.core.public_signing_keys(tenant_id, since).await?;
        if records.keys.is_empty() {
            // A tenant always has a key from creation on, so none means no tenant.
            return Err(ServiceError::TenantNotFound);
        }
        Ok(jwks_of(&records))
    }
}

/// The JWKS of `records`, newest key first.
fn jwks_of(records: &SigningKeys) -> Jwks {
    Jwks {
        keys: records
            .keys
            .iter()
            .rev()
            .filter_map(public_bytes)
            .map(|p| jwt::jwk(&p))
            .collect(),
    }
}
