//! [`GroupState`]: one group's state machine rows, applied state and snapshot, and
//! [`View`], a consistent read of them at one moment.

use rocksdb::{IteratorMode, ReadOptions, WriteBatch};

use super::batch::{ApplyBatch, Rows};
use super::{synced, Engine};
use crate::keyspace::{
    group_prefix, prefix_end, sm_end, sm_start, state_key, CF_SM, CF_SNAPSHOT, SM_APPLIED,
};
use crate::{codec, Result, StorageError};

/// One group's state machine: its rows in the `sm` column family, the applied state
/// and the current snapshot.
#[derive(Clone)]
pub struct GroupState {
    engine: Engine,
    group: u64,
}

/// Snapshot payload: the group's state machine rows with the group prefix removed.
type SnapshotRows = Vec<(Vec<u8>, Vec<u8>)>;

impl GroupState {
    pub(crate) fn new(engine: Engine, group: u64) -> Self {
        Self { engine, group }
    }

    #[must_use]
    pub fn group(&self) -> u64 {
        self.group
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The applied state recorded with the last applied batch (opaque to storage).
    ///
    /// # Errors
    /// RocksDB read failure.
    pub fn applied(&self) -> Result<Option<Vec<u8>>> {
        let cf = self.engine.cf(CF_SM)?;
        Ok(self
            .engine
            .db()
            .get_cf(cf, state_key(self.group, SM_APPLIED))?)
    }

    /// Starts a batch of applies.
    #[must_use]
    pub fn batch(&self) -> ApplyBatch<'_> {
        ApplyBatch::new(self)
    }

    /// A consistent view of the rows: every read through it sees the same applied
    /// index (a RocksDB snapshot), however many rows it reads.
    #[must_use]
    pub fn view(&self) -> View<'_> {
        View {
            state: self,
            snap: self.engine.db().snapshot(),
        }
    }

    /// A consistent copy of the state machine: the applied state and every row, read
    /// from one RocksDB snapshot so they describe the same moment.
    ///
    /// # Errors
    /// RocksDB read failure.
    pub fn export(&self) -> Result<(Option<Vec<u8>>, Vec<u8>)> {
        let db = self.engine.db();
        let cf = self.engine.cf(CF_SM)?;
        let snap = db.snapshot();
        let applied = snap.get_cf(cf, state_key(self.group, SM_APPLIED))?;
        let mut opts = ReadOptions::default();
        opts.set_iterate_lower_bound(sm_start(self.group));
        opts.set_iterate_upper_bound(sm_end(self.group));
        let mut rows: SnapshotRows = Vec::new();
        for item in snap.iterator_cf_opt(cf, opts, IteratorMode::Start) {
            let (k, v) = item?;
            let rel = &k[8..];
            if rel.first() == Some(&SM_APPLIED) {
                continue;
            }
            rows.push((rel.to_vec(), v.into_vec()));
        }
        Ok((applied, codec::encode("snapshot rows", &rows)?))
    }

    /// Replaces the whole state machine with a snapshot's rows and applied state, and
    /// stores `snapshot` as the group's current snapshot, all in one synced batch: a
    /// crash leaves either the old state and snapshot or the new ones.
    ///
    /// # Errors
    /// Undecodable snapshot data, or RocksDB write failure (the old state then stays).
    pub fn import(&self, data: &[u8], applied: &[u8], snapshot: &[u8]) -> Result<()> {
        let rows: SnapshotRows = codec::decode("snapshot rows", data)?;
        let cf = self.engine.cf(CF_SM)?;
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(cf, sm_start(self.group), sm_end(self.group));
        let prefix = group_prefix(self.group);
        for (rel, value) in rows {
            if rel.is_empty() || rel[0] == SM_APPLIED {
                return Err(StorageError::Corrupt {
                    what: "snapshot rows",
                    detail: "row with an empty or reserved key".to_owned(),
                });
            }
            let mut key = Vec::with_capacity(8 + rel.len());
            key.extend_from_slice(&prefix);
            key.extend_from_slice(&rel);
            batch.put_cf(cf, key, value);
        }
        batch.put_cf(cf, state_key(self.group, SM_APPLIED), applied);
        batch.put_cf(self.engine.cf(CF_SNAPSHOT)?, prefix, snapshot);
        self.engine.db().write_opt(batch, &synced())?;
        Ok(())
    }

    /// Stores the group's current snapshot (opaque bytes), synced.
    ///
    /// # Errors
    /// RocksDB write failure.
    pub fn save_snapshot(&self, blob: &[u8]) -> Result<()> {
        let cf = self.engine.cf(CF_SNAPSHOT)?;
        self.engine
            .db()
            .put_cf_opt(cf, group_prefix(self.group), blob, &synced())?;
        Ok(())
    }

    /// The group's current snapshot, if one was built or installed.
    ///
    /// # Errors
    /// RocksDB read failure.
    pub fn load_snapshot(&self) -> Result<Option<Vec<u8>>> {
        let cf = self.engine.cf(CF_SNAPSHOT)?;
        Ok(self.engine.db().get_cf(cf, group_prefix(self.group))?)
    }
}

impl Rows for GroupState {
    fn group(&self) -> u64 {
        self.group
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let cf = self.engine.cf(CF_SM)?;
        Ok(self.engine.db().get_cf(cf, key)?)
    }

    fn scan(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.scan_first(prefix, usize::MAX)
    }

    fn scan_first(&self, prefix: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let db = self.engine.db();
        let cf = self.engine.cf(CF_SM)?;
        let mut rows = Vec::new();
        for item in db
            .iterator_cf_opt(cf, prefix_bounds(prefix), IteratorMode::Start)
            .take(limit)
        {
            let (k, v) = item?;
            rows.push((k.into_vec(), v.into_vec()));
        }
        Ok(rows)
    }

    fn scan_from(
        &self,
        prefix: &[u8],
        from: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let db = self.engine.db();
        let cf = self.engine.cf(CF_SM)?;
        let mut opts = prefix_bounds(prefix);
        if from > prefix {
            opts.set_iterate_lower_bound(from.to_vec());
        }
        let mut rows = Vec::new();
        for item in db
            .iterator_cf_opt(cf, opts, IteratorMode::Start)
            .take(limit)
        {
            let (k, v) = item?;
            rows.push((k.into_vec(), v.into_vec()));
        }
        Ok(rows)
    }

    /// Decodes from the pinned value, without copying it first (point reads are
    /// the hot path of KV gets).
    fn decode<T: serde::de::DeserializeOwned>(
        &self,
        what: &'static str,
        key: &[u8],
    ) -> Result<Option<T>> {
        let cf = self.engine.cf(CF_SM)?;
        match self.engine.db().get_pinned_cf(cf, key)? {
            Some(bytes) => Ok(Some(codec::decode(what, &bytes)?)),
            None => Ok(None),
        }
    }
}

/// Read options bounded to the keys starting with `prefix`.
fn prefix_bounds(prefix: &[u8]) -> ReadOptions {
    let mut opts = ReadOptions::default();
    opts.set_iterate_lower_bound(prefix.to_vec());
    if let Some(upper) = prefix_end(prefix) {
        opts.set_iterate_upper_bound(upper);
    }
    opts
}

/// A group's rows as of one moment (see [`GroupState::view`]).
pub struct View<'a> {
    state: &'a GroupState,
    snap: rocksdb::SnapshotWithThreadMode<'a, rocksdb::DB>,
}

impl Rows for View<'_> {
    fn group(&self) -> u64 {
        self.state.group
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let cf = self.state.engine.cf(CF_SM)?;
        Ok(self.snap.get_cf(cf, key)?)
    }

    fn scan(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let cf = self.state.engine.cf(CF_SM)?;
        let mut rows = Vec::new();
        for item in self
            .snap
            .iterator_cf_opt(cf, prefix_bounds(prefix), IteratorMode::Start)
        {
            let (k, v) = item?;
            rows.push((k.into_vec(), v.into_vec()));
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(group: u64, name: &str) -> Vec<u8> {
        crate::keyspace::row_key(group, 0x10, name.as_bytes())
    }

    #[test]
    fn batches_see_their_own_writes_and_commit_atomically() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::open(dir.path()).expect("open");
        let sm = engine.state(1);
        let mut b = sm.batch();
        b.put(row(1, "a"), b"1".to_vec()).expect("put");
        b.put(row(1, "b"), b"2".to_vec()).expect("put");
        assert_eq!(b.get(&row(1, "a")).expect("get"), Some(b"1".to_vec()));
        assert_eq!(
            sm.get(&row(1, "a")).expect("get"),
            None,
            "not committed yet"
        );
        b.delete(row(1, "a")).expect("delete");
        assert_eq!(b.scan(&row(1, "")).expect("scan").len(), 1);
        b.set_applied(b"x").expect("applied");
        b.commit().expect("commit");
        assert_eq!(sm.get(&row(1, "a")).expect("get"), None);
        assert_eq!(sm.get(&row(1, "b")).expect("get"), Some(b"2".to_vec()));
        assert_eq!(
            sm.applied().expect("applied").as_deref(),
            Some(b"x".as_slice())
        );

        let view = sm.view();
        let mut b = sm.batch();
        assert_eq!(b.delete_prefix(&row(1, "")).expect("delete"), 1);
        b.commit().expect("commit");
        assert_eq!(
            view.get(&row(1, "b")).expect("get"),
            Some(b"2".to_vec()),
            "a view keeps its moment"
        );
        assert!(sm.scan(&row(1, "")).expect("scan").is_empty());
    }

    #[test]
    fn export_import_replaces_only_this_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::open(dir.path()).expect("open");
        let (g1, g2) = (engine.state(1), engine.state(2));
        for (sm, v) in [(&g1, "one"), (&g2, "two")] {
            let mut b = sm.batch();
            b.put(row(sm.group(), "k"), v.as_bytes().to_vec())
                .expect("put");
            b.put(row(sm.group(), "only-before"), v.as_bytes().to_vec())
                .expect("put");
            b.set_applied(b"x").expect("applied");
            b.commit().expect("commit");
        }
        let (applied, data) = g1.export().expect("export");
        assert_eq!(applied.as_deref(), Some(b"x".as_slice()));

        let other = tempfile::tempdir().expect("tempdir");
        let engine2 = Engine::open(other.path()).expect("open");
        let target = engine2.state(1);
        let mut b = target.batch();
        b.put(row(1, "stale"), b"s".to_vec()).expect("put");
        b.commit().expect("commit");
        target.import(&data, b"y", b"snap").expect("import");
        assert_eq!(target.get(&row(1, "stale")).expect("get"), None);
        assert_eq!(
            target.get(&row(1, "k")).expect("get"),
            Some(b"one".to_vec())
        );
        assert_eq!(
            target.applied().expect("applied").as_deref(),
            Some(b"y".as_slice())
        );
        assert_eq!(
            target.load_snapshot().expect("load").as_deref(),
            Some(b"snap".as_slice())
        );
        assert!(
            target.import(b"\xff\xff", b"y", b"z").is_err(),
            "garbage is refused"
        );
        assert_eq!(
            target.load_snapshot().expect("load").as_deref(),
            Some(b"snap".as_slice()),
            "a refused import changes nothing"
        );
        assert_eq!(g2.get(&row(2, "k")).expect("get"), Some(b"two".to_vec()));
    }
}
