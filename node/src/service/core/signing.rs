//! The tenants' token signing keys as this node uses them: the private keys
//! (sealed in `meta` under the tenant's keys) that sign access tokens, and the
//! public keys that verify them, cached per `meta` epoch.

use std::sync::Arc;

use cairn_cluster_config::META_GROUP;
use cairn_crypto::jwt::{self, SigningKey};
use cairn_storage::sm::signing_keys::{GetSigningKeys, RotateSigningKey, RotateSigningKeyOutcome};
use cairn_storage::{SigningKeyRecord, SigningKeys};
use serde::Serialize;
use zeroize::Zeroizing;

use super::epoch_cache::EpochCache;
use super::keyring::TenantKeys;
use super::{unix_now, By, Core};
use crate::error::ServiceError;

/// Access token lifetime (shorter if the session ends sooner); a retired
/// signing key verifies until every token it signed has expired.
pub const ACCESS_TOKEN_TTL_SECS: u64 = 15 * 60;

/// Signing keys by tenant id, each valid for the `meta` epoch it was read at.
pub(super) type SigningCache = EpochCache<Arc<TenantSigning>>;

/// The stored signing key records (public keys, private ones sealed) by
/// tenant id, per `meta` epoch: what the public JWKS endpoint serves.
pub(super) type PublicSigningCache = EpochCache<Arc<SigningKeys>>;

pub(super) const SIGNING_CACHE_CAPACITY: usize = 4096;

/// A tenant's signing keys as this node uses them: every private key still
/// published (oldest first; the last one signs new tokens) and every public key.
pub struct TenantSigning {
    privates: Vec<(String, SigningKey)>,
    publics: Vec<(String, [u8; 32])>,
}

impl TenantSigning {
    /// The `kid` new tokens are signed with.
    #[must_use]
    pub fn current_kid(&self) -> Option<&str> {
        self.privates.last().map(|(kid, _)| kid.as_str())
    }

    /// Whether this node holds the private key `kid`.
    #[must_use]
    pub fn has_private(&self, kid: &str) -> bool {
        self.privates.iter().any(|(k, _)| k == kid)
    }

    /// Signs `claims` with key `kid` (a retired key re-signs the answer it gave
    /// before a rotation), or the current key if `kid` is gone.
    ///
    /// # Errors
    /// The tenant has no signing key (never after creation), or encoding failed.
    pub fn sign<T: Serialize>(
        &self,
        kid: Option<&str>,
        claims: &T,
    ) -> Result<String, ServiceError> {
        let key = kid
            .and_then(|kid| self.privates.iter().find(|(k, _)| k == kid))
            .or_else(|| self.privates.last())
            .map(|(_, key)| key)
            .ok_or_else(|| {
                tracing::error!("tenant has no signing key");
                ServiceError::Internal
            })?;
        jwt::sign(key, claims).map_err(|e| {
            tracing::error!(error = %e, "signing a token");
            ServiceError::Internal
        })
    }

    /// The public key named `kid`, if it is one of this tenant's.
    #[must_use]
    pub fn public(&self, kid: &str) -> Option<&[u8; 32]> {
        self.publics.iter().find(|(k, _)| k == kid).map(|(_, p)| p)
    }
}

/// The key path a signing key's private half is sealed under (in `meta`).
fn signing_key_path(kid: &str) -> Vec<u8> {
    format!("signing-key/{kid}").into_bytes()
}

/// A stored key's public half, if it is a well-formed Ed25519 key.
#[must_use]
pub fn public_bytes(r: &SigningKeyRecord) -> Option<[u8; 32]> {
    <[u8; 32]>::try_from(r.public.as_slice()).ok()
}

/// A new signing key, its private half sealed under `keys`.
///
/// # Errors
/// `internal` if sealing fails.
pub fn new_signing_key(keys: &TenantKeys) -> Result<SigningKeyRecord, ServiceError> {
    let key = SigningKey::generate();
    let public = key.public();
    let kid = jwt::key_id(&public);
    let private = key.to_bytes();
    let sealed_private = keys
        .seal(META_GROUP.0, &signing_key_path(&kid), private.as_slice())
        .map_err(|e| {
            tracing::error!(error = %e, tenant_id = keys.id(), "sealing a signing key");
            ServiceError::Internal
        })?;
    Ok(SigningKeyRecord {
        kid,
        public: public.to_vec(),
        sealed_private,
        created_at: unix_now(),
        retired_at: None,
    })
}

impl Core {
    /// The tenant's signing keys, from the cache if current, else from `meta`.
    /// A tenant without one (created before signing keys existed) gets one.
    ///
    /// # Errors
    /// `meta` unavailable; a key that fails to open.
    pub async fn signing(&self, keys: &TenantKeys) -> Result<Arc<TenantSigning>, ServiceError> {
        let epoch = self.inner.raft.meta_epoch();
        if let Some(s) = self.inner.signing.get(keys.id(), epoch) {
            return Ok(s);
        }
        self.load_signing(keys, epoch).await
    }

    /// The tenant's signing keys as of a moment after `since`: once this replica
    /// of `meta` has caught up (a read barrier, batched with every other), from
    /// the cache if nothing in `meta` changed since they were read here. For a
    /// `kid` the cached keys do not hold (a rotation made through another node a
    /// moment ago, or a forged token): a flood of unknown `kid`s costs no
    /// linearizable read each.
    ///
    /// # Errors
    /// As [`Self::signing`].
    pub async fn signing_since(
        &self,
        keys: &TenantKeys,
        since: tokio::time::Instant,
    ) -> Result<Arc<TenantSigning>, ServiceError> {
        self.inner
            .raft
            .read_barrier_since(META_GROUP, since)
            .await?;
        self.signing(keys).await
    }

    async fn load_signing(
        &self,
        keys: &TenantKeys,
        epoch: u64,
    ) -> Result<Arc<TenantSigning>, ServiceError> {
        let mut records = self.read_signing_keys(keys.id()).await?;
        if records.keys.is_empty() {
            // A tenant made before signing keys existed gets its first one
            // lazily: the node's own doing.
            records = self.rotate_signing_key(By::System, keys).await?;
        }
        let signing = Arc::new(unseal_signing(keys, &records)?);
        self.inner
            .signing
            .insert(keys.id(), epoch, Arc::clone(&signing));
        Ok(signing)
    }

    /// The tenant's signing key records for its public JWKS, as of a moment
    /// after `since`: once this replica of `meta` has caught up (a read
    /// barrier, batched with every other), from the cache if nothing in `meta`
    /// changed since they were read here, else read (so a flood of JWKS
    /// requests costs no query of `meta` each).
    ///
    /// # Errors
    /// `meta` unavailable.
    pub async fn public_signing_keys(
        &self,
        tenant_id: &str,
        since: tokio::time::Instant,
    ) -> Result<Arc<SigningKeys>, ServiceError> {
        self.inner
            .raft
            .read_barrier_since(META_GROUP, since)
            .await?;
        let epoch = self.inner.raft.meta_epoch();
        if let Some(k) = self.inner.public_signing.get(tenant_id, epoch) {
            return Ok(k);
        }
        let k = Arc::new(self.read_signing_keys(tenant_id).await?);
        self.inner
            .public_signing
            .insert(tenant_id, epoch, Arc::clone(&k));
        Ok(k)
    }

    /// Tenant `tenant_id`'s signing key records, read linearizably from `meta`
    /// (counted in the node's work).
    ///
    /// # Errors
    /// `meta` unavailable.
    pub async fn read_signing_keys(&self, tenant_id: &str) -> Result<SigningKeys, ServiceError> {
        self.inner
            .work
            .signing_key_reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let query = GetSigningKeys {
            tenant_id: tenant_id.to_owned(),
        };
        Ok(self.inner.raft.read(META_GROUP, query).await?)
    }

    /// A new signing key for the tenant of `keys`; the one it replaces is
    /// retired, published until its tokens have expired.
    ///
    /// # Errors
    /// `tenant_not_found`, `meta` unavailable.
    pub async fn rotate_signing_key(
        &self,
        by: By<'_>,
        keys: &TenantKeys,
    ) -> Result<SigningKeys, ServiceError> {
        let key = new_signing_key(keys)?;
        let kid = key.kid.clone();
        let cmd = RotateSigningKey {
            tenant_id: keys.id().to_owned(),
            key,
            at: unix_now(),
            // Retired keys verify until every token they signed has expired.
            keep_retired_secs: ACCESS_TOKEN_TTL_SECS + 60,
        };
        match self.write(by, META_GROUP, cmd).await? {
            RotateSigningKeyOutcome::SigningKeyRotated(k) => {
                tracing::info!(tenant_id = keys.id(), kid, "signing key rotated");
                Ok(k)
            }
            RotateSigningKeyOutcome::TenantNotFound => Err(ServiceError::TenantNotFound),
            // The kid is the hash of a fresh random key: a collision is a bug.
            RotateSigningKeyOutcome::IdCollision => {
                tracing::error!(tenant_id = keys.id(), kid, "signing key id collided");
                Err(ServiceError::Internal)
            }
        }
    }
}

fn unseal_signing(keys: &TenantKeys, records: &SigningKeys) -> Result<TenantSigning, ServiceError> {
    let publics = records
        .keys
        .iter()
        .filter_map(|r| public_bytes(r).map(|p| (r.kid.clone(), p)))
        .collect();
    let mut privates = Vec::with_capacity(records.keys.len());
    for r in &records.keys {
        let private: Zeroizing<Vec<u8>> = keys
            .open(META_GROUP.0, &signing_key_path(&r.kid), &r.sealed_private)
            .map_err(|e| {
                tracing::error!(error = %e, tenant_id = keys.id(), kid = %r.kid, "signing key failed to open");
                ServiceError::DecryptionFailed
            })?;
        let key = SigningKey::from_bytes(&private).map_err(|_| ServiceError::DecryptionFailed)?;
        if key.public().as_slice() != r.public.as_slice() {
            tracing::error!(tenant_id = keys.id(), kid = %r.kid, "signing key does not match its public key");
            return Err(ServiceError::DecryptionFailed);
        }
        privates.push((r.kid.clone(), key));
    }
    Ok(TenantSigning { privates, publics })
}
