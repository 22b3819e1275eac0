//! [`ApplyBatch`]: the writes of one `apply` call, and [`Rows`], the row reads the
//! state machine's features share (from a batch, the live state or a snapshot).

use std::collections::{BTreeMap, HashMap};

use rocksdb::WriteBatch;
use serde::de::DeserializeOwned;

use super::state::GroupState;
use crate::keyspace::{state_key, CF_SM, SM_APPLIED};
use crate::{codec, Result};

/// Read access to one group's `sm` rows, by full key. Features read through it so
/// the same code serves an apply (which must see its own batch's earlier writes)
/// and a query (the live state, or a snapshot of it).
pub trait Rows {
    /// The group whose rows these are (every key starts with it).
    fn group(&self) -> u64;

    /// One row by full key.
    ///
    /// # Errors
    /// RocksDB read failure.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Every row whose full key starts with `prefix`, in key order.
    ///
    /// # Errors
    /// RocksDB read failure.
    fn scan(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;

    /// The first `limit` rows whose full key starts with `prefix`, in key order.
    ///
    /// # Errors
    /// RocksDB read failure.
    fn scan_first(&self, prefix: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut rows = self.scan(prefix)?;
        rows.truncate(limit);
        Ok(rows)
    }

    /// The first `limit` rows under `prefix` whose key is at least `from`,
    /// in key order (a page of a listing).
    ///
    /// # Errors
    /// RocksDB read failure.
    fn scan_from(
        &self,
        prefix: &[u8],
        from: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut rows = self.scan(prefix)?;
        rows.retain(|(k, _)| k.as_slice() >= from);
        rows.truncate(limit);
        Ok(rows)
    }

    /// One row, decoded.
    ///
    /// # Errors
    /// RocksDB read failure or a corrupt record.
    fn decode<T: DeserializeOwned>(&self, what: &'static str, key: &[u8]) -> Result<Option<T>> {
        self.get(key)?.map(|b| codec::decode(what, &b)).transpose()
    }

    /// Whether a row exists.
    ///
    /// # Errors
    /// RocksDB read failure.
    fn contains(&self, key: &[u8]) -> Result<bool> {
        Ok(self.get(key)?.is_some())
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

    /// Writes a row.
    ///
    /// # Errors
    /// Missing column family (corrupt DB).
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) -> Result<()> {
        self.batch
            .put_cf(self.state.engine().cf(CF_SM)?, &key, &value);
        self.pending.insert(key, Some(value));
        Ok(())
    }

    /// Encodes and writes a record.
    ///
    /// # Errors
    /// The record cannot be encoded, or a missing column family.
    pub fn put_record<T: serde::Serialize>(
        &mut self,
        what: &'static str,
        key: Vec<u8>,
        value: &T,
    ) -> Result<()> {
        let bytes = codec::encode(what, value)?;
        self.put(key, bytes)
    }

    /// Deletes a row (absent rows are not an error).
    ///
    /// # Errors
    /// Missing column family (corrupt DB).
    pub fn delete(&mut self, key: Vec<u8>) -> Result<()> {
        self.batch.delete_cf(self.state.engine().cf(CF_SM)?, &key);
        self.pending.insert(key, None);
        Ok(())
    }

    /// Deletes every row under `prefix` (as this batch sees them); returns how many.
    ///
    /// # Errors
    /// RocksDB read failure or a missing column family.
    pub fn delete_prefix(&mut self, prefix: &[u8]) -> Result<usize> {
        let keys: Vec<Vec<u8>> = self.scan(prefix)?.into_iter().map(|(k, _)| k).collect();
        let n = keys.len();
        for k in keys {
            self.delete(k)?;
        }
        Ok(n)
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

impl Rows for ApplyBatch<'_> {
    fn group(&self) -> u64 {
        self.state.group()
    }

    /// A row as this batch would leave it.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.pending.get(key) {
            Some(v) => Ok(v.clone()),
            None => self.state.get(key),
        }
    }

    /// Rows under `prefix` as this batch would leave them, in key order.
    fn scan(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut rows: BTreeMap<Vec<u8>, Vec<u8>> = self.state.scan(prefix)?.into_iter().collect();
        for (k, v) in &self.pending {
            if k.starts_with(prefix) {
                match v {
                    Some(v) => rows.insert(k.clone(), v.clone()),
                    None => rows.remove(k),
                };
            }
        }
        Ok(rows.into_iter().collect())
    }

    /// As [`Self::scan`], reading only as many stored rows as can matter: the
    /// batch's deletions can remove at most that many of the first ones.
    fn scan_first(&self, prefix: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let deleted = self
            .pending
            .iter()
            .filter(|(k, v)| v.is_none() && k.starts_with(prefix))
            .count();
        let mut rows: BTreeMap<Vec<u8>, Vec<u8>> = self
            .state
            .scan_first(prefix, limit.saturating_add(deleted))?
            .into_iter()
            .collect();
        for (k, v) in &self.pending {
            if k.starts_with(prefix) {
                match v {
                    Some(v) => rows.insert(k.clone(), v.clone()),
                    None => rows.remove(k),
                };
            }
        }
        Ok(rows.into_iter().take(limit).collect())
    }
}
