//! Tenants: created (with their first data key, token signing key and API
//! key), read, listed, changed and deleted by the operator, and their data key
//! rotation.
//!
//! Every decision is the `meta` group's: this node generates and wraps keys, but a
//! key exists only once its command is applied, and the apply logic (storage's
//! `tenants` module) refuses versions that collide or keys wrapped under anything
//! but the current master key. So two nodes rotating at once, or a master rotation
//! racing a tenant creation, end with one winner and a retry, never a lost key.

use std::collections::BTreeMap;
use std::sync::Arc;

use cairn_cluster_config::META_GROUP;
use cairn_crypto::envelope::DataKey;
use cairn_crypto::keywrap::WrapBinding;
use cairn_crypto::MasterKey;
use cairn_storage::sm::tenants::{
    AddKeyOutcome, AddTenantKey, CreateOutcome, DeleteTenant, DeleteTenantOutcome, PurgeTenant,
    Purged, SetSessionPolicy, SetSessionPolicyOutcome, SetTenantSettings, SetTenantSettingsOutcome,
    TenantSettings as StoredSettings,
};
use cairn_storage::sm::CreateTenant;
use cairn_storage::{
    MasterKeyRecord, MasterKeyState, SessionPolicy, TenantRecord, TenantRef, WrappedKey,
};

use cairn_cluster_config::{Bucket, RATE_LIMIT_ACTIONS};

use super::core::{
    key_error, new_api_key, new_signing_key, rate_limit, unix_now, validate_tenant, Call, Core,
    Scope, Settings, TenantKeys,
};
use crate::error::ServiceError;

/// Attempts when a proposal lost a race (another rotation or creation committed
/// first) before giving up with 409.
const ATTEMPTS: usize = 5;

/// Rate limits by action, then scope (`{"sign_in": {"email": {...}}}`).
pub type RateLimitTable = BTreeMap<String, BTreeMap<String, Bucket>>;

/// A tenant as the admin API shows it (no keys), with every setting in effect.
#[derive(Debug)]
pub struct TenantView {
    pub id: String,
    pub name: String,
    pub region: String,
    pub created_at: u64,
    pub session_idle_timeout_secs: u64,
    pub session_absolute_timeout_secs: u64,
    pub refresh_retry_grace_secs: u64,
    pub rate_limits: RateLimitTable,
    pub breached_password_check: bool,
}

impl TenantView {
    fn new(t: &TenantRecord, s: &Settings) -> Self {
        let mut rate_limits = RateLimitTable::new();
        for (action, scope, bucket) in s.rate_limits.iter() {
            rate_limits
                .entry(action.to_owned())
                .or_default()
                .insert(scope.to_owned(), bucket);
        }
        Self {
            id: t.id.clone(),
            name: t.name.clone(),
            region: t.region.clone(),
            created_at: t.created_at,
            session_idle_timeout_secs: t.sessions.idle_timeout_secs,
            session_absolute_timeout_secs: t.sessions.absolute_timeout_secs,
            refresh_retry_grace_secs: s.refresh_retry_grace_secs,
            rate_limits,
            breached_password_check: s.breached_password_check,
        }
    }
}

/// Tenant settings an operator may give at creation or change later (also the
/// `PATCH /v1/admin/tenants/{id}` body); a field left out keeps its current (or
/// default) value, and so does a rate limit bucket left out.
#[derive(Debug, Default, Clone)]
pub struct TenantSettings {
    pub session_idle_timeout_secs: Option<u64>,
    pub session_absolute_timeout_secs: Option<u64>,
    pub refresh_retry_grace_secs: Option<u64>,
    pub rate_limits: Option<RateLimitTable>,
    pub breached_password_check: Option<bool>,
}

impl TenantSettings {
    /// The settings stored beside the tenant record (`None`: none given).
    ///
    /// # Errors
    /// `invalid_request` naming the setting out of bounds.
    fn stored(&self) -> Result<Option<StoredSettings>, ServiceError> {
        let mut out = StoredSettings {
            refresh_retry_grace_secs: self.refresh_retry_grace_secs,
            breached_password_check: self.breached_password_check,
            ..StoredSettings::default()
        };
        for (action, scopes) in self.rate_limits.iter().flatten() {
            if !RATE_LIMIT_ACTIONS.contains(&action.as_str()) {
                return Err(ServiceError::InvalidRequest(format!(
                    "rate_limits: unknown action {action:?}; one of {}",
                    RATE_LIMIT_ACTIONS.join(", ")
                )));
            }
            for (scope, bucket) in scopes {
                out.rate_limits
                    .insert((action.clone(), scope.clone()), rate_limit(*bucket));
            }
        }
        if out == StoredSettings::default() {
            return Ok(None);
        }
        if !out.is_valid() {
            return Err(ServiceError::InvalidRequest(format!(
                "refresh_retry_grace_secs must be 0-{}; rate_limits names scopes email, ip \
                 and pair, each with burst and per_minute 1-{}",
                StoredSettings::MAX_REFRESH_RETRY_GRACE_SECS,
                cairn_storage::sm::tenants::RateLimit::MAX,
            )));
        }
        Ok(Some(out))
    }

    fn sets_sessions(&self) -> bool {
        self.session_idle_timeout_secs.is_some() || self.session_absolute_timeout_secs.is_some()
    }

    /// `base` with these settings applied.
    ///
    /// # Errors
    /// `invalid_request` naming the bounds the result breaks.
    fn apply_to(&self, base: SessionPolicy) -> Result<SessionPolicy, ServiceError> {
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

/// A new tenant and its first API key (every scope but `client_info`), shown once.
pub struct CreatedTenant {
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

#[derive(Debug)]
pub struct RotatedTenantKey {
    pub tenant: String,
    pub tenant_id: String,
    pub key_version: u32,
}

/// The operator's tenant administration.
#[derive(Clone)]
pub struct TenantService {
    core: Core,
    /// One tenant creation at a time on this node, so a burst of creations of
    /// one tenant proposes one `CreateTenant`, not one per request.
    create_lock: Arc<tokio::sync::Mutex<()>>,
}

/// A tenant's first API key, as its creation returns it (shown once).
struct FirstApiKey {
    id: String,
    api_key: String,
}

impl TenantService {
    #[must_use]
    pub fn new(core: Core) -> Self {
        Self {
            core,
            create_lock: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// Creates tenant `name` homed in `region` unless it exists, with its first
    /// data key, token signing key and API key (every scope but `client_info`); returns its keys and,
    /// if this call created it, the API key (shown once).
    async fn create_tenant_keys(
        &self,
        call: &Call,
        name: &str,
        region: &str,
        sessions: SessionPolicy,
    ) -> Result<(Arc<TenantKeys>, Option<FirstApiKey>), ServiceError> {
        let _one_at_a_time = self.create_lock.lock().await;
        for _ in 0..ATTEMPTS {
            let epoch = self.core.raft().meta_epoch();
            let (existing, master) = self
                .core
                .read_tenant(TenantRef::Name(name.to_owned()))
                .await?;
            if let Some(record) = existing {
                return Ok((
                    self.core
                        .install_keys(name, epoch, record, master.as_ref())?,
                    None,
                ));
            }
            let (kek_version, fingerprint) = match &master {
                Some(m) => (m.current.version, m.current.fingerprint.clone()),
                None => (1, self.core.masters().configured().to_owned()),
            };
            let kek = self.core.master_key(&fingerprint)?;
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
            let keys = TenantKeys::unwrap(record.clone(), &fingerprint, self.core.masters())
                .map_err(|e| key_error(&e))?;
            let signing_key = new_signing_key(&keys)?;
            let (api_key, api_record) = new_api_key(&record.id, &Scope::FIRST_KEY);
            let issued = FirstApiKey {
                id: api_key.id().to_owned(),
                api_key: api_key.encode().to_string(),
            };
            let cmd = CreateTenant {
                tenant: record,
                master_fingerprint: fingerprint.clone(),
                api_key: Some(Box::new(api_record)),
                signing_key: Some(Box::new(signing_key)),
            };
            match self.core.write(call, META_GROUP, cmd).await? {
                CreateOutcome::Created(record) => {
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
                        self.core.install_keys(name, epoch, record, Some(&master))?,
                        Some(issued),
                    ));
                }
                // Lost a race (the tenant or a new master key appeared): read again.
                CreateOutcome::Exists(_) | CreateOutcome::MasterKeyConflict(_) => {}
                // What this proposal rules out: its one key is version 1 with fresh
                // random ids, its settings were checked above, and the name was
                // free when read. Either is a bug or a corrupt `meta`.
                outcome @ (CreateOutcome::NotFound
                | CreateOutcome::KeyVersionConflict { .. }
                | CreateOutcome::InvalidSetting) => {
                    tracing::error!(tenant = name, ?outcome, "tenant creation refused");
                    return Err(ServiceError::Internal);
                }
            }
        }
        Err(ServiceError::Conflict(
            "tenant creation kept racing with other key changes; retry".to_owned(),
        ))
    }

    /// Creates a tenant homed in `region` (default: the config's default region)
    /// (operator).
    ///
    /// # Errors
    /// Not the operator, an invalid name, an unknown region, or a tenant of that name exists (409).
    pub async fn create(
        &self,
        call: &Call,
        name: &str,
        region: Option<&str>,
        settings: TenantSettings,
    ) -> Result<CreatedTenant, ServiceError> {
        call.operator()?;
        validate_tenant(name)?;
        let sessions = settings.apply_to(SessionPolicy::default())?;
        let stored = settings.stored()?;
        let region = region
            .unwrap_or(&self.core.config().default_region)
            .to_owned();
        if self.core.config().region(&region).is_none() {
            return Err(ServiceError::InvalidRequest(format!(
                "unknown region {region:?}; the config declares {}",
                self.core
                    .config()
                    .regions
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let (keys, issued) = self
            .create_tenant_keys(call, name, &region, sessions)
            .await?;
        let Some(issued) = issued else {
            return Err(ServiceError::TenantExists(name.to_owned()));
        };
        if let Some(stored) = stored {
            self.write_settings(call, keys.id(), stored).await?;
        }
        Ok(CreatedTenant {
            tenant: self.view(keys.record()).await?,
            api_key: issued.api_key,
            api_key_id: issued.id,
        })
    }

    /// The tenant with id `tenant_id` (operator).
    ///
    /// # Errors
    /// Not the operator, `tenant_not_found`, `meta` unavailable.
    pub async fn get(&self, call: &Call, tenant_id: &str) -> Result<TenantView, ServiceError> {
        call.operator()?;
        match self
            .core
            .read_tenant(TenantRef::Id(tenant_id.to_owned()))
            .await?
        {
            (Some(t), _) => self.view(&t).await,
            (None, _) => Err(ServiceError::TenantNotFound),
        }
    }

    /// Changes tenant `tenant_id`'s settings. New session lifetimes apply to
    /// sessions signed in from then on; existing sessions keep theirs (operator).
    ///
    /// # Errors
    /// Not the operator, `tenant_not_found`, `invalid_request`, `meta` unavailable.
    pub async fn update(
        &self,
        call: &Call,
        tenant_id: &str,
        settings: TenantSettings,
    ) -> Result<TenantView, ServiceError> {
        call.operator()?;
        let (tenant, _) = self
            .core
            .read_tenant(TenantRef::Id(tenant_id.to_owned()))
            .await?;
        let tenant = tenant.ok_or(ServiceError::TenantNotFound)?;
        // Checked here for a precise message; the state machine merges the given
        // fields into the record as it stands then, and checks again.
        settings.apply_to(tenant.sessions)?;
        let stored = settings.stored()?;
        if let Some(stored) = stored {
            self.write_settings(call, tenant_id, stored).await?;
        }
        if !settings.sets_sessions() {
            let (tenant, _) = self
                .core
                .read_tenant(TenantRef::Id(tenant_id.to_owned()))
                .await?;
            let tenant = tenant.ok_or(ServiceError::TenantNotFound)?;
            return self.view(&tenant).await;
        }
        let cmd = SetSessionPolicy {
            tenant_id: tenant_id.to_owned(),
            idle_timeout_secs: settings.session_idle_timeout_secs,
            absolute_timeout_secs: settings.session_absolute_timeout_secs,
        };
        match self.core.write(call, META_GROUP, cmd).await? {
            SetSessionPolicyOutcome::TenantUpdated(t) => {
                tracing::info!(
                    tenant_id,
                    idle_timeout_secs = t.sessions.idle_timeout_secs,
                    absolute_timeout_secs = t.sessions.absolute_timeout_secs,
                    "tenant session policy changed"
                );
                self.view(&t).await
            }
            SetSessionPolicyOutcome::TenantNotFound => Err(ServiceError::TenantNotFound),
            // Another change landed in between and the merge is out of bounds.
            SetSessionPolicyOutcome::InvalidSetting => Err(ServiceError::InvalidRequest(
                "the session lifetimes changed meanwhile and this change no longer fits them \
                 (idle at most absolute); read the tenant and retry"
                    .to_owned(),
            )),
        }
    }

    /// Every tenant (operator).
    ///
    /// # Errors
    /// Not the operator, `meta` unavailable.
    pub async fn list(&self, call: &Call) -> Result<Vec<TenantView>, ServiceError> {
        call.operator()?;
        let (tenants, _) = self.core.read_tenants().await?;
        let mut out = Vec::with_capacity(tenants.len());
        for t in &tenants {
            out.push(self.view(t).await?);
        }
        Ok(out)
    }

    /// Tenant `t` with the settings in effect for it.
    async fn view(&self, t: &TenantRecord) -> Result<TenantView, ServiceError> {
        let stored = self.core.stored_settings(&t.id).await?;
        let settings = Settings::resolve(&stored, &self.core.config().rate_limits);
        Ok(TenantView::new(t, &settings))
    }

    /// Stores `set` over tenant `tenant_id`'s settings (each setting given
    /// replaces its own).
    ///
    /// # Errors
    /// `invalid_request` (bounds; a cluster not yet at wire version 3),
    /// `tenant_not_found`, `meta` unavailable.
    async fn write_settings(
        &self,
        call: &Call,
        tenant_id: &str,
        set: StoredSettings,
    ) -> Result<StoredSettings, ServiceError> {
        if !self.core.speaks(3) {
            return Err(ServiceError::InvalidRequest(
                "these settings need the cluster at wire version 3: run \
                 `cairn finalize-upgrade` once every node is upgraded"
                    .to_owned(),
            ));
        }
        let cmd = SetTenantSettings {
            tenant_id: tenant_id.to_owned(),
            set,
        };
        match self.core.write(call, META_GROUP, cmd).await? {
            SetTenantSettingsOutcome::SettingsSet(s) => {
                tracing::info!(tenant_id, "tenant settings changed");
                Ok(s)
            }
            SetTenantSettingsOutcome::TenantNotFound => Err(ServiceError::TenantNotFound),
            SetTenantSettingsOutcome::InvalidSetting => Err(ServiceError::InvalidRequest(
                "a setting is out of bounds".to_owned(),
            )),
        }
    }

    /// Rotates a tenant's data key: new writes are sealed under the new version;
    /// values sealed under older versions stay readable and are re-sealed when
    /// next written (operator).
    ///
    /// # Errors
    /// Not the operator, unknown tenant, the master key missing on this node, or repeated races.
    pub async fn rotate_key(
        &self,
        call: &Call,
        name: &str,
    ) -> Result<RotatedTenantKey, ServiceError> {
        call.operator()?;
        validate_tenant(name)?;
        for _ in 0..ATTEMPTS {
            let (tenant, master) = self
                .core
                .read_tenant(TenantRef::Name(name.to_owned()))
                .await?;
            let tenant = tenant.ok_or(ServiceError::TenantNotFound)?;
            let master = master.ok_or(ServiceError::Internal)?;
            let kek = self.core.master_key(&master.current.fingerprint)?;
            let next = tenant
                .current_key()
                .map_or(1, |k| k.version.saturating_add(1));
            let cmd = AddTenantKey {
                tenant_id: tenant.id.clone(),
                key: WrappedKey {
                    version: next,
                    kek_version: master.current.version,
                    wrapped: wrap_new_key(&kek, &tenant.id, next, master.current.version)?,
                    created_at: unix_now(),
                },
                master_fingerprint: master.current.fingerprint.clone(),
            };
            match self.core.write(call, META_GROUP, cmd).await? {
                AddKeyOutcome::KeyAdded(record) => {
                    tracing::info!(tenant = name, tenant_id = %record.id, key_version = next, "tenant data key rotated");
                    self.core.forget_tenant(name);
                    return Ok(RotatedTenantKey {
                        tenant: name.to_owned(),
                        tenant_id: record.id,
                        key_version: next,
                    });
                }
                AddKeyOutcome::TenantNotFound => return Err(ServiceError::TenantNotFound),
                AddKeyOutcome::KeyVersionConflict { .. } | AddKeyOutcome::MasterKeyConflict(_) => {}
            }
        }
        Err(ServiceError::Conflict(
            "key rotation kept racing with other key changes; retry".to_owned(),
        ))
    }

    /// Deletes a tenant (operator): its keys go in one `meta` entry — from then
    /// on its data in every region is unreadable — then its rows are purged group
    /// by group.
    ///
    /// # Errors
    /// Not the operator, unknown tenant, `meta` unavailable.
    pub async fn delete(&self, call: &Call, tenant_id: &str) -> Result<(), ServiceError> {
        call.operator()?;
        let cmd = DeleteTenant {
            tenant_id: tenant_id.to_owned(),
        };
        let tenant = match self.core.write(call, META_GROUP, cmd).await? {
            DeleteTenantOutcome::TenantDeleted(t) => t,
            DeleteTenantOutcome::TenantNotFound => return Err(ServiceError::TenantNotFound),
        };
        self.core.forget_tenant(&tenant.name);
        tracing::info!(tenant_id, "tenant deleted");
        // The data keys are gone, so what remains in the data groups can no longer
        // be read; purging it is housekeeping, and a region that is down now keeps
        // its (unreadable) rows until a later purge.
        for group in self
            .core
            .config()
            .groups()
            .iter()
            .filter(|g| g.id != META_GROUP)
        {
            let cmd = PurgeTenant {
                tenant: tenant_id.to_owned(),
            };
            match self.core.write(call, group.id, cmd).await {
                Ok(Purged { rows }) => {
                    tracing::info!(tenant_id, group = %group.name, rows, "tenant rows purged");
                }
                Err(e) => tracing::warn!(
                    tenant_id, group = %group.name, error = %e,
                    "tenant rows not purged (unreadable without the deleted keys)"
                ),
            }
        }
        Ok(())
    }
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
