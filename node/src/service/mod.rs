//! The service layer: validation, authorization, sealing and the calls into the
//! Raft groups. HTTP and gRPC are thin adapters over it.
//!
//! - [`kv`]: tenant key-value, sealed before it is proposed.
//! - [`keys`]: tenant records and data keys, key rotation, master key rotation.
//! - [`access`]: API keys and scopes, tenant deletion, token signing keys.
//! - [`users`]: users (Argon2id passwords, the email index in `meta`).
//! - [`sessions`]: sign-in, access tokens, refresh rotation, revocation,
//!   introspection.

mod access;
mod epoch_cache;
mod keys;
mod kv;
mod sessions;
mod users;

use std::sync::Arc;

use cairn_cluster_config::{ClusterConfig, GroupId};
use cairn_crypto::AdminToken;
use cairn_raft::RaftNode;
use cairn_storage::Engine;

use crate::error::ServiceError;
use crate::keyring::{MasterKeys, TenantCache, TenantKeys};

pub use access::{IssuedApiKey, Principal, Scope};
pub use keys::{
    CreatedTenant, KeysView, RotatedTenantKey, StagedMasterKey, TenantSettings, TenantView,
};
pub use kv::KvEntry;
pub use sessions::{Introspection, IssuedSession, RefreshedSession, SignInContext};
pub use users::{UserPatch, UserView};

pub const MAX_KEY_BYTES: usize = 512;
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
pub const MAX_TENANT_BYTES: usize = 128;

/// Everything a request handler needs; cheap to clone.
#[derive(Clone)]
pub struct Services {
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
    signing: access::SigningCache,
    /// API keys this node authenticated, per `meta` epoch.
    api_keys: access::ApiKeyCache,
    /// Argon2id runs at most this many at once (each holds 19 MiB): a burst of
    /// sign-ins queues instead of exhausting memory or starving other work.
    hashing: Arc<tokio::sync::Semaphore>,
    /// Argon2 working memory, one per permit, reused (see `cairn_crypto::password`).
    workspaces: std::sync::Mutex<Vec<cairn_crypto::password::Workspace>>,
    /// One tenant creation at a time on this node, so a burst of first writes for a
    /// new tenant proposes one `CreateTenant`, not one per request.
    create_lock: tokio::sync::Mutex<()>,
}

/// What a node's services are built from.
pub struct ServicesConfig {
    pub raft: Arc<RaftNode>,
    pub cfg: Arc<ClusterConfig>,
    pub admin: AdminToken,
    pub node_id: u64,
    pub engine: Engine,
    pub masters: MasterKeys,
}

impl Services {
    #[must_use]
    pub fn new(c: ServicesConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                raft: c.raft,
                cfg: c.cfg,
                admin: c.admin,
                node_id: c.node_id,
                engine: c.engine,
                masters: c.masters,
                tenants: TenantCache::default(),
                signing: access::SigningCache::new(access::SIGNING_CACHE_CAPACITY),
                api_keys: access::ApiKeyCache::new(access::API_KEY_CACHE_CAPACITY),
                hashing: Arc::new(tokio::sync::Semaphore::new(
                    std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
                )),
                workspaces: std::sync::Mutex::new(Vec::new()),
                create_lock: tokio::sync::Mutex::new(()),
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

    /// Checks an `Authorization` header value against the admin token, in constant time.
    ///
    /// # Errors
    /// [`ServiceError::Unauthorized`] if missing, not `Bearer`, or wrong.
    pub fn authorize_admin(&self, authorization: Option<&str>) -> Result<(), ServiceError> {
        let token = bearer_token(authorization).ok_or(ServiceError::Unauthorized)?;
        if self.inner.admin.verify(token) {
            Ok(())
        } else {
            Err(ServiceError::Unauthorized)
        }
    }

    /// The tenant a KV call acts for: the tenant of an API key carrying `scope`,
    /// or, for the operator (admin token), the tenant named by `x_tenant`. `since`:
    /// when the request arrived (it has written nothing yet).
    ///
    /// # Errors
    /// Unauthorized, a missing scope, a missing `X-Tenant` for the operator, or an
    /// unknown tenant (`tenant_not_found`).
    pub async fn kv_tenant(
        &self,
        authorization: Option<&str>,
        x_tenant: Option<&str>,
        scope: Scope,
        since: tokio::time::Instant,
    ) -> Result<Arc<TenantKeys>, ServiceError> {
        let token = bearer_token(authorization).ok_or(ServiceError::Unauthorized)?;
        if token.starts_with(cairn_crypto::token::API_KEY_PREFIX) {
            let principal = self.authenticate_since(authorization, since).await?;
            principal.require(scope)?;
            return Ok(Arc::clone(principal.keys()));
        }
        self.authorize_admin(authorization)?;
        let name = x_tenant.ok_or(ServiceError::MissingTenant)?;
        validate_tenant(name)?;
        self.tenant_keys(name)
            .await?
            .ok_or(ServiceError::TenantNotFound)
    }

    /// The data group of `region` (a tenant's home region).
    fn region_group(&self, region: &str) -> Result<GroupId, ServiceError> {
        self.inner
            .cfg
            .region_group(region)
            .map(|g| g.id)
            .ok_or_else(|| {
                tracing::error!(region, "a tenant's home region is not in the config");
                ServiceError::Internal
            })
    }

    /// Maps a failed call on `region`'s data group: a group that cannot reach a
    /// leader or commit is that region's outage, reported as `region_unavailable`
    /// (other regions keep serving).
    fn region_error(region: &str, e: cairn_raft::RaftNodeError) -> ServiceError {
        use cairn_raft::RaftNodeError as E;
        match e {
            E::NoLeader { .. } | E::OutcomeUnknown { .. } => {
                ServiceError::RegionUnavailable(format!("region {region}: {e}"))
            }
            other => other.into(),
        }
    }
}

/// The token of a `Bearer` authorization header value.
fn bearer_token(authorization: Option<&str>) -> Option<&str> {
    let (scheme, rest) = authorization?.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

fn validate_tenant(tenant: &str) -> Result<(), ServiceError> {
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

fn validate_key(key: &str) -> Result<(), ServiceError> {
    if key.is_empty() {
        return Err(ServiceError::InvalidRequest(
            "key must not be empty".to_owned(),
        ));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(ServiceError::PayloadTooLarge(format!(
            "key is {} bytes; the limit is {MAX_KEY_BYTES}",
            key.len()
        )));
    }
    if key.chars().any(char::is_control) {
        return Err(ServiceError::InvalidRequest(
            "key must not contain control characters".to_owned(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_and_tenant_validation() {
        assert!(validate_key("a/b c").is_ok());
        assert!(matches!(
            validate_key(""),
            Err(ServiceError::InvalidRequest(_))
        ));
        assert!(validate_key(&"k".repeat(512)).is_ok());
        assert!(matches!(
            validate_key(&"k".repeat(513)),
            Err(ServiceError::PayloadTooLarge(_))
        ));
        assert!(validate_key("a\nb").is_err());
        assert!(validate_tenant("acme-1.prod").is_ok());
        assert!(validate_tenant("").is_err());
        assert!(validate_tenant("a b").is_err());
        assert!(validate_tenant(&"t".repeat(129)).is_err());
    }
}
