//! Who is calling, and with which rights: tenant API keys (issue, revoke,
//! authenticate, scopes), tenant deletion, and the tenants' token signing keys
//! (current key for signing, public keys for verification and the JWKS).
//!
//! An API key names its tenant; the tenant is never taken from a request body.
//! Every authentication is a linearizable read of `meta` (the key's record, its
//! tenant and the master key state at one index), so a key revoked and
//! acknowledged on one node fails at once on every node. The read waits until this
//! node's replica of `meta` has caught up with it, then takes the key from a cache
//! if nothing in `meta` changed since the key was last read here (the `meta`
//! epoch), and from `meta` otherwise; the presented secret is checked against the
//! key's hash every time.

use std::sync::Arc;

use cairn_cluster_config::META_GROUP;
use cairn_crypto::jwt::{self, SigningKey};
use cairn_crypto::token::ApiKey;
use cairn_storage::sm::{self, Answer as QueryResult, Command, Outcome as CommandResult, Query};
use cairn_storage::{
    ApiKeyRecord, AuthCommand, AuthOutcome, DirectoryCommand, DirectoryOutcome, SessionPolicy,
    SigningKeyRecord, SigningKeys,
};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use zeroize::Zeroizing;

use super::epoch_cache::EpochCache;
use super::keys::{unexpected, unix_now};
use super::Services;
use crate::error::ServiceError;
use crate::keyring::TenantKeys;

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// GETs: users, sessions, KV, introspection.
    Read,
    /// Creates and updates: users, sign-in, refresh, KV writes.
    Write,
    /// Session revocation and keys.
    Manage,
    /// Deletes: users, KV keys.
    Delete,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Read, Scope::Write, Scope::Manage, Scope::Delete];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Manage => "manage",
            Scope::Delete => "delete",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// An authenticated tenant caller.
#[derive(Clone)]
pub struct Principal {
    keys: Arc<TenantKeys>,
    scopes: Vec<Scope>,
    key_id: String,
    /// The tenant's session lifetimes as read with the key (the cached keys may
    /// hold an older copy of the tenant record).
    sessions: SessionPolicy,
}

impl std::fmt::Debug for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Principal")
            .field("tenant_id", &self.keys.id())
            .field("key_id", &self.key_id)
            .field("scopes", &self.scopes)
            .finish()
    }
}

impl Principal {
    /// Refuses the call unless the key carries `scope`.
    ///
    /// # Errors
    /// [`ServiceError::InsufficientScope`].
    pub fn require(&self, scope: Scope) -> Result<(), ServiceError> {
        if self.scopes.contains(&scope) {
            Ok(())
        } else {
            Err(ServiceError::InsufficientScope(scope.as_str()))
        }
    }

    #[must_use]
    pub fn session_policy(&self) -> SessionPolicy {
        self.sessions
    }

    #[must_use]
    pub fn keys(&self) -> &Arc<TenantKeys> {
        &self.keys
    }
}

/// A new API key, shown once.
#[derive(Serialize)]
pub struct IssuedApiKey {
    pub id: String,
    pub api_key: String,
    pub scopes: Vec<Scope>,
    pub created_at: u64,
}

impl std::fmt::Debug for IssuedApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedApiKey")
            .field("id", &self.id)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// Scope names as given by a caller: validated, sorted, deduplicated.
///
/// # Errors
/// Empty, or an unknown scope name.
pub fn parse_scopes(names: &[String]) -> Result<Vec<Scope>, ServiceError> {
    if names.is_empty() {
        return Err(ServiceError::InvalidRequest(
            "scopes must name at least one of read, write, manage, delete".to_owned(),
        ));
    }
    let mut scopes = names
        .iter()
        .map(|n| {
            Scope::parse(n).ok_or_else(|| {
                ServiceError::InvalidRequest(format!(
                    "unknown scope {n:?}; scopes are read, write, manage, delete"
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    scopes.sort();
    scopes.dedup();
    Ok(scopes)
}

/// A new API key for `tenant_id` and the record that stores its hash.
pub(super) fn new_api_key(tenant_id: &str, scopes: &[Scope]) -> (ApiKey, ApiKeyRecord) {
    let key = ApiKey::generate();
    let record = ApiKeyRecord {
        id: key.id().to_owned(),
        tenant_id: tenant_id.to_owned(),
        hash: key.hash().to_vec(),
        scopes: scopes.iter().map(|s| s.as_str().to_owned()).collect(),
        created_at: unix_now(),
    };
    (key, record)
}

/// The key path a signing key's private half is sealed under (in `meta`).
fn signing_key_path(kid: &str) -> Vec<u8> {
    format!("signing-key/{kid}").into_bytes()
}

/// A new signing key, its private half sealed under `keys`.
pub(super) fn new_signing_key(keys: &TenantKeys) -> Result<SigningKeyRecord, ServiceError> {
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

/// Signing keys by tenant id, each valid for the `meta` epoch it was read at.
pub type SigningCache = EpochCache<Arc<TenantSigning>>;

pub const SIGNING_CACHE_CAPACITY: usize = 4096;

/// An API key as authentication needs it: its hash, to check the presented
/// secret against, and the caller it authenticates.
pub struct KnownKey {
    hash: Vec<u8>,
    principal: Principal,
}

/// Authenticated API keys by key id, each valid for the `meta` epoch it was read
/// at. Holds hashes, never secrets.
pub type ApiKeyCache = EpochCache<Arc<KnownKey>>;

pub const API_KEY_CACHE_CAPACITY: usize = 16_384;

/// The public JSON Web Key Set of a tenant.
#[derive(Debug, Serialize)]
pub struct Jwks {
    pub keys: Vec<serde_json::Value>,
}

fn public_bytes(r: &SigningKeyRecord) -> Option<[u8; 32]> {
    <[u8; 32]>::try_from(r.public.as_slice()).ok()
}

impl Services {
    /// Authenticates a tenant API key from an `Authorization` header value.
    ///
    /// # Errors
    /// [`ServiceError::Unauthorized`] for a missing, malformed, unknown or revoked
    /// key (all alike); `meta` unavailable.
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
    ) -> Result<Principal, ServiceError> {
        self.authenticate_since(authorization, Instant::now()).await
    }

    /// [`Self::authenticate`] for a request that arrived at `since` and has
    /// written nothing yet: the key is read linearizably as of any moment after
    /// `since` (see `RaftNode::query_since`).
    ///
    /// # Errors
    /// As [`Self::authenticate`].
    pub async fn authenticate_since(
        &self,
        authorization: Option<&str>,
        since: Instant,
    ) -> Result<Principal, ServiceError> {
        let token = super::bearer_token(authorization).ok_or(ServiceError::Unauthorized)?;
        let key = ApiKey::parse(token).map_err(|_| ServiceError::Unauthorized)?;
        // Once this replica of `meta` has applied every change the read must see,
        // a key read at the current epoch is as good as a fresh read: any change
        // to `meta` since (a revocation, a deleted tenant) moved the epoch.
        self.inner
            .raft
            .read_barrier_since(META_GROUP, since)
            .await?;
        let epoch = self.inner.raft.meta_epoch();
        if let Some(known) = self.inner.api_keys.get(key.id(), epoch) {
            if !key.verify_hash(&known.hash) {
                return Err(ServiceError::Unauthorized);
            }
            return Ok(known.principal.clone());
        }
        let query = Query::ApiKey(sm::api_keys::GetApiKey {
            key_id: key.id().to_owned(),
        });
        let (view, master) = match self
            .inner
            .raft
            .query_since(META_GROUP, query, since)
            .await?
        {
            QueryResult::ApiKey { view, master } => (view, master),
            other => return Err(unexpected("api key read", &other)),
        };
        let view = view.ok_or(ServiceError::Unauthorized)?;
        if !key.verify_hash(&view.key.hash) {
            return Err(ServiceError::Unauthorized);
        }
        let scopes = view
            .key
            .scopes
            .iter()
            .filter_map(|s| Scope::parse(s))
            .collect();
        let name = view.tenant.name.clone();
        let sessions = view.tenant.sessions;
        let keys = self.install_keys(&name, epoch, view.tenant, master.as_ref())?;
        let principal = Principal {
            keys,
            scopes,
            key_id: view.key.id,
            sessions,
        };
        self.inner.api_keys.insert(
            key.id(),
            epoch,
            Arc::new(KnownKey {
                hash: view.key.hash,
                principal: principal.clone(),
            }),
        );
        Ok(principal)
    }

    /// Issues a new API key for tenant `tenant_id` (admin).
    ///
    /// # Errors
    /// Unknown tenant, bad scopes, `meta` unavailable.
    pub async fn create_api_key(
        &self,
        tenant_id: &str,
        scopes: &[String],
    ) -> Result<IssuedApiKey, ServiceError> {
        let scopes = parse_scopes(scopes)?;
        for _ in 0..3 {
            let (key, record) = new_api_key(tenant_id, &scopes);
            let created_at = record.created_at;
            let cmd =
                Command::Directory(DirectoryCommand::AddApiKey(sm::api_keys::AddApiKey(record)));
            match self.inner.raft.write(META_GROUP, cmd).await? {
                CommandResult::Directory(DirectoryOutcome::ApiKeyAdded) => {
                    tracing::info!(tenant_id, key_id = key.id(), "api key issued");
                    return Ok(IssuedApiKey {
                        id: key.id().to_owned(),
                        api_key: key.encode().to_string(),
                        scopes,
                        created_at,
                    });
                }
                CommandResult::Directory(DirectoryOutcome::TenantNotFound) => {
                    return Err(ServiceError::TenantNotFound)
                }
                CommandResult::Directory(DirectoryOutcome::IdCollision) => {}
                other => return Err(unexpected("api key creation", &other)),
            }
        }
        Err(ServiceError::Internal)
    }

    /// Revokes an API key of tenant `tenant_id` (admin).
    ///
    /// # Errors
    /// No such key for this tenant, `meta` unavailable.
    pub async fn revoke_api_key(&self, tenant_id: &str, key_id: &str) -> Result<(), ServiceError> {
        let cmd = Command::Directory(DirectoryCommand::RevokeApiKey(sm::api_keys::RevokeApiKey {
            tenant_id: tenant_id.to_owned(),
            key_id: key_id.to_owned(),
        }));
        match self.inner.raft.write(META_GROUP, cmd).await? {
            CommandResult::Directory(DirectoryOutcome::ApiKeyRevoked) => {
                tracing::info!(tenant_id, key_id, "api key revoked");
                Ok(())
            }
            CommandResult::Directory(DirectoryOutcome::ApiKeyNotFound) => {
                Err(ServiceError::ApiKeyNotFound)
            }
            other => Err(unexpected("api key revocation", &other)),
        }
    }

    /// Deletes a tenant (admin): its keys go in one `meta` entry — from then on its
    /// data in every region is unreadable — then its rows are purged group by group.
    ///
    /// # Errors
    /// Unknown tenant, `meta` unavailable.
    pub async fn delete_tenant(&self, tenant_id: &str) -> Result<(), ServiceError> {
        let cmd = Command::Directory(DirectoryCommand::DeleteTenant(sm::tenants::DeleteTenant {
            tenant_id: tenant_id.to_owned(),
        }));
        let tenant = match self.inner.raft.write(META_GROUP, cmd).await? {
            CommandResult::Directory(DirectoryOutcome::TenantDeleted(t)) => t,
            CommandResult::Directory(DirectoryOutcome::TenantNotFound) => {
                return Err(ServiceError::TenantNotFound)
            }
            other => return Err(unexpected("tenant deletion", &other)),
        };
        self.inner.tenants.remove(&tenant.name);
        tracing::info!(tenant_id, "tenant deleted");
        // The data keys are gone, so what remains in the data groups can no longer
        // be read; purging it is housekeeping, and a region that is down now keeps
        // its (unreadable) rows until a later purge.
        for group in self
            .inner
            .cfg
            .groups()
            .iter()
            .filter(|g| g.id != META_GROUP)
        {
            let cmd = Command::Auth(AuthCommand::PurgeTenant(sm::tenants::PurgeTenant {
                tenant: tenant_id.to_owned(),
            }));
            match self.inner.raft.write(group.id, cmd).await {
                Ok(CommandResult::Auth(AuthOutcome::Purged { rows })) => {
                    tracing::info!(tenant_id, group = %group.name, rows, "tenant rows purged");
                }
                Ok(other) => tracing::error!(?other, "unexpected result for tenant purge"),
                Err(e) => tracing::warn!(
                    tenant_id, group = %group.name, error = %e,
                    "tenant rows not purged (unreadable without the deleted keys)"
                ),
            }
        }
        Ok(())
    }

    /// The tenant's signing keys, from the cache if current, else from `meta`.
    /// A tenant without one (created before signing keys existed) gets one.
    pub(super) async fn signing(
        &self,
        keys: &TenantKeys,
    ) -> Result<Arc<TenantSigning>, ServiceError> {
        let epoch = self.inner.raft.meta_epoch();
        if let Some(s) = self.inner.signing.get(keys.id(), epoch) {
            return Ok(s);
        }
        self.load_signing(keys, epoch).await
    }

    /// The tenant's signing keys read from `meta` now (linearizably), whatever the
    /// cache holds: for a `kid` this replica has not applied yet (a rotation made
    /// through another node a moment ago).
    pub(super) async fn signing_fresh(
        &self,
        keys: &TenantKeys,
    ) -> Result<Arc<TenantSigning>, ServiceError> {
        let epoch = self.inner.raft.meta_epoch();
        self.load_signing(keys, epoch).await
    }

    async fn load_signing(
        &self,
        keys: &TenantKeys,
        epoch: u64,
    ) -> Result<Arc<TenantSigning>, ServiceError> {
        let mut records = self.read_signing_keys(keys.id()).await?;
        if records.keys.is_empty() {
            records = self.rotate_signing_key_with(keys).await?;
        }
        let signing = Arc::new(unseal_signing(keys, &records)?);
        self.inner
            .signing
            .insert(keys.id(), epoch, Arc::clone(&signing));
        Ok(signing)
    }

    async fn read_signing_keys(&self, tenant_id: &str) -> Result<SigningKeys, ServiceError> {
        let query = Query::SigningKeys(sm::signing_keys::GetSigningKeys {
            tenant_id: tenant_id.to_owned(),
        });
        match self.inner.raft.query(META_GROUP, query).await? {
            QueryResult::SigningKeys(k) => Ok(k),
            other => Err(unexpected("signing keys read", &other)),
        }
    }

    async fn rotate_signing_key_with(
        &self,
        keys: &TenantKeys,
    ) -> Result<SigningKeys, ServiceError> {
        let key = new_signing_key(keys)?;
        let kid = key.kid.clone();
        let cmd = Command::Directory(DirectoryCommand::RotateSigningKey(
            sm::signing_keys::RotateSigningKey {
                tenant_id: keys.id().to_owned(),
                key,
                at: unix_now(),
                // Retired keys verify until every token they signed has expired.
                keep_retired_secs: super::sessions::ACCESS_TOKEN_TTL_SECS + 60,
            },
        ));
        match self.inner.raft.write(META_GROUP, cmd).await? {
            CommandResult::Directory(DirectoryOutcome::SigningKeyRotated(k)) => {
                tracing::info!(tenant_id = keys.id(), kid, "signing key rotated");
                Ok(k)
            }
            CommandResult::Directory(DirectoryOutcome::TenantNotFound) => {
                Err(ServiceError::TenantNotFound)
            }
            other => Err(unexpected("signing key rotation", &other)),
        }
    }

    /// Rotates tenant `tenant_id`'s token signing key (admin); returns the new
    /// JWKS. The retired public key stays published until its tokens expire.
    ///
    /// # Errors
    /// Unknown tenant, keys unavailable.
    pub async fn rotate_signing_key(&self, tenant_id: &str) -> Result<Jwks, ServiceError> {
        let keys = self
            .tenant_keys_by_id(tenant_id)
            .await?
            .ok_or(ServiceError::TenantNotFound)?;
        let records = self.rotate_signing_key_with(&keys).await?;
        Ok(jwks_of(&records))
    }

    /// The public keys of tenant `tenant_id` (no authentication: they are public).
    ///
    /// # Errors
    /// Unknown tenant, `meta` unavailable.
    pub async fn jwks(&self, tenant_id: &str) -> Result<Jwks, ServiceError> {
        if tenant_id.is_empty()
            || tenant_id.len() > 64
            || !tenant_id.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(ServiceError::TenantNotFound);
        }
        let records = self.read_signing_keys(tenant_id).await?;
        if records.keys.is_empty() {
            // A tenant always has a key from creation on, so none means no tenant.
            return Err(ServiceError::TenantNotFound);
        }
        Ok(jwks_of(&records))
    }
}

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
