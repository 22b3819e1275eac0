//! Tenant records and their unwrapped data keys: read linearizably from `meta`,
//! cached per `meta` epoch (an entry serves only while nothing in `meta`
//! changed), reused across a master key rotation that re-wraps the same keys.

use std::sync::Arc;

use cairn_cluster_config::META_GROUP;
use cairn_crypto::MasterKey;
use cairn_storage::sm::tenants::ListTenants;
use cairn_storage::sm::{TenantView, TenantsView};
use cairn_storage::{MasterKeyState, TenantRecord, TenantRef};

use super::keyring::{KeyError, TenantKeys};
use super::Core;
use crate::error::ServiceError;

/// Maps a key that cannot be used: a master key this node lacks is
/// `master_key_unavailable` (503), a key that fails to unwrap `decryption_failed`.
#[must_use]
pub fn key_error(e: &KeyError) -> ServiceError {
    match e {
        KeyError::MasterKeyMissing(_) => {
            tracing::error!(error = %e, "tenant keys unavailable");
            ServiceError::MasterKeyUnavailable(e.to_string())
        }
        KeyError::Unwrap { .. } | KeyError::NoKeys => {
            tracing::error!(error = %e, "tenant data key failed to unwrap");
            ServiceError::DecryptionFailed
        }
    }
}

impl Core {
    /// A tenant's record and the master key state, read linearizably from `meta`.
    ///
    /// # Errors
    /// `meta` unavailable.
    pub async fn read_tenant(
        &self,
        by: TenantRef,
    ) -> Result<(Option<TenantRecord>, Option<MasterKeyState>), ServiceError> {
        let TenantView { tenant, master } = self.inner.raft.read(META_GROUP, by).await?;
        Ok((tenant, master))
    }

    /// Every tenant and the master key state, read linearizably from `meta`.
    ///
    /// # Errors
    /// `meta` unavailable.
    pub async fn read_tenants(
        &self,
    ) -> Result<(Vec<TenantRecord>, Option<MasterKeyState>), ServiceError> {
        let TenantsView { tenants, master } = self.inner.raft.read(META_GROUP, ListTenants).await?;
        Ok((tenants, master))
    }

    /// Unwraps `record` (reusing the cached keys if the record is unchanged) and
    /// caches the result as read at `epoch`.
    ///
    /// # Errors
    /// No master key recorded, the master key missing here, a key that fails to
    /// unwrap.
    pub fn install_keys(
        &self,
        name: &str,
        epoch: u64,
        record: TenantRecord,
        master: Option<&MasterKeyState>,
    ) -> Result<Arc<TenantKeys>, ServiceError> {
        let cache = &self.inner.tenants;
        // The same data keys (a master key rotation re-wraps them but does not
        // change them): reuse the unwrapped keys, so nodes need not unwrap again.
        if let Some(cached) = cache.any(name).filter(|k| same_keys(k.record(), &record)) {
            cache.insert(name, epoch, Arc::clone(&cached));
            return Ok(cached);
        }
        let master = master.ok_or_else(|| {
            tracing::error!(tenant_id = %record.id, "tenant exists but no master key is recorded");
            ServiceError::Internal
        })?;
        let keys = Arc::new(
            TenantKeys::unwrap(record, &master.current.fingerprint, &self.inner.masters)
                .map_err(|e| key_error(&e))?,
        );
        cache.insert(name, epoch, Arc::clone(&keys));
        Ok(keys)
    }

    /// The tenant's keys, from the cache if it is current, else from `meta`.
    /// `None`: no such tenant.
    ///
    /// # Errors
    /// As [`Self::read_tenant`] and [`Self::install_keys`].
    pub async fn tenant_keys(&self, name: &str) -> Result<Option<Arc<TenantKeys>>, ServiceError> {
        let epoch = self.inner.raft.meta_epoch();
        if let Some(keys) = self.inner.tenants.get(name, epoch) {
            return Ok(Some(keys));
        }
        self.load_tenant_keys(name, epoch).await
    }

    /// The tenant's keys read from `meta` now, whatever the cache holds.
    ///
    /// # Errors
    /// As [`Self::tenant_keys`].
    pub async fn reload_tenant_keys(
        &self,
        name: &str,
    ) -> Result<Option<Arc<TenantKeys>>, ServiceError> {
        let epoch = self.inner.raft.meta_epoch();
        self.load_tenant_keys(name, epoch).await
    }

    async fn load_tenant_keys(
        &self,
        name: &str,
        epoch: u64,
    ) -> Result<Option<Arc<TenantKeys>>, ServiceError> {
        match self.read_tenant(TenantRef::Name(name.to_owned())).await? {
            (Some(record), master) => self
                .install_keys(name, epoch, record, master.as_ref())
                .map(Some),
            (None, _) => {
                self.inner.tenants.remove(name);
                Ok(None)
            }
        }
    }

    /// The keys of the tenant with id `tenant_id`, read from `meta` now.
    /// `None`: no such tenant.
    ///
    /// # Errors
    /// As [`Self::tenant_keys`].
    pub async fn tenant_keys_by_id(
        &self,
        tenant_id: &str,
    ) -> Result<Option<Arc<TenantKeys>>, ServiceError> {
        let epoch = self.inner.raft.meta_epoch();
        match self
            .read_tenant(TenantRef::Id(tenant_id.to_owned()))
            .await?
        {
            (Some(record), master) => {
                let name = record.name.clone();
                self.install_keys(&name, epoch, record, master.as_ref())
                    .map(Some)
            }
            (None, _) => Ok(None),
        }
    }

    /// Drops tenant `name`'s cached keys (its keys changed, or it is gone).
    pub fn forget_tenant(&self, name: &str) {
        self.inner.tenants.remove(name);
    }

    /// The master key `fingerprint`, if this node holds it.
    ///
    /// # Errors
    /// `master_key_unavailable`.
    pub fn master_key(&self, fingerprint: &str) -> Result<Arc<MasterKey>, ServiceError> {
        self.inner
            .masters
            .get(fingerprint)
            .ok_or_else(|| key_error(&KeyError::MasterKeyMissing(fingerprint.to_owned())))
    }
}

/// Whether two records of a tenant hold the same data keys (same id, region and
/// key versions; the wrapping may differ).
fn same_keys(a: &TenantRecord, b: &TenantRecord) -> bool {
    a.id == b.id
        && a.region == b.region
        && a.keys.len() == b.keys.len()
        && a.keys
            .iter()
            .zip(&b.keys)
            .all(|(x, y)| x.version == y.version)
}
