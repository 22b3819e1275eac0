//! Tenant key-value, sealed at the receiving node before it is proposed.
//!
//! What a write proposes (and so what the Raft log, snapshots and SST files hold):
//! the tenant's id, the blind index of the key name (HMAC under the tenant's
//! blind-index subkey) and the sealed record `{key, value}` bound to (tenant id,
//! group, blind index, key version). No key name or value in the clear.

use std::sync::Arc;

use cairn_cluster_config::META_GROUP;
use cairn_storage::codec;
use cairn_storage::sm::kv::{Delete, DeleteOutcome, Get, Put, PutOutcome};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::core::{
    region_error, validate_tenant, Call, Caller, Core, OpenError, Scope, TenantKeys, MAX_KEY_BYTES,
    MAX_VALUE_BYTES,
};
use crate::error::ServiceError;

/// The tenant key-value store.
#[derive(Clone)]
pub struct KvService {
    core: Core,
}

/// A key's value and the revision (the write's sequence number in the log) that
/// wrote it.
#[derive(Clone, PartialEq, Eq)]
pub struct KvEntry {
    pub key: String,
    pub value: String,
    pub revision: u64,
}

/// Never prints the key name or value (tenant data stays out of logs).
impl std::fmt::Debug for KvEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvEntry")
            .field("key", &format_args!("<{} bytes>", self.key.len()))
            .field("value", &format_args!("<{} bytes>", self.value.len()))
            .field("revision", &self.revision)
            .finish()
    }
}

/// The plaintext inside a sealed KV record: the key name travels with its value,
/// so a record can be listed or exported without knowing its name beforehand.
#[derive(Serialize, Deserialize)]
struct KvPlain {
    key: String,
    value: String,
}

/// Encodes the sealed record's plaintext (held zeroized).
fn encode_plain(key: &str, value: String) -> Result<(Zeroizing<Vec<u8>>, String), ServiceError> {
    let plain = KvPlain {
        key: key.to_owned(),
        value,
    };
    let bytes = codec::encode("kv value", &plain).map_err(|e| {
        tracing::error!(error = %e, "encoding a kv value");
        ServiceError::Internal
    })?;
    Ok((Zeroizing::new(bytes), plain.value))
}

/// Decodes an opened record and checks it holds `key` (a record moved under
/// another blind index would already fail to open; this is belt and braces).
fn decode_plain(bytes: &[u8], key: &str) -> Result<String, ServiceError> {
    let plain: KvPlain =
        codec::decode("kv value", bytes).map_err(|_| ServiceError::DecryptionFailed)?;
    if plain.key != key {
        return Err(ServiceError::DecryptionFailed);
    }
    Ok(plain.value)
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

impl KvService {
    #[must_use]
    pub fn new(core: Core) -> Self {
        Self { core }
    }

    /// The tenant a KV call acts for: the tenant of an API key carrying `scope`,
    /// or, for the operator, the tenant it names (`X-Tenant`).
    ///
    /// # Errors
    /// Unauthorized, a missing scope, no tenant named by the operator, or an
    /// unknown tenant (`tenant_not_found`).
    async fn tenant(
        &self,
        call: &Call,
        x_tenant: Option<&str>,
        scope: Scope,
    ) -> Result<Arc<TenantKeys>, ServiceError> {
        let keys = match call.caller() {
            Caller::ApiKey(_) => Arc::clone(call.api_key(scope)?.keys()),
            Caller::Operator => {
                let name = x_tenant.ok_or(ServiceError::MissingTenant)?;
                validate_tenant(name)?;
                // As for an API key (`core::credentials`): the tenant cache serves
                // only once this replica of `meta` has applied every change the
                // request must see, or a tenant deleted and acknowledged on
                // another node would still be served here from the cache.
                self.core
                    .raft()
                    .read_barrier_since(META_GROUP, call.context().arrival)
                    .await?;
                self.core
                    .tenant_keys(name)
                    .await?
                    .ok_or(ServiceError::TenantNotFound)?
            }
            Caller::Public => return Err(ServiceError::Unauthorized),
        };
        // A tenant homed in a hard region another node is in: served there.
        let group = self.core.region_group(&keys.record().region)?;
        self.core.serve_here(group)?;
        Ok(keys)
    }

    /// Refuses a call that [`Self::put`], [`Self::get`] or [`Self::delete`]
    /// (needing `scope`) would refuse for its caller or tenant, before the
    /// adapter reads the key and body: an HTTP request answers for those first.
    ///
    /// # Errors
    /// As the tenant check of those methods.
    pub async fn admit(
        &self,
        call: &Call,
        x_tenant: Option<&str>,
        scope: Scope,
    ) -> Result<(), ServiceError> {
        self.tenant(call, x_tenant, scope).await.map(drop)
    }

    /// Writes `value` under `key` (scope `write`, or the operator for the tenant
    /// `x_tenant` names), optionally only if the key's revision is
    /// `expected_revision` (0: absent).
    ///
    /// # Errors
    /// The caller, validation, CAS mismatch, an unavailable group or master key.
    pub async fn put(
        &self,
        call: &Call,
        x_tenant: Option<&str>,
        key: &str,
        value: String,
        expected_revision: Option<u64>,
    ) -> Result<KvEntry, ServiceError> {
        let keys = self.tenant(call, x_tenant, Scope::Write).await?;
        validate_key(key)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(ServiceError::PayloadTooLarge(format!(
                "value is {} bytes; the limit is {MAX_VALUE_BYTES}",
                value.len()
            )));
        }
        let region = keys.record().region.clone();
        let group = self.core.region_group(&region)?;
        let index = keys.blind_index(key.as_bytes());
        let (plain, value) = encode_plain(key, value)?;
        let sealed = keys.seal(group.0, &index, &plain).map_err(|e| {
            tracing::error!(error = %e, tenant_id = keys.id(), "sealing a kv value");
            ServiceError::Internal
        })?;
        let cmd = Put {
            tenant: keys.id().to_owned(),
            key: index,
            value: sealed,
            expected_revision,
        };
        // The data plane: no events, so no trace (`Core::write`).
        let result = self.core.raft().write(group, cmd).await;
        match result.map_err(|e| region_error(&region, e))? {
            PutOutcome::Written { revision } => Ok(KvEntry {
                key: key.to_owned(),
                value,
                revision,
            }),
            PutOutcome::RevisionMismatch { current } => Err(ServiceError::RevisionMismatch {
                expected: expected_revision.unwrap_or(0),
                current,
            }),
        }
    }

    /// Reads `key` (scope `read`, or the operator) linearizably: both reads (the
    /// API key, the value) may take read indexes from any moment after the
    /// request arrived (see `RaftNode::read_since`), so a round another request
    /// started since may serve them.
    ///
    /// # Errors
    /// The caller, validation, not found, an unavailable group or master key, or
    /// a stored value that fails to open (`decryption_failed`).
    pub async fn get(
        &self,
        call: &Call,
        x_tenant: Option<&str>,
        key: &str,
    ) -> Result<KvEntry, ServiceError> {
        let keys = self.tenant(call, x_tenant, Scope::Read).await?;
        let since = call.context().arrival;
        validate_key(key)?;
        let region = keys.record().region.clone();
        let group = self.core.region_group(&region)?;
        let index = keys.blind_index(key.as_bytes());
        let query = Get {
            tenant: keys.id().to_owned(),
            key: index.clone(),
        };
        let answer = self.core.raft().read_since(group, query, since).await;
        let record = answer
            .map_err(|e| region_error(&region, e))?
            .ok_or(ServiceError::KeyNotFound)?;
        let mut keys = keys;
        let mut opened = keys.open(group.0, &index, &record.value);
        if let Err(OpenError::UnknownVersion(_)) = opened {
            // Sealed under a key version newer than this node's cached keys: read
            // the tenant's keys again and retry once.
            let name = keys.record().name.clone();
            if let Some(fresh) = self.core.reload_tenant_keys(&name).await? {
                opened = fresh.open(group.0, &index, &record.value);
                keys = fresh;
            }
        }
        let value = opened
            .map_err(|e| open_failed(&keys, group.0, record.revision, &e))
            .and_then(|plain| {
                decode_plain(&plain, key).inspect_err(|_| {
                    tracing::error!(
                        tenant_id = keys.id(),
                        group = group.0,
                        revision = record.revision,
                        "stored kv record does not hold the requested key"
                    );
                })
            });
        Ok(KvEntry {
            key: key.to_owned(),
            value: value?,
            revision: record.revision,
        })
    }

    /// Deletes a key (scope `delete`, or the operator; absent keys succeed),
    /// optionally guarded by a revision.
    ///
    /// # Errors
    /// The caller, validation, CAS mismatch, an unavailable group or master key.
    pub async fn delete(
        &self,
        call: &Call,
        x_tenant: Option<&str>,
        key: &str,
        expected_revision: Option<u64>,
    ) -> Result<(), ServiceError> {
        let keys = self.tenant(call, x_tenant, Scope::Delete).await?;
        validate_key(key)?;
        let region = keys.record().region.clone();
        let group = self.core.region_group(&region)?;
        let cmd = Delete {
            tenant: keys.id().to_owned(),
            key: keys.blind_index(key.as_bytes()),
            expected_revision,
        };
        let result = self.core.raft().write(group, cmd).await;
        match result.map_err(|e| region_error(&region, e))? {
            DeleteOutcome::Deleted { .. } => Ok(()),
            DeleteOutcome::RevisionMismatch { current } => Err(ServiceError::RevisionMismatch {
                expected: expected_revision.unwrap_or(0),
                current,
            }),
        }
    }
}

/// Logs (without secrets) and maps a value that failed to open.
fn open_failed(keys: &TenantKeys, group: u64, revision: u64, e: &OpenError) -> ServiceError {
    tracing::error!(
        tenant_id = keys.id(),
        group,
        revision,
        error = %e,
        "stored kv value failed to decrypt"
    );
    ServiceError::DecryptionFailed
}

#[cfg(all(test, not(feature = "insecure-no-sealing")))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn key_validation() {
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
    }

    #[test]
    fn a_record_for_another_key_is_refused() {
        let (plain, _) = encode_plain("a", "v".to_owned()).expect("encode");
        assert_eq!(decode_plain(&plain, "a").expect("decode"), "v");
        assert!(matches!(
            decode_plain(&plain, "b"),
            Err(ServiceError::DecryptionFailed)
        ));
    }

    /// Arbitrary bytes, and bytes that start with a large varint length prefix
    /// (what made bincode abort before decoding was capped).
    fn hostile_bytes() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..512),
            (
                0xfbu8..=0xfd,
                any::<u64>(),
                proptest::collection::vec(any::<u8>(), 0..16)
            )
                .prop_map(|(tag, len, tail)| {
                    let mut b = vec![tag];
                    b.extend_from_slice(&len.to_le_bytes());
                    b.extend_from_slice(&tail);
                    b
                }),
        ]
    }

    proptest! {
        #[test]
        fn the_record_decoder_never_panics(bytes in hostile_bytes()) {
            let _ = decode_plain(&bytes, "k");
            let _ = codec::decode::<cairn_storage::KvRecord>("kv record", &bytes);
        }
    }
}
