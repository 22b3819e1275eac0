//! The master key (the KEK every tenant data key is wrapped under): the
//! operator stages a new one on every node, then rotates the cluster to it (one
//! `meta` entry re-wraps every tenant key); the key versions, without key
//! material, are shown to the operator.

use std::path::Path;

use cairn_cluster_config::META_GROUP;
use cairn_crypto::keywrap::WrapBinding;
use cairn_crypto::MasterKey;
use cairn_storage::sm::master_key::RotateMasterOutcome;
use cairn_storage::sm::RotateMaster;
use cairn_storage::{MasterKeyRecord, TenantRecord, WrappedKey};

use super::core::keyring::unwrap_tenant_key;
use super::core::{key_error, unix_now, Call, Core, KeyError};
use crate::error::ServiceError;

/// Attempts when a rotation lost a race (another key change committed first)
/// before giving up with 409.
const ATTEMPTS: usize = 5;

#[derive(Debug)]
pub struct StagedMasterKey {
    pub node: u64,
    pub fingerprint: String,
}

#[derive(Debug)]
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

#[derive(Debug)]
pub struct TenantKeysView {
    pub name: String,
    pub id: String,
    pub key_version: u32,
    pub key_versions: Vec<KeyVersionView>,
}

#[derive(Debug)]
pub struct KeyVersionView {
    pub version: u32,
    pub master_key_version: u32,
    pub created_at: u64,
}

#[derive(Debug)]
pub struct KeysView {
    /// The cluster's current master key (`null` before the first tenant).
    pub master_key: Option<MasterKeyView>,
    pub retired_master_keys: Vec<MasterKeyView>,
    /// Fingerprints of the master keys this node holds.
    pub node_master_keys: Vec<String>,
    pub tenants: Vec<TenantKeysView>,
}

/// The operator's master key administration.
#[derive(Clone)]
pub struct MasterKeyService {
    core: Core,
}

impl MasterKeyService {
    #[must_use]
    pub fn new(core: Core) -> Self {
        Self { core }
    }

    /// Loads a new master key on this node from `path` (a file on this node's
    /// host, mode 0600 or stricter) and records the path so a restart loads it
    /// too (operator). Changes nothing in the cluster: [`Self::rotate`] does.
    ///
    /// # Errors
    /// Not the operator, a relative path, or a key file that is missing, loose or of the wrong length.
    pub async fn stage(&self, call: &Call, path: &str) -> Result<StagedMasterKey, ServiceError> {
        call.operator()?;
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
        let fingerprint = self.core.masters().add(key);
        self.core
            .engine()
            .add_staged_master_key_file(path)
            .map_err(|e| {
                tracing::error!(error = %e, "recording the staged master key file");
                ServiceError::Internal
            })?;
        tracing::info!(%fingerprint, path = %path.display(), "master key staged");
        Ok(StagedMasterKey {
            node: self.core.node_id(),
            fingerprint,
        })
    }

    /// Makes the staged master key `fingerprint` the cluster's current one:
    /// re-wraps every tenant data key under it in one `meta` entry. Every node
    /// must have staged it first (the CLI checks), or they could not unwrap
    /// (operator).
    ///
    /// # Errors
    /// Not the operator, the key is not staged on this node, the current one is missing, or races.
    pub async fn rotate(&self, call: &Call, fingerprint: &str) -> Result<KeysView, ServiceError> {
        call.operator()?;
        let new = self.core.masters().get(fingerprint).ok_or_else(|| {
            ServiceError::InvalidRequest(format!(
                "master key {fingerprint} is not staged on node {}; stage it first",
                self.core.node_id()
            ))
        })?;
        for _ in 0..ATTEMPTS {
            let (tenants, master) = self.core.read_tenants().await?;
            let (expected_version, rewrapped) = match &master {
                Some(m) if m.current.fingerprint == fingerprint => return self.keys_view().await,
                Some(m) => {
                    let old = self.core.master_key(&m.current.fingerprint)?;
                    let next = m.current.version.saturating_add(1);
                    (m.current.version, rewrap_all(&tenants, &old, &new, next)?)
                }
                None => (0, Vec::new()),
            };
            let count = rewrapped.len();
            let cmd = RotateMaster {
                expected_version,
                fingerprint: fingerprint.to_owned(),
                at: unix_now(),
                rewrapped,
            };
            match self.core.write(call, META_GROUP, cmd).await? {
                RotateMasterOutcome::MasterRotated(state) => {
                    tracing::info!(
                        fingerprint,
                        version = state.current.version,
                        rewrapped = count,
                        "master key rotated"
                    );
                    return self.keys_view().await;
                }
                RotateMasterOutcome::RewrapStale
                | RotateMasterOutcome::MasterKeyConflict { .. } => {}
            }
        }
        Err(ServiceError::Conflict(
            "master key rotation kept racing with other key changes; retry".to_owned(),
        ))
    }

    /// Key versions of the master key and of every tenant (no key material;
    /// operator).
    ///
    /// # Errors
    /// Not the operator, `meta` unavailable.
    pub async fn view(&self, call: &Call) -> Result<KeysView, ServiceError> {
        call.operator()?;
        self.keys_view().await
    }

    async fn keys_view(&self) -> Result<KeysView, ServiceError> {
        let (tenants, master) = self.core.read_tenants().await?;
        Ok(KeysView {
            master_key: master.as_ref().map(|m| (&m.current).into()),
            retired_master_keys: master
                .as_ref()
                .map(|m| m.retired.iter().map(Into::into).collect())
                .unwrap_or_default(),
            node_master_keys: self.core.masters().fingerprints(),
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
