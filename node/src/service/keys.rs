//! Tenant records and data keys: lookup (cached per `meta` epoch), creation and
//! settings (admin API), data key rotation and master key rotation.
//!
//! Every decision is the `meta` group's: this node generates and wraps keys, but a
//! key exists only once its command is applied, and the apply logic (storage's
//! `tenants` module) refuses versions that collide or keys wrapped under anything
//! but the current master key. So two nodes rotating at once, or a master rotation
//! racing a tenant creation, end with one winner and a retry, never a lost key.

use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use cairn_cluster_config::META_GROUP;
use cairn_crypto::envelope::DataKey;
use cairn_crypto::keywrap::WrapBinding;
use cairn_crypto::MasterKey;
use cairn_storage::sm::{self, Answer as QueryResult, Command, Outcome as CommandResult, Query};
use cairn_storage::{
    MasterKeyRecord, MasterKeyState, MetaCommand, MetaOutcome, SessionPolicy, TenantRecord,
    TenantRef, WrappedKey,
};
use serde::{Deserialize, Serialize};

use super::access::{new_api_key, new_signing_key, IssuedApiKey, Scope};
use super::{validate_tenant, Services};
use crate::error::ServiceError;
use crate::keyring::{unwrap_tenant_key, KeyError, TenantKeys};

/// Attempts when a proposal lost a race (another rotation or creation committed
/// first) before giving up with 409.
const ATTEMPTS: usize = 5;

/// A tenant as the admin API shows it (no keys).
#[derive(Debug, Serialize)]
pub struct TenantView {
    pub id: String,
    pub name: String,
    pub region: String,
    pub created_at: u64,
    pub session_idle_timeout_secs: u64,
    pub session_absolute_timeout_secs: u64,
}

impl From<&TenantRecord> for TenantView {
    fn from(t: &TenantRecord) -> Self {
        Self {
            id: t.id.clone(),
            name: t.name.clone(),
            region: t.region.clone(),
            created_at: t.created_at,
            session_idle_timeout_secs: t.sessions.idle_timeout_secs,
            session_absolute_timeout_secs: t.sessions.absolute_timeout_secs,
        }
    }
}

/// Tenant settings an operator may give at creation or change later (also the
/// `PATCH /v1/admin/tenants/{id}` body); a field left out keeps its current (or
/// default) value.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSettings {
    #[serde(default)]
    pub session_idle_timeout_secs: Option<u64>,
    #[serde(default)]
    pub session_absolute_timeout_secs: Option<u64>,
}

impl TenantSettings {
    /// `base` with these settings applied.
    ///
    /// # Errors
    /// `invalid_request` naming the bounds the result breaks.
    fn apply_to(self, base: SessionPolicy) -> Result<SessionPolicy, ServiceError> {
        let policy = base.merged(
            self.session_idle_timeout_secs,
            self.session_absolute_timeout_secs,
        );
        if policy.is_valid() {
            return Ok(policy);
        }
        Err(ServiceError::InvalidRequest(format!(
            "session lifetimes must be between {} and {} seconds, with \
             session_idle_timeout_secs ({}) at most session_absolute_timeout_secs ({})",
            SessionPolicy::MIN_SECS,
            SessionPolicy::MAX_SECS,
            policy.idle_timeout_secs,
            policy.absolute_timeout_secs,
        )))
    }
}

/// A new tenant and its first API key (all scopes), shown once.
#[derive(Serialize)]
pub struct CreatedTenant {
    #[serde(flatten)]
    pub tenant: TenantView,
    pub api_key: String,
    pub api_key_id: String,
}

impl std::fmt::Debug for CreatedTenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedTenant")
            .field("tenant", &self.tenant)
            .field("api_key_id", &self.api_key_id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Serialize)]
pub struct RotatedTenantKey {
    pub tenant: String,
    pub tenant_id: String,
    pub key_version: u32,
}

#[derive(Debug, Serialize)]
pub struct StagedMasterKey {
    pub node: u64,
    pub fingerprint: String,
}

#[derive(Debug, Serialize)]
pub struct MasterKeyView {
    pub version: u32,
    pub fingerprint: String,
    pub since: u64,
}

impl From<&MasterKeyRecord> for MasterKeyView {
    fn from(r: &MasterKeyRecord) -> Self {
        Self {
            version: r.version,
            fingerprint: r.fingerprint.clone(),
            since: r.since,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct TenantKeysView {
    pub name: String,
    pub id: String,
    pub key_version: u32,
    pub key_versions: Vec<KeyVersionView>,
}

#[derive(Debug, Serialize)]
pub struct KeyVersionView {
    pub version: u32,
    pub master_key_version: u32,
    pub created_at: u64,
}

#[derive(Debug, Serialize)]
pub struct KeysView {
    /// The cluster's current master key (`null` before the first tenant).
    pub master_key: Option<MasterKeyView>,
    pub retired_master_keys: Vec<MasterKeyView>,
    /// Fingerprints of the master keys this node holds.
    pub node_master_keys: Vec<String>,
    pub tenants: Vec<TenantKeysView>,
}

pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn key_error(e: &KeyError) -> ServiceError {
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

pub(super) fn unexpected(what: &str, other: &impl std::fmt::Debug) -> ServiceError {
    tracing::error!(?other, "unexpected result for {what}");
    ServiceError::Internal
}

impl Services {
    /// A tenant's record and the master key state, read linearizably from `meta`.
    async fn read_tenant(
        &self,
        by: TenantRef,
    ) -> Result<(Option<TenantRecord>, Option<MasterKeyState>), ServiceError> {
        match self.inner.raft.query(META_GROUP, Query::Tenant(by)).await? {
            QueryResult::Tenant { tenant, master } => Ok((tenant, master)),
            other => Err(unexpected("tenant read", &other)),
        }
    }

    /// Unwraps `record` (reusing the cached keys if the record is unchanged) and
    /// caches the result as read at `epoch`.
    pub(super) fn install_keys(
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
    pub(super) async fn tenant_keys(
        &self,
        name: &str,
    ) -> Result<Option<Arc<TenantKeys>>, ServiceError> {
        let epoch = self.inner.raft.meta_epoch();
        if let Some(keys) = self.inner.tenants.get(name, epoch) {
            return Ok(Some(keys));
        }
        self.load_tenant_keys(name, epoch).await
    }

    /// The tenant's keys read from `meta` now, whatever the cache holds.
    pub(super) async fn reload_tenant_keys(
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
    pub(super) async fn tenant_keys_by_id(
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

    /// Creates tenant `name` homed in `region` unless it exists, with its first
    /// data key, token signing key and API key (all scopes); returns its keys and,
    /// if this call created it, the API key (shown once).
    async fn create_tenant_keys(
        &self,
        name: &str,
        region: &str,
        sessions: SessionPolicy,
    ) -> Result<(Arc<TenantKeys>, Option<IssuedApiKey>), ServiceError> {
        let _one_at_a_time = self.inner.create_lock.lock().await;
        for _ in 0..ATTEMPTS {
            let epoch = self.inner.raft.meta_epoch();
            let (existing, master) = self.read_tenant(TenantRef::Name(name.to_owned())).await?;
            if let Some(record) = existing {
                return Ok((
                    self.install_keys(name, epoch, record, master.as_ref())?,
                    None,
                ));
            }
            let (kek_version, fingerprint) = match &master {
                Some(m) => (m.current.version, m.current.fingerprint.clone()),
                None => (1, self.inner.masters.configured().to_owned()),
            };
            let kek = self.master_key(&fingerprint)?;
            let id = cairn_crypto::random_hex(16);
            let now = unix_now();
            let wrapped = wrap_new_key(&kek, &id, 1, kek_version)?;
            let record = TenantRecord {
                id,
                name: name.to_owned(),
                region: region.to_owned(),
                created_at: now,
                keys: vec![WrappedKey {
                    version: 1,
                    kek_version,
                    wrapped,
                    created_at: now,
                }],
                sessions,
            };
            // The tenant's keys as they will be once created: they seal its
            // signing key (bound to `meta`) before the tenant exists.
            let keys = TenantKeys::unwrap(record.clone(), &fingerprint, &self.inner.masters)
                .map_err(|e| key_error(&e))?;
            let signing_key = new_signing_key(&keys)?;
            let (api_key, api_record) = new_api_key(&record.id, &Scope::ALL);
            let issued = IssuedApiKey {
                id: api_key.id().to_owned(),
                api_key: api_key.encode().to_string(),
                scopes: Scope::ALL.to_vec(),
                created_at: api_record.created_at,
            };
            let cmd = Command::Meta(MetaCommand::CreateTenant(sm::CreateTenant {
                tenant: record,
                master_fingerprint: fingerprint.clone(),
                api_key: Some(Box::new(api_record)),
                signing_key: Some(Box::new(signing_key)),
            }));
            match self.inner.raft.write(META_GROUP, cmd).await? {
                CommandResult::Meta(MetaOutcome::TenantCreated(record)) => {
                    tracing::info!(tenant = name, tenant_id = %record.id, region, "tenant created");
                    let master = MasterKeyState {
                        current: MasterKeyRecord {
                            version: kek_version,
                            fingerprint,
                            since: now,
                        },
                        retired: Vec::new(),
                    };
                    return Ok((
                        self.install_keys(name, epoch, record, Some(&master))?,
                        Some(issued),
                    ));
                }
                // Lost a race (the tenant or a new master key appeared): read again.
                CommandResult::Meta(
                    MetaOutcome::TenantExists(_) | MetaOutcome::MasterKeyConflict { .. },
                ) => {}
                other => return Err(unexpected("tenant creation", &other)),
            }
        }
        Err(ServiceError::Conflict(
            "tenant creation kept racing with other key changes; retry".to_owned(),
        ))
    }

    /// Creates a tenant homed in `region` (default: the config's default region).
    ///
    /// # Errors
    /// An invalid name, an unknown region, or a tenant of that name exists (409).
    pub async fn create_tenant(
        &self,
        name: &str,
        region: Option<&str>,
        settings: TenantSettings,
    ) -> Result<CreatedTenant, ServiceError> {
        validate_tenant(name)?;
        let sessions = settings.apply_to(SessionPolicy::default())?;
        let region = region.unwrap_or(&self.inner.cfg.default_region).to_owned();
        if self.inner.cfg.region(&region).is_none() {
            return Err(ServiceError::InvalidRequest(format!(
                "unknown region {region:?}; the config declares {}",
                self.inner
                    .cfg
                    .regions
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let (keys, issued) = self.create_tenant_keys(name, &region, sessions).await?;
        let Some(issued) = issued else {
            return Err(ServiceError::TenantExists(name.to_owned()));
        };
        Ok(CreatedTenant {
            tenant: TenantView::from(keys.record()),
            api_key: issued.api_key,
            api_key_id: issued.id,
        })
    }

    /// The tenant with id `tenant_id`.
    ///
    /// # Errors
    /// `tenant_not_found`, `meta` unavailable.
    pub async fn get_tenant(&self, tenant_id: &str) -> Result<TenantView, ServiceError> {
        match self
            .read_tenant(TenantRef::Id(tenant_id.to_owned()))
            .await?
        {
            (Some(t), _) => Ok(TenantView::from(&t)),
            (None, _) => Err(ServiceError::TenantNotFound),
        }
    }

    /// Changes tenant `tenant_id`'s settings. New session lifetimes apply to
    /// sessions signed in from then on; existing sessions keep theirs.
    ///
    /// # Errors
    /// `tenant_not_found`, `invalid_request`, `meta` unavailable.
    pub async fn update_tenant(
        &self,
        tenant_id: &str,
        settings: TenantSettings,
    ) -> Result<TenantView, ServiceError> {
        let (tenant, _) = self
            .read_tenant(TenantRef::Id(tenant_id.to_owned()))
            .await?;
        let tenant = tenant.ok_or(ServiceError::TenantNotFound)?;
        // Checked here for a precise message; the state machine merges the given
        // fields into the record as it stands then, and checks again.
        settings.apply_to(tenant.sessions)?;
        let cmd = Command::Meta(MetaCommand::SetSessionPolicy(
            sm::tenants::SetSessionPolicy {
                tenant_id: tenant_id.to_owned(),
                idle_timeout_secs: settings.session_idle_timeout_secs,
                absolute_timeout_secs: settings.session_absolute_timeout_secs,
            },
        ));
        match self.inner.raft.write(META_GROUP, cmd).await? {
            CommandResult::Meta(MetaOutcome::TenantUpdated(t)) => {
                tracing::info!(
                    tenant_id,
                    idle_timeout_secs = t.sessions.idle_timeout_secs,
                    absolute_timeout_secs = t.sessions.absolute_timeout_secs,
                    "tenant session policy changed"
                );
                Ok(TenantView::from(&t))
            }
            CommandResult::Meta(MetaOutcome::TenantNotFound) => Err(ServiceError::TenantNotFound),
            // Another change landed in between and the merge is out of bounds.
            CommandResult::Meta(MetaOutcome::InvalidSetting) => Err(ServiceError::InvalidRequest(
                "the session lifetimes changed meanwhile and this change no longer fits them \
                 (idle at most absolute); read the tenant and retry"
                    .to_owned(),
            )),
            other => Err(unexpected("tenant update", &other)),
        }
    }

    /// Every tenant.
    ///
    /// # Errors
    /// `meta` unavailable.
    pub async fn list_tenants(&self) -> Result<Vec<TenantView>, ServiceError> {
        let (tenants, _) = self.read_tenants().await?;
        Ok(tenants.iter().map(TenantView::from).collect())
    }

    fn master_key(&self, fingerprint: &str) -> Result<Arc<MasterKey>, ServiceError> {
        self.inner
            .masters
            .get(fingerprint)
            .ok_or_else(|| key_error(&KeyError::MasterKeyMissing(fingerprint.to_owned())))
    }

    /// Rotates a tenant's data key: new writes are sealed under the new version;
    /// values sealed under older versions stay readable and are re-sealed when
    /// next written.
    ///
    /// # Errors
    /// Unknown tenant, the master key missing on this node, or repeated races.
    pub async fn rotate_tenant_key(&self, name: &str) -> Result<RotatedTenantKey, ServiceError> {
        validate_tenant(name)?;
        for _ in 0..ATTEMPTS {
            let (tenant, master) = self.read_tenant(TenantRef::Name(name.to_owned())).await?;
            let tenant = tenant.ok_or(ServiceError::TenantNotFound)?;
            let master = master.ok_or(ServiceError::Internal)?;
            let kek = self.master_key(&master.current.fingerprint)?;
            let next = tenant
                .current_key()
                .map_or(1, |k| k.version.saturating_add(1));
            let cmd = Command::Meta(MetaCommand::AddTenantKey(sm::tenants::AddTenantKey {
                tenant_id: tenant.id.clone(),
                key: WrappedKey {
                    version: next,
                    kek_version: master.current.version,
                    wrapped: wrap_new_key(&kek, &tenant.id, next, master.current.version)?,
                    created_at: unix_now(),
                },
                master_fingerprint: master.current.fingerprint.clone(),
            }));
            match self.inner.raft.write(META_GROUP, cmd).await? {
                CommandResult::Meta(MetaOutcome::KeyAdded(record)) => {
                    tracing::info!(tenant = name, tenant_id = %record.id, key_version = next, "tenant data key rotated");
                    self.inner.tenants.remove(name);
                    return Ok(RotatedTenantKey {
                        tenant: name.to_owned(),
                        tenant_id: record.id,
                        key_version: next,
                    });
                }
                CommandResult::Meta(MetaOutcome::TenantNotFound) => {
                    return Err(ServiceError::TenantNotFound)
                }
                CommandResult::Meta(
                    MetaOutcome::KeyVersionConflict { .. } | MetaOutcome::MasterKeyConflict { .. },
                ) => {}
                other => return Err(unexpected("tenant key rotation", &other)),
            }
        }
        Err(ServiceError::Conflict(
            "key rotation kept racing with other key changes; retry".to_owned(),
        ))
    }

    /// Loads a new master key on this node from `path` (a file on this node's
    /// host, mode 0600 or stricter) and records the path so a restart loads it
    /// too. Changes nothing in the cluster: `rotate_master_key` does.
    ///
    /// # Errors
    /// A relative path, or a key file that is missing, loose or of the wrong length.
    pub async fn stage_master_key(&self, path: &str) -> Result<StagedMasterKey, ServiceError> {
        let path = Path::new(path);
        if !path.is_absolute() {
            return Err(ServiceError::InvalidRequest(
                "key_file must be an absolute path on the node's host".to_owned(),
            ));
        }
        let owned = path.to_path_buf();
        let key = tokio::task::spawn_blocking(move || MasterKey::load(&owned))
            .await
            .map_err(|_| ServiceError::Internal)?
            .map_err(|e| ServiceError::InvalidRequest(format!("master key file refused: {e}")))?;
        let fingerprint = self.inner.masters.add(key);
        self.inner
            .engine
            .add_staged_master_key_file(path)
            .map_err(|e| {
                tracing::error!(error = %e, "recording the staged master key file");
                ServiceError::Internal
            })?;
        tracing::info!(%fingerprint, path = %path.display(), "master key staged");
        Ok(StagedMasterKey {
            node: self.inner.node_id,
            fingerprint,
        })
    }

    /// Makes the staged master key `fingerprint` the cluster's current one:
    /// re-wraps every tenant data key under it in one `meta` entry. Every node
    /// must have staged it first (the CLI checks), or they could not unwrap.
    ///
    /// # Errors
    /// The key is not staged on this node, the current one is missing, or races.
    pub async fn rotate_master_key(&self, fingerprint: &str) -> Result<KeysView, ServiceError> {
        let new = self.inner.masters.get(fingerprint).ok_or_else(|| {
            ServiceError::InvalidRequest(format!(
                "master key {fingerprint} is not staged on node {}; stage it first",
                self.inner.node_id
            ))
        })?;
        for _ in 0..ATTEMPTS {
            let (tenants, master) = self.read_tenants().await?;
            let (expected_version, rewrapped) = match &master {
                Some(m) if m.current.fingerprint == fingerprint => return self.keys_view().await,
                Some(m) => {
                    let old = self.master_key(&m.current.fingerprint)?;
                    let next = m.current.version.saturating_add(1);
                    (m.current.version, rewrap_all(&tenants, &old, &new, next)?)
                }
                None => (0, Vec::new()),
            };
            let count = rewrapped.len();
            let cmd = Command::Meta(MetaCommand::RotateMaster(sm::RotateMaster {
                expected_version,
                fingerprint: fingerprint.to_owned(),
                at: unix_now(),
                rewrapped,
            }));
            match self.inner.raft.write(META_GROUP, cmd).await? {
                CommandResult::Meta(MetaOutcome::MasterRotated(state)) => {
                    tracing::info!(
                        fingerprint,
                        version = state.current.version,
                        rewrapped = count,
                        "master key rotated"
                    );
                    return self.keys_view().await;
                }
                CommandResult::Meta(
                    MetaOutcome::RewrapStale | MetaOutcome::MasterKeyConflict { .. },
                ) => {}
                other => return Err(unexpected("master key rotation", &other)),
            }
        }
        Err(ServiceError::Conflict(
            "master key rotation kept racing with other key changes; retry".to_owned(),
        ))
    }

    async fn read_tenants(
        &self,
    ) -> Result<(Vec<TenantRecord>, Option<MasterKeyState>), ServiceError> {
        match self.inner.raft.query(META_GROUP, Query::Tenants).await? {
            QueryResult::Tenants { tenants, master } => Ok((tenants, master)),
            other => Err(unexpected("tenant list", &other)),
        }
    }

    /// Key versions of the master key and of every tenant (no key material).
    ///
    /// # Errors
    /// `meta` unavailable.
    pub async fn keys_view(&self) -> Result<KeysView, ServiceError> {
        let (tenants, master) = self.read_tenants().await?;
        Ok(KeysView {
            master_key: master.as_ref().map(|m| (&m.current).into()),
            retired_master_keys: master
                .as_ref()
                .map(|m| m.retired.iter().map(Into::into).collect())
                .unwrap_or_default(),
            node_master_keys: self.inner.masters.fingerprints(),
            tenants: tenants
                .into_iter()
                .map(|t| TenantKeysView {
                    key_version: t.current_key().map_or(0, |k| k.version),
                    key_versions: t
                        .keys
                        .iter()
                        .map(|k| KeyVersionView {
                            version: k.version,
                            master_key_version: k.kek_version,
                            created_at: k.created_at,
                        })
                        .collect(),
                    name: t.name,
                    id: t.id,
                })
                .collect(),
        })
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

fn wrap_new_key(
    kek: &MasterKey,
    tenant_id: &str,
    version: u32,
    kek_version: u32,
) -> Result<Vec<u8>, ServiceError> {
    kek.wrap(
        &DataKey::generate(version),
        &WrapBinding {
            tenant_id,
            dek_version: version,
            kek_version,
        },
    )
    .map_err(|e| {
        tracing::error!(error = %e, "wrapping a new data key");
        ServiceError::Internal
    })
}

/// Every tenant key unwrapped under `old` and wrapped again under `new` as master
/// key version `next`.
fn rewrap_all(
    tenants: &[TenantRecord],
    old: &MasterKey,
    new: &MasterKey,
    next: u32,
) -> Result<Vec<(String, WrappedKey)>, ServiceError> {
    let mut out = Vec::new();
    for t in tenants {
        for k in &t.keys {
            let dek = unwrap_tenant_key(old, &t.id, k).map_err(|error| {
                key_error(&KeyError::Unwrap {
                    version: k.version,
                    error,
                })
            })?;
            let wrapped = new
                .wrap(
                    &dek,
                    &WrapBinding {
                        tenant_id: &t.id,
                        dek_version: k.version,
                        kek_version: next,
                    },
                )
                .map_err(|_| ServiceError::Internal)?;
            out.push((
                t.id.clone(),
                WrappedKey {
                    version: k.version,
                    kek_version: next,
                    wrapped,
                    created_at: k.created_at,
                },
            ));
        }
    }
    Ok(out)
}
