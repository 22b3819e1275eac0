//! The service layer: validation, authorization and the calls into the Raft groups.
//! HTTP and gRPC are thin adapters over it.

use std::sync::Arc;

use cairn_cluster_config::{ClusterConfig, GroupId};
use cairn_crypto::AdminToken;
use cairn_raft::{Command, CommandResult, Query, QueryResult, RaftNode};
use cairn_storage::{KvCommand, KvOutcome};

use crate::error::ServiceError;

pub const MAX_KEY_BYTES: usize = 512;
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
pub const MAX_TENANT_BYTES: usize = 128;

/// A key's value and the revision (log index) that wrote it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KvEntry {
    pub key: String,
    pub value: String,
    pub revision: u64,
}

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
}

impl Services {
    #[must_use]
    pub fn new(
        raft: Arc<RaftNode>,
        cfg: Arc<ClusterConfig>,
        admin: AdminToken,
        node_id: u64,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                raft,
                cfg,
                admin,
                node_id,
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
        let token = authorization
            .and_then(|h| {
                let (scheme, rest) = h.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .ok_or(ServiceError::Unauthorized)?;
        if self.inner.admin.verify(token) {
            Ok(())
        } else {
            Err(ServiceError::Unauthorized)
        }
    }

    /// The data group holding a tenant's KV: its home region's group. Until tenants
    /// are records with a region, every tenant lives in the default region.
    fn tenant_group(&self, _tenant: &str) -> Result<GroupId, ServiceError> {
        let cfg = &self.inner.cfg;
        cfg.region_group(&cfg.default_region)
            .map(|g| g.id)
            .ok_or(ServiceError::Internal)
    }

    /// # Errors
    /// Validation, CAS mismatch, or an unavailable group.
    pub async fn kv_put(
        &self,
        tenant: &str,
        key: &str,
        value: String,
        expected_revision: Option<u64>,
    ) -> Result<KvEntry, ServiceError> {
        validate_tenant(tenant)?;
        validate_key(key)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(ServiceError::PayloadTooLarge(format!(
                "value is {} bytes; the limit is {MAX_VALUE_BYTES}",
                value.len()
            )));
        }
        let group = self.tenant_group(tenant)?;
        let cmd = Command::Kv(KvCommand::Put {
            tenant: tenant.to_owned(),
            key: key.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
            expected_revision,
        });
        match self.inner.raft.write(group, cmd).await? {
            CommandResult::Kv(KvOutcome::Written { revision }) => Ok(KvEntry {
                key: key.to_owned(),
                value,
                revision,
            }),
            CommandResult::Kv(KvOutcome::RevisionMismatch { current }) => {
                Err(ServiceError::RevisionMismatch {
                    expected: expected_revision.unwrap_or(0),
                    current,
                })
            }
            other => {
                tracing::error!(?other, "unexpected result for kv put");
                Err(ServiceError::Internal)
            }
        }
    }

    /// Linearizable read.
    ///
    /// # Errors
    /// Validation, not found, or an unavailable group.
    pub async fn kv_get(&self, tenant: &str, key: &str) -> Result<KvEntry, ServiceError> {
        validate_tenant(tenant)?;
        validate_key(key)?;
        let group = self.tenant_group(tenant)?;
        let query = Query::KvGet {
            tenant: tenant.to_owned(),
            key: key.as_bytes().to_vec(),
        };
        match self.inner.raft.query(group, query).await? {
            QueryResult::Kv(Some(record)) => Ok(KvEntry {
                key: key.to_owned(),
                value: String::from_utf8(record.value).map_err(|_| {
                    tracing::error!("stored kv value is not UTF-8");
                    ServiceError::Internal
                })?,
                revision: record.revision,
            }),
            QueryResult::Kv(None) => Err(ServiceError::KeyNotFound),
        }
    }

    /// Deletes a key (absent keys succeed), optionally guarded by a revision.
    ///
    /// # Errors
    /// Validation, CAS mismatch, or an unavailable group.
    pub async fn kv_delete(
        &self,
        tenant: &str,
        key: &str,
        expected_revision: Option<u64>,
    ) -> Result<(), ServiceError> {
        validate_tenant(tenant)?;
        validate_key(key)?;
        let group = self.tenant_group(tenant)?;
        let cmd = Command::Kv(KvCommand::Delete {
            tenant: tenant.to_owned(),
            key: key.as_bytes().to_vec(),
            expected_revision,
        });
        match self.inner.raft.write(group, cmd).await? {
            CommandResult::Kv(KvOutcome::Deleted { .. }) => Ok(()),
            CommandResult::Kv(KvOutcome::RevisionMismatch { current }) => {
                Err(ServiceError::RevisionMismatch {
                    expected: expected_revision.unwrap_or(0),
                    current,
                })
            }
            other => {
                tracing::error!(?other, "unexpected result for kv delete");
                Err(ServiceError::Internal)
            }
        }
    }
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
