//! Tenant key-value commands and their deterministic application.
//!
//! A command's revision is its sequence number in the log (entry index × 256 + its
//! position in the entry, see `cairn_raft`'s state machine): unique and increasing
//! within a group, the same on every replica (like etcd's `mod_revision`).

use std::collections::{BTreeMap, HashMap};

use rocksdb::WriteBatch;
use serde::{Deserialize, Serialize};

use crate::keys::{kv_key, state_key, CF_SM, SM_APPLIED};
use crate::state::GroupState;
use crate::{codec, Result};

/// `tenant` is the tenant's id and `key` the stored key path (the node stores a
/// blind index of the key name there, and the sealed record in `value`): storage
/// treats all three as opaque bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvCommand {
    /// Writes `value`. With `expected_revision`, only if the key's current revision
    /// equals it (`0`: only if the key does not exist).
    Put {
        tenant: String,
        key: Vec<u8>,
        value: Vec<u8>,
        expected_revision: Option<u64>,
    },
    /// Deletes the key (absent keys are not an error), with the same optional guard.
    Delete {
        tenant: String,
        key: Vec<u8>,
        expected_revision: Option<u64>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvOutcome {
    Written {
        revision: u64,
    },
    Deleted {
        existed: bool,
    },
    /// The guard failed; `current` is the key's revision (`0`: absent). Nothing changed.
    RevisionMismatch {
        current: u64,
    },
}

/// A stored value and the revision that wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvRecord {
    pub revision: u64,
    pub value: Vec<u8>,
}

/// The compare-and-set guard: `Some(mismatch)` if `expected` is given and differs
/// from the current revision (`0` for an absent key).
fn guard(current: Option<&KvRecord>, expected: Option<u64>) -> Option<KvOutcome> {
    let current = current.map_or(0, |r| r.revision);
    match expected {
        Some(expected) if expected != current => Some(KvOutcome::RevisionMismatch { current }),
        _ => None,
    }
}

/// The writes of one `apply` call, committed atomically with the new applied state.
/// Reads see earlier commands of the same batch.
pub struct ApplyBatch<'a> {
    state: &'a GroupState,
    batch: WriteBatch,
    /// Rows written (`Some`) or deleted (`None`) earlier in this batch.
    pending: HashMap<Vec<u8>, Option<Vec<u8>>>,
}

impl<'a> ApplyBatch<'a> {
    pub(crate) fn new(state: &'a GroupState) -> Self {
        Self {
            state,
            batch: WriteBatch::default(),
            pending: HashMap::new(),
        }
    }

    pub(crate) fn state(&self) -> &GroupState {
        self.state
    }

    pub(crate) fn group(&self) -> u64 {
        self.state.group()
    }

    /// A row as this batch would leave it.
    pub(crate) fn get_raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.pending.get(key) {
            Some(v) => Ok(v.clone()),
            None => self.state.get_raw(key),
        }
    }

    pub(crate) fn put_raw(&mut self, key: Vec<u8>, value: Vec<u8>) -> Result<()> {
        self.batch
            .put_cf(self.state.engine().cf(CF_SM)?, &key, &value);
        self.pending.insert(key, Some(value));
        Ok(())
    }

    pub(crate) fn delete_raw(&mut self, key: Vec<u8>) -> Result<()> {
        self.batch.delete_cf(self.state.engine().cf(CF_SM)?, &key);
        self.pending.insert(key, None);
        Ok(())
    }

    /// Keys written or deleted earlier in this batch.
    pub(crate) fn pending_keys(&self) -> impl Iterator<Item = &[u8]> {
        self.pending.keys().map(Vec::as_slice)
    }

    /// Rows under `prefix` as this batch would leave them, in key order.
    pub(crate) fn scan_prefix(&self, prefix: &[u8]) -> Result<BTreeMap<Vec<u8>, Vec<u8>>> {
        let mut rows: BTreeMap<Vec<u8>, Vec<u8>> =
            self.state.scan_prefix(prefix)?.into_iter().collect();
        for (k, v) in &self.pending {
            if k.starts_with(prefix) {
                match v {
                    Some(v) => rows.insert(k.clone(), v.clone()),
                    None => rows.remove(k),
                };
            }
        }
        Ok(rows)
    }

    /// Deletes every row under `prefix` (as this batch sees them); returns how many.
    pub(crate) fn delete_prefix(&mut self, prefix: &[u8]) -> Result<usize> {
        let keys: Vec<Vec<u8>> = self.scan_prefix(prefix)?.into_keys().collect();
        let n = keys.len();
        for k in keys {
            self.delete_raw(k)?;
        }
        Ok(n)
    }

    fn current(&self, key: &[u8]) -> Result<Option<KvRecord>> {
        self.get_raw(key)?
            .map(|b| codec::decode("kv record", &b))
            .transpose()
    }

    /// Applies one KV command at `revision`.
    ///
    /// # Errors
    /// Reading the current value failed or found a corrupt record.
    pub fn apply_kv(&mut self, revision: u64, cmd: &KvCommand) -> Result<KvOutcome> {
        let group = self.state.group();
        match cmd {
            KvCommand::Put {
                tenant,
                key,
                value,
                expected_revision,
            } => {
                let k = kv_key(group, tenant, key);
                let current = self.current(&k)?;
                if let Some(mismatch) = guard(current.as_ref(), *expected_revision) {
                    return Ok(mismatch);
                }
                let record = KvRecord {
                    revision,
                    value: value.clone(),
                };
                self.put_raw(k, codec::encode("kv record", &record)?)?;
                Ok(KvOutcome::Written { revision })
            }
            KvCommand::Delete {
                tenant,
                key,
                expected_revision,
            } => {
                let k = kv_key(group, tenant, key);
                let current = self.current(&k)?;
                if let Some(mismatch) = guard(current.as_ref(), *expected_revision) {
                    return Ok(mismatch);
                }
                if current.is_some() {
                    self.delete_raw(k)?;
                }
                Ok(KvOutcome::Deleted {
                    existed: current.is_some(),
                })
            }
        }
    }

    /// Sets the applied state written with this batch.
    ///
    /// # Errors
    /// Missing column family (corrupt DB).
    pub fn set_applied(&mut self, bytes: &[u8]) -> Result<()> {
        let cf = self.state.engine().cf(CF_SM)?;
        self.batch
            .put_cf(cf, state_key(self.state.group(), SM_APPLIED), bytes);
        Ok(())
    }

    /// Writes the batch. Not synced: the entries are already durable in the log, and a
    /// node that loses unsynced applies after a crash re-applies them from the log
    /// (entries are only purged behind a synced snapshot).
    ///
    /// # Errors
    /// RocksDB write failure.
    pub fn commit(self) -> Result<()> {
        self.state.engine().db().write(self.batch)?;
        Ok(())
    }
}
