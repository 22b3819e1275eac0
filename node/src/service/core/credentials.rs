//! From an `Authorization` value to a [`Caller`]: the operator's admin token
//! (checked in constant time), or a tenant API key.
//!
//! An API key names its tenant; the tenant is never taken from a request body.
//! Every authentication is a linearizable read of `meta` (the key's record, its
//! tenant and the master key state at one index), so a key revoked and
//! acknowledged on one node fails at once on every node. The read waits until this
//! node's replica of `meta` has caught up with it, then takes the key from a cache
//! if nothing in `meta` changed since the key was last read here (the `meta`
//! epoch), and from `meta` otherwise; the presented secret is checked against the
//! key's hash every time. A key id `meta` does not hold is remembered the same
//! way (a bounded negative cache), so repeating it costs no `meta` read.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use cairn_cluster_config::META_GROUP;
use cairn_crypto::token::{ApiKey, API_KEY_PREFIX};
use cairn_storage::sm::api_keys::GetApiKey;
use cairn_storage::sm::ApiKeyLookup;
use cairn_storage::ApiKeyRecord;
use tokio::time::Instant;

use super::call::{Access, Caller, Principal, Scope};
use super::epoch_cache::EpochCache;
use super::min_time::{at_least_since, API_KEY_FAILURE_MIN_TIME};
use super::{unix_now, Core};
use crate::error::ServiceError;

/// An API key as authentication needs it: its hash, to check the presented
/// secret against, and the caller it authenticates.
pub(super) struct KnownKey {
    hash: Vec<u8>,
    principal: Principal,
}

/// Authenticated API keys by key id, each valid for the `meta` epoch it was read
/// at. Holds hashes, never secrets.
pub(super) type ApiKeyCache = EpochCache<Arc<KnownKey>>;

/// Key ids `meta` did not hold, each for the `meta` epoch it was read at (a
/// key created since moved the epoch): a client repeating an unknown or revoked
/// key costs no read of `meta` each time.
pub(super) type UnknownKeyCache = EpochCache<()>;

/// Entries of each of the two caches: a spray of random key ids clears the
/// negative one, never grows it.
pub(super) const API_KEY_CACHE_CAPACITY: usize = 16_384;

/// The token of a `Bearer` authorization header value.
fn bearer_token(authorization: Option<&str>) -> Option<&str> {
    let (scheme, rest) = authorization?.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// A new API key for `tenant_id` and the record that stores its hash.
#[must_use]
pub fn new_api_key(tenant_id: &str, scopes: &[Scope]) -> (ApiKey, ApiKeyRecord) {
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

impl Core {
    /// Who presents `authorization` (an `Authorization` header value) on a
    /// request that arrived at `since` for an operation that needs `access`:
    /// a tenant API key (`ck_…`, authenticated as of any moment after `since`,
    /// and only where `access` can use one), the operator, or — for missing,
    /// malformed, unknown or revoked credentials alike — the public.
    ///
    /// Where an API key can serve, a `ck_…` token is only ever an API key (as
    /// before: the KV and tenant routes never took such a token as the admin
    /// token); elsewhere only the admin token is checked (constant time), so an
    /// operator or public call never waits for `meta`.
    ///
    /// # Errors
    /// What reading an API key can fail with: `meta` unavailable, the tenant's
    /// keys unavailable.
    pub async fn caller(
        &self,
        authorization: Option<&str>,
        since: Instant,
        access: Access,
    ) -> Result<Caller, ServiceError> {
        let Some(token) = bearer_token(authorization) else {
            return Ok(Caller::Public);
        };
        if access.reads_api_key() && token.starts_with(API_KEY_PREFIX) {
            let authenticated = at_least_since(
                since,
                API_KEY_FAILURE_MIN_TIME,
                |r| matches!(r, Err(ServiceError::Unauthorized)),
                self.authenticate(token, since),
            );
            return match authenticated.await {
                Ok(principal) => Ok(Caller::ApiKey(principal)),
                Err(ServiceError::Unauthorized) => Ok(Caller::Public),
                Err(e) => Err(e),
            };
        }
        if self.inner.admin.verify(token) {
            Ok(Caller::Operator)
        } else {
            Ok(Caller::Public)
        }
    }

    /// Authenticates a tenant API key for a request that arrived at `since` and
    /// has written nothing yet: the key is read linearizably as of any moment
    /// after `since` (see `RaftNode::read_since`).
    ///
    /// # Errors
    /// [`ServiceError::Unauthorized`] for a malformed, unknown or revoked key
    /// (all alike); `meta` unavailable.
    async fn authenticate(&self, token: &str, since: Instant) -> Result<Principal, ServiceError> {
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
        let work = &self.inner.work;
        if self.inner.unknown_api_keys.get(key.id(), epoch).is_some() {
            work.unknown_api_key_hits.fetch_add(1, Ordering::Relaxed);
            return Err(ServiceError::Unauthorized);
        }
        work.api_key_reads.fetch_add(1, Ordering::Relaxed);
        let query = GetApiKey {
            key_id: key.id().to_owned(),
        };
        let ApiKeyLookup { view, master } =
            self.inner.raft.read_since(META_GROUP, query, since).await?;
        let Some(view) = view else {
            // Read at `epoch` or later: if `meta` changed in between, the
            // entry is stale on arrival and never serves.
            self.inner.unknown_api_keys.insert(key.id(), epoch, ());
            return Err(ServiceError::Unauthorized);
        };
        let scopes = view
            .key
            .scopes
            .iter()
            .filter_map(|s| Scope::parse(s))
            .collect();
        let name = view.tenant.name.clone();
        let sessions = view.tenant.sessions;
        let keys = self.install_keys(&name, epoch, view.tenant, master.as_ref())?;
        // A tenant homed in a hard region this node is outside of: every call
        // of its keys is served by that region's nodes (`Call::api_key`).
        let home = self.region_group(&keys.record().region)?;
        let relay = self
            .inner
            .raft
            .pinned_away(home)
            .map(|region| (home.0, region.to_owned()));
        let principal = Principal {
            keys,
            scopes,
            key_id: view.key.id,
            sessions,
            relay,
        };
        // Cached whether or not the presented secret matches: a known id with
        // a wrong secret, repeated, costs no `meta` read either (the cache holds
        // the stored hash, never what was presented).
        let known = Arc::new(KnownKey {
            hash: view.key.hash,
            principal,
        });
        self.inner
            .api_keys
            .insert(key.id(), epoch, Arc::clone(&known));
        if !key.verify_hash(&known.hash) {
            return Err(ServiceError::Unauthorized);
        }
        Ok(known.principal.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bearer_credentials_count() {
        assert_eq!(bearer_token(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer_token(Some("Basic abc")), None);
        assert_eq!(bearer_token(Some("Bearer")), None);
        assert_eq!(bearer_token(None), None);
    }
}
