//! What every feature of the service layer shares: [`Core`] (the Raft node, the
//! config, the engine, the node's master keys and its caches), the caller of a
//! request ([`Call`]), and the lookups and mechanisms more than one feature needs.
//!
//! - [`call`]: `Call`, `Caller`, `RequestContext`, `Principal`, `Scope`.
//! - `credentials`: the admin token and API key authentication that turn an
//!   `Authorization` value into a `Caller`; new API key records.
//! - `tenant_keys`: tenant records and their unwrapped data keys (cached per
//!   `meta` epoch); [`keyring`]: master keys, tenant keys, sealing.
//! - `signing`: the tenants' token signing keys (cached per `meta` epoch).
//! - `user_lookup`: users read and opened, by id or by email (the email index).
//! - `ids`, `routing`: ids that carry their data group, and the group (and
//!   region) a tenant or an id routes to.
//! - `writes`: proposals with their trace ([`By`]: a call or the node), and the
//!   cluster's wire version that decides whether they carry it.
//! - `passwords`: the bounded Argon2id pool; `min_time`: minimum response times;
//!   `clock`: Unix time; `epoch_cache`: caches valid for one `meta` epoch.
//!
//! Features (`service::<feature>`) use this module and never one another.

pub mod call;
mod clock;
mod credentials;
mod epoch_cache;
mod ids;
pub mod keyring;
mod min_time;
mod passwords;
mod routing;
mod signing;
mod tenant_keys;
mod user_lookup;
mod writes;

use std::sync::Arc;

use cairn_cluster_config::ClusterConfig;
use cairn_crypto::AdminToken;
use cairn_raft::RaftNode;
use cairn_storage::Engine;

use crate::error::ServiceError;
use keyring::{MasterKeys, TenantCache};

pub use call::{Access, Call, Caller, ClientInfo, Principal, RequestContext, Scope};
pub use clock::unix_now;
pub use credentials::new_api_key;
pub use ids::new_id;
pub use keyring::{KeyError, OpenError, TenantKeys};
pub use min_time::at_least;
pub use routing::region_error;
pub use signing::{new_signing_key, public_bytes, ACCESS_TOKEN_TTL_SECS};
pub use tenant_keys::key_error;
pub use user_lookup::{email_index, normalize_email, user_path, LoadedUser, UserPlain};
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
    /// API keys this node authenticated, per `meta` epoch.
    api_keys: credentials::ApiKeyCache,
    passwords: passwords::PasswordPool,
    wire_version: writes::WireVersionView,
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
    #[must_use]
    pub fn new(c: CoreConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                raft: c.raft,
                cfg: c.cfg,
                admin: c.admin,
                node_id: c.node_id,
                engine: c.engine,
                masters: c.masters,
                tenants: TenantCache::default(),
                signing: signing::SigningCache::new(signing::SIGNING_CACHE_CAPACITY),
                api_keys: credentials::ApiKeyCache::new(credentials::API_KEY_CACHE_CAPACITY),
                passwords: passwords::PasswordPool::new(),
                wire_version: writes::WireVersionView::default(),
            }),
        }
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
