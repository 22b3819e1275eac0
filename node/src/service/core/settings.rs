//! Tenant settings as the services use them: the tenant's stored settings
//! (`meta`, wire version 3) over the cluster's defaults, read linearizably and
//! cached per `meta` epoch like the tenant's keys.

use std::sync::Arc;

use cairn_cluster_config::{Bucket, RateLimits, META_GROUP};
use cairn_storage::sm::tenants::{GetTenantSettings, RateLimit, TenantSettings};

use super::epoch_cache::EpochCache;
use super::Core;
use crate::error::ServiceError;

/// Tenants whose settings are cached at once.
pub(super) const SETTINGS_CACHE_CAPACITY: usize = 4096;

/// How long the previous refresh token retries, unless the tenant says.
pub const DEFAULT_REFRESH_RETRY_GRACE_SECS: u64 = 10;

pub(super) type SettingsCache = EpochCache<Arc<Settings>>;

/// A tenant's settings in effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub refresh_retry_grace_secs: u64,
    pub rate_limits: RateLimits,
    pub breached_password_check: bool,
}

impl Settings {
    /// `stored` over the cluster's `defaults`.
    #[must_use]
    pub fn resolve(stored: &TenantSettings, defaults: &RateLimits) -> Self {
        let mut rate_limits = *defaults;
        for ((action, scope), l) in &stored.rate_limits {
            let bucket = Bucket {
                burst: l.burst,
                per_minute: l.per_minute,
            };
            // Stored names were checked by the state machine; one it does not
            // know (a newer binary's) keeps the default here.
            rate_limits.set(action, scope, bucket);
        }
        Self {
            refresh_retry_grace_secs: stored
                .refresh_retry_grace_secs
                .unwrap_or(DEFAULT_REFRESH_RETRY_GRACE_SECS),
            rate_limits,
            breached_password_check: stored.breached_password_check.unwrap_or(false),
        }
    }
}

/// A stored rate limit from a configured bucket.
#[must_use]
pub fn rate_limit(b: Bucket) -> RateLimit {
    RateLimit {
        burst: b.burst,
        per_minute: b.per_minute,
    }
}

impl Core {
    /// The settings in effect for tenant `tenant_id`, from the cache if nothing
    /// in `meta` changed since they were read, else read linearizably. Before
    /// the cluster speaks wire version 3 no tenant has stored settings: the
    /// defaults.
    ///
    /// # Errors
    /// `meta` unavailable.
    pub async fn settings(&self, tenant_id: &str) -> Result<Arc<Settings>, ServiceError> {
        let epoch = self.inner.raft.meta_epoch();
        if let Some(s) = self.inner.settings.get(tenant_id, epoch) {
            return Ok(s);
        }
        let stored = self.stored_settings(tenant_id).await?;
        let s = Arc::new(Settings::resolve(&stored, &self.inner.cfg.rate_limits));
        self.inner.settings.insert(tenant_id, epoch, Arc::clone(&s));
        Ok(s)
    }

    /// The settings tenant `tenant_id` stored, read linearizably.
    ///
    /// # Errors
    /// `meta` unavailable.
    pub async fn stored_settings(&self, tenant_id: &str) -> Result<TenantSettings, ServiceError> {
        if !self.speaks(3) {
            return Ok(TenantSettings::default());
        }
        let q = GetTenantSettings {
            tenant_id: tenant_id.to_owned(),
        };
        Ok(self.inner.raft.read(META_GROUP, q).await?)
    }
}
