//! The service layer: authorisation, validation, sealing and the calls into the
//! Raft groups. HTTP and gRPC are thin adapters over it.
//!
//! One module per feature, named as the state machine's features are; each
//! method takes the [`Call`] and checks its caller itself:
//! - [`kv`]: tenant key-value, sealed before it is proposed.
//! - [`tenants`]: tenant records, their settings and data key rotation.
//! - [`master_key`]: staging and rotating the master key, key versions.
//! - [`api_keys`]: issuing and revoking tenant API keys.
//! - [`signing_keys`]: the public JWKS and signing key rotation.
//! - [`users`]: users (Argon2id passwords, the email index in `meta`).
//! - [`sessions`]: sign-in, access tokens, refresh rotation, revocation,
//!   introspection.
//! - [`cluster`]: readiness, status, init, compaction, fault injection.
//!
//! What they share is in [`core`]; features never import one another.

pub mod api_keys;
pub mod cluster;
pub mod core;
pub mod kv;
pub mod master_key;
pub mod sessions;
pub mod signing_keys;
pub mod tenants;
pub mod users;

use tokio::time::Instant;

use crate::error::ServiceError;

pub use self::core::keyring::MasterKeys;
pub use self::core::{
    Access, Call, Caller, CoreConfig as ServicesConfig, RequestContext, MAX_BODY_BYTES,
};

/// Every feature's service; cheap to clone.
#[derive(Clone)]
pub struct Services {
    core: self::core::Core,
    pub kv: kv::KvService,
    pub tenants: tenants::TenantService,
    pub master_key: master_key::MasterKeyService,
    pub api_keys: api_keys::ApiKeyService,
    pub signing_keys: signing_keys::SigningKeyService,
    pub users: users::UserService,
    pub sessions: sessions::SessionService,
    pub cluster: cluster::ClusterService,
}

impl Services {
    /// # Errors
    /// As `Core::new`.
    pub fn new(c: ServicesConfig) -> anyhow::Result<Self> {
        let core = self::core::Core::new(c)?;
        Ok(Self {
            kv: kv::KvService::new(core.clone()),
            tenants: tenants::TenantService::new(core.clone()),
            master_key: master_key::MasterKeyService::new(core.clone()),
            api_keys: api_keys::ApiKeyService::new(core.clone()),
            signing_keys: signing_keys::SigningKeyService::new(core.clone()),
            users: users::UserService::new(core.clone()),
            sessions: sessions::SessionService::new(core.clone()),
            cluster: cluster::ClusterService::new(core.clone()),
            core,
        })
    }

    /// The shared core, for the background workers.
    #[must_use]
    pub(crate) fn core(&self) -> &self::core::Core {
        &self.core
    }

    /// This node's Raft groups.
    #[must_use]
    pub fn raft(&self) -> &std::sync::Arc<cairn_raft::RaftNode> {
        self.core.raft()
    }

    /// How many proxies' `X-Forwarded-For` entries the client ports trust.
    #[must_use]
    pub fn trusted_proxy_hops(&self) -> u32 {
        self.core.config().http.trusted_proxy_hops
    }

    /// Who presents `authorization` (an `Authorization` value) on a request
    /// that arrived at `since` for an operation that needs `access`: what an
    /// adapter builds its [`Call`] from.
    ///
    /// # Errors
    /// Reading an API key failed (`meta` or the tenant's keys unavailable).
    pub async fn caller(
        &self,
        authorization: Option<&str>,
        since: Instant,
        access: Access,
    ) -> Result<Caller, ServiceError> {
        self.core.caller(authorization, since, access).await
    }
}
