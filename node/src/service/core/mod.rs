//! What every feature of the service layer shares: [`Core`] (the Raft node, the
//! config, the engine, the node's master keys and its caches), the caller of a
//! request ([`Call`]), and the lookups and mechanisms more than one feature needs.
//!
//! - [`call`]: `Call`, `Caller`, `RequestContext`, `Principal`, `Scope`.
//! - `credentials`: the admin token and API key authentication that turn an
//!   `Authorization` value into a `Caller`; new API key records.
//! - `tenant_keys`: tenant records and their unwrapped data keys (cached per
//!   `meta` epoch); [`keyring`]: master keys, tenant keys, sealing.
//! - `signing`: the tenants' token signing keys (cached per `meta` epoch);
//!   `settings`: the tenants' settings over the cluster's defaults (likewise).
//! - `user_lookup`: users read and opened, by id or by email (the email index).
//! - `ids`, `routing`: ids that carry their data group, and the group (and
//!   region) a tenant or an id routes to.
//! - `writes`: proposals with their trace ([`By`]: a call or the node), and the
//!   cluster's wire version that decides whether they carry it.
//! - `rate_limits`: the token buckets (node-local by address, replicated by
//!   email and pair);
//! - `passwords`: the bounded Argon2id pool; `min_time`: minimum response times;
//!   `clock`: Unix time; `epoch_cache`: caches valid for one `meta` epoch.
//!
//! Features (`service::<feature>`) use this module and never one another.

mod breached;
pub mod call;
mod clock;
mod credentials;
mod email;
mod epoch_cache;
mod ids;
pub mod keyring;
mod min_time;
mod passwords;
mod rate_limits;
mod routing;
mod settings;
mod signing;
mod tenant_keys;
mod user_lookup;
mod writes;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use cairn_cluster_config::ClusterConfig;
use cairn_crypto::AdminToken;
use cairn_raft::RaftNode;
use cairn_storage::Engine;

use crate::error::ServiceError;
use keyring::{MasterKeys, TenantCache};

pub use call::{Access, Call, Caller, ClientInfo, Principal, RequestContext, Scope};
pub use clock::{unix_now, unix_now_ms};
pub use credentials::new_api_key;
pub use email::{email_index, stored_indexes, Email};
pub use ids::new_id;
pub use keyring::{KeyError, OpenError, TenantKeys};
pub use min_time::{at_least, DeferredPad, REFRESH_FAILURE_MIN_TIME, SIGN_IN_MIN_TIME};
pub use rate_limits::{limited, Buckets, LimitAction, TRUSTED_PAIR_SECS};
pub use routing::region_error;
pub use settings::{rate_limit, Settings};
pub use signing::{new_signing_key, public_bytes, ACCESS_TOKEN_TTL_SECS};
pub use tenant_keys::key_error;
pub use user_lookup::{failed_path, user_path, LoadedUser, UserPlain};
pub use writes::By;

pub const MAX_KEY_BYTES: usize = 512;
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
pub const MAX_TENANT_BYTES: usize = 128;

/// The node's shared state; cheap to clone.
#[derive(Clone)]
pub struct Core {
    inner: Arc<Inner>,
}

struct Inner {
    raft: Arc<RaftNode>,
    cfg: Arc<ClusterConfig>,
    admin: AdminToken,
    node_id: u64,
    engine: Engine,
    masters: MasterKeys,
    tenants: TenantCache,
    signing: signing::SigningCache,
    public_signing: signing::PublicSigningCache,
    /// API keys this node authenticated, per `meta` epoch.
    api_keys: credentials::ApiKeyCache,
    /// Key ids `meta` did not hold, per `meta` epoch.
    unknown_api_keys: credentials::UnknownKeyCache,
    settings: settings::SettingsCache,
    ip_buckets: rate_limits::IpBuckets,
    passwords: passwords::PasswordPool,
    work: Arc<WorkCounters>,
    wire_version: writes::WireVersionView,
    breached: Option<breached::BreachedCheck>,
}

/// Expensive work this node did, counted since it started: what a flood of
/// garbage costs, shown in the node's status.
#[derive(Debug, Default)]
pub struct WorkCounters {
    /// Refresh proof walks run (each on the blocking pool)…
    pub proof_walks: AtomicU64,
    /// …and the HMACs they computed.
    pub proof_walk_hmacs: AtomicU64,
    /// Walks refused unwalked: the token was further behind than the bound.
    pub proof_walks_refused: AtomicU64,
    /// API keys read from `meta` (cache misses)…
    pub api_key_reads: AtomicU64,
    /// …and unknown key ids answered from the negative cache, unread.
    pub unknown_api_key_hits: AtomicU64,
    /// Tenants' signing keys read from `meta` (cache misses).
    pub signing_key_reads: AtomicU64,
}

/// The [`WorkCounters`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkCounts {
    pub proof_walks: u64,
    pub proof_walk_hmacs: u64,
    pub proof_walks_refused: u64,
    pub api_key_reads: u64,
    pub unknown_api_key_hits: u64,
    pub signing_key_reads: u64,
}

impl WorkCounters {
    #[must_use]
    pub fn snapshot(&self) -> WorkCounts {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        WorkCounts {
            proof_walks: load(&self.proof_walks),
            proof_walk_hmacs: load(&self.proof_walk_hmacs),
            proof_walks_refused: load(&self.proof_walks_refused),
            api_key_reads: load(&self.api_key_reads),
            unknown_api_key_hits: load(&self.unknown_api_key_hits),
            signing_key_reads: load(&self.signing_key_reads),
        }
    }
}

/// What a node's services are built from.
pub struct CoreConfig {
    pub raft: Arc<RaftNode>,
    pub cfg: Arc<ClusterConfig>,
    pub admin: AdminToken,
    pub node_id: u64,
    pub engine: Engine,
    pub masters: MasterKeys,
}

impl Core {
    /// # Errors
    /// The breached-password service's CA file cannot be read.
    pub fn new(c: CoreConfig) -> anyhow::Result<Self> {
        let per_tenant = c.cfg.limits.argon2_queue_per_tenant;
        let breached = breached::BreachedCheck::new(&c.cfg.breached_passwords)
            .map_err(|e| anyhow::anyhow!("[breached_passwords]: {e}"))?;
        Ok(Self {
            inner: Arc::new(Inner {
                raft: c.raft,
                cfg: c.cfg,
                admin: c.admin,
                node_id: c.node_id,
                engine: c.engine,
                masters: c.masters,
                tenants: TenantCache::default(),
                signing: signing::SigningCache::new(signing::SIGNING_CACHE_CAPACITY),
                public_signing: signing::PublicSigningCache::new(signing::SIGNING_CACHE_CAPACITY),
                api_keys: credentials::ApiKeyCache::new(credentials::API_KEY_CACHE_CAPACITY),
                unknown_api_keys: credentials::UnknownKeyCache::new(
                    credentials::API_KEY_CACHE_CAPACITY,
                ),
                settings: settings::SettingsCache::new(settings::SETTINGS_CACHE_CAPACITY),
                ip_buckets: rate_limits::IpBuckets::default(),
                passwords: passwords::PasswordPool::new(per_tenant),
                wire_version: writes::WireVersionView::default(),
                work: Arc::default(),
                breached,
            }),
        })
    }

    #[must_use]
    pub fn raft(&self) -> &Arc<RaftNode> {
        &self.inner.raft
    }

    #[must_use]
    pub fn config(&self) -> &ClusterConfig {
        &self.inner.cfg
    }

    #[must_use]
    pub fn node_id(&self) -> u64 {
        self.inner.node_id
    }

    #[must_use]
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// What expensive work this node has done (counts, not times).
    #[must_use]
    pub fn work(&self) -> &Arc<WorkCounters> {
        &self.inner.work
    }

    /// The master keys this node holds.
    #[must_use]
    pub fn masters(&self) -> &MasterKeys {
        &self.inner.masters
    }
}

/// Checks a tenant name (as the operator gives it: at creation, in `X-Tenant`).
///
/// # Errors
/// `invalid_request` naming the rule.
pub fn validate_tenant(tenant: &str) -> Result<(), ServiceError> {
    let ok = !tenant.is_empty()
        && tenant.len() <= MAX_TENANT_BYTES
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(ServiceError::InvalidRequest(format!(
            "tenant must be 1-{MAX_TENANT_BYTES} characters of A-Z, a-z, 0-9, '-', '_' or '.'"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_names_are_checked() {
        assert!(validate_tenant("acme-1.prod").is_ok());
        assert!(validate_tenant("").is_err());
        assert!(validate_tenant("a b").is_err());
        assert!(validate_tenant(&"t".repeat(128)).is_ok());
        assert!(validate_tenant(&"t".repeat(129)).is_err());
    }
}
