//! Tenants in the `meta` group: the tenant record (id, name, home region, its data
//! keys wrapped under the cluster master key, its session lifetimes), the name
//! index, and a tenant's deletion (`meta`) and purge (data groups).
//!
//! Storage never sees a plaintext key: wrapping and unwrapping happen in the node,
//! which proposes these commands. What applying them guarantees, on every replica:
//! - a tenant name maps to one tenant id (creating is create-if-absent);
//! - a tenant's key versions are 1, 2, 3, … with no gap or duplicate;
//! - every stored key is wrapped under the current master key: the master key
//!   feature decides that, through the check `sm` hands to [`apply::create`] and
//!   [`apply::add_key`] (a type parameter here, so this feature names none of its
//!   types), and a master rotation re-wraps every stored key ([`apply::rewrap`]).
//!
//! Creating a tenant (`sm::CreateTenant`) also stores its first API key and signing
//! key, so its command is composed in `sm`.

use serde::{Deserialize, Serialize};

pub mod apply;
pub mod read;
pub mod rules;

/// A tenant data key (DEK), wrapped under the master key of `kek_version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedKey {
    pub version: u32,
    pub kek_version: u32,
    pub wrapped: Vec<u8>,
    /// Unix seconds, from the proposing node's clock (informational).
    pub created_at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantRecord {
    pub id: String,
    pub name: String,
    /// Home region: the region whose data group holds the tenant's data.
    pub region: String,
    pub created_at: u64,
    /// Every key version, ascending; the last is the current one.
    pub keys: Vec<WrappedKey>,
    /// How long the tenant's sessions live.
    pub sessions: SessionPolicy,
}

impl TenantRecord {
    #[must_use]
    pub fn current_key(&self) -> Option<&WrappedKey> {
        self.keys.last()
    }

    #[must_use]
    pub fn key(&self, version: u32) -> Option<&WrappedKey> {
        self.keys.iter().find(|k| k.version == version)
    }
}

/// A tenant's session lifetimes, applied to each session when it is created
/// (the bounds and merging are in [`rules`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionPolicy {
    /// A session ends this long after its last sign-in or refresh…
    pub idle_timeout_secs: u64,
    /// …and this long after sign-in, however it is used.
    pub absolute_timeout_secs: u64,
}

/// How a tenant is looked up (a query: the tenant and the master key state).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TenantRef {
    Name(String),
    Id(String),
}

/// Every tenant and the master key state (a query).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListTenants;

/// Adds the next key version of a tenant (a DEK rotation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddTenantKey {
    pub tenant_id: String,
    pub key: WrappedKey,
    pub master_fingerprint: String,
}

/// Changes a tenant's session lifetimes (sessions created from then on get
/// them): each given field replaces the stored one, merged here so that
/// concurrent changes of different fields both stand. A result out of bounds
/// is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetSessionPolicy {
    pub tenant_id: String,
    pub idle_timeout_secs: Option<u64>,
    pub absolute_timeout_secs: Option<u64>,
}

/// Deletes a tenant: its record, name, API keys, signing keys and email index.
/// (Its data in the region groups is unreadable from then on — the data keys
/// are gone — and purged group by group.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteTenant {
    pub tenant_id: String,
}

/// Deletes every row of a deleted tenant in this data group (users, sessions,
/// audit events, KV).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeTenant {
    pub tenant: String,
}

/// What creating a tenant decided; `R` is the master key check's refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome<R> {
    Created(TenantRecord),
    /// A tenant of that name already existed; it is returned unchanged.
    Exists(TenantRecord),
    /// The name is taken by a tenant whose record is gone.
    NotFound,
    /// The keys are not exactly one of version 1 (`current: 0`), or a random id
    /// collided (`current: 1`); nothing changed.
    KeyVersionConflict {
        current: u32,
    },
    /// The key is not wrapped under the current master key; nothing changed.
    MasterKeyConflict(R),
    /// The session policy is out of bounds; nothing changed.
    InvalidSetting,
}

/// What [`AddTenantKey`] decided; `R` is the master key check's refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddKeyOutcome<R> {
    KeyAdded(TenantRecord),
    TenantNotFound,
    /// The proposed key version is not the next one; nothing changed.
    KeyVersionConflict {
        current: u32,
    },
    MasterKeyConflict(R),
}

/// What [`SetSessionPolicy`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetSessionPolicyOutcome {
    TenantUpdated(TenantRecord),
    TenantNotFound,
    /// The merged policy is out of bounds; nothing changed.
    InvalidSetting,
}

/// What [`DeleteTenant`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteTenantOutcome {
    TenantDeleted(TenantRecord),
    TenantNotFound,
}

/// What [`PurgeTenant`] did: how many rows it deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub rows: usize,
}

/// A tenant's settings beyond its session lifetimes, in a row of their own
/// (`keyspace::SM_TENANT_SETTINGS`). Each field is `None` (or absent from the
/// map) until set: the node fills in the cluster's defaults. Stored and sent as
/// a list of [`Setting`]s, so a new setting is a new variant and every stored
/// list still decodes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<Setting>", into = "Vec<Setting>")]
pub struct TenantSettings {
    /// How long after a rotation the previous refresh token is still a
    /// lost-answer retry (seconds).
    pub refresh_retry_grace_secs: Option<u64>,
    /// Rate limits that replace the cluster's defaults, by (action, scope).
    pub rate_limits: std::collections::BTreeMap<(String, String), RateLimit>,
    /// Whether new passwords are checked against the breached-password range
    /// service.
    pub breached_password_check: Option<bool>,
}

/// A token bucket's size and refill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    pub burst: u32,
    pub per_minute: u32,
}

/// One stored tenant setting (append-only: new settings are new variants).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Setting {
    RefreshRetryGraceSecs(u64),
    RateLimit {
        action: String,
        scope: String,
        limit: RateLimit,
    },
    BreachedPasswordCheck(bool),
}

impl From<Vec<Setting>> for TenantSettings {
    fn from(list: Vec<Setting>) -> Self {
        let mut s = Self::default();
        for setting in list {
            match setting {
                Setting::RefreshRetryGraceSecs(v) => s.refresh_retry_grace_secs = Some(v),
                Setting::RateLimit {
                    action,
                    scope,
                    limit,
                } => {
                    s.rate_limits.insert((action, scope), limit);
                }
                Setting::BreachedPasswordCheck(v) => s.breached_password_check = Some(v),
            }
        }
        s
    }
}

impl From<TenantSettings> for Vec<Setting> {
    fn from(s: TenantSettings) -> Self {
        let mut list = Vec::new();
        if let Some(v) = s.refresh_retry_grace_secs {
            list.push(Setting::RefreshRetryGraceSecs(v));
        }
        for ((action, scope), limit) in s.rate_limits {
            list.push(Setting::RateLimit {
                action,
                scope,
                limit,
            });
        }
        if let Some(v) = s.breached_password_check {
            list.push(Setting::BreachedPasswordCheck(v));
        }
        list
    }
}

/// Changes a tenant's settings (wire version 3): each setting given replaces
/// the stored one, merged here so that concurrent changes of different
/// settings both stand. A result out of bounds is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetTenantSettings {
    pub tenant_id: String,
    pub set: TenantSettings,
}

/// Reads a tenant's settings (a query; wire version 3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetTenantSettings {
    pub tenant_id: String,
}

/// What [`SetTenantSettings`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetTenantSettingsOutcome {
    SettingsSet(TenantSettings),
    TenantNotFound,
    /// A setting is out of bounds; nothing changed.
    InvalidSetting,
}
