use rocksdb::{IteratorMode, ReadOptions, WriteBatch};

use crate::engine::{synced, Engine};
use crate::keys::{
    group_prefix, kv_key, sm_end, sm_start, state_key, CF_SM, CF_SNAPSHOT, SM_APPLIED,
};
use crate::kv::{ApplyBatch, KvRecord};
use crate::{codec, Result, StorageError};

/// One group's state machine: its rows in the `sm` column family, the applied state
/// and the current snapshot.
#[derive(Clone)]
pub struct GroupState {
    engine: Engine,
    group: u64,
}

/// Snapshot payload: the group's state machine rows with the group prefix removed.
type Rows = Vec<(Vec<u8>, Vec<u8>)>;

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

    /// Reads a tenant's key from the local replica (callers ensure linearizability).
    ///
    /// # Errors
    /// RocksDB read failure or a corrupt record.
    pub fn kv_get(&self, tenant: &str, key: &[u8]) -> Result<Option<KvRecord>> {
        self.kv_get_raw(&kv_key(self.group, tenant, key))
    }

    fn kv_get_raw(&self, k: &[u8]) -> Result<Option<KvRecord>> {
        let cf = self.engine.cf(CF_SM)?;
        match self.engine.db().get_pinned_cf(cf, k)? {
            Some(bytes) => Ok(Some(codec::decode("kv record", &bytes)?)),
            None => Ok(None),
        }
    }

    /// One `sm` row by full key.
    pub(crate) fn get_raw(&self, k: &[u8]) -> Result<Option<Vec<u8>>> {
        let cf = self.engine.cf(CF_SM)?;
        Ok(self.engine.db().get_cf(cf, k)?)
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
        let mut rows: Rows = Vec::new();
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
        let rows: Rows = codec::decode("snapshot rows", data)?;
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

#[cfg(test)]
mod tests {
    use crate::kv::{KvCommand, KvOutcome};
    use crate::Engine;

    fn put(tenant: &str, key: &str, value: &str, expected: Option<u64>) -> KvCommand {
        KvCommand::Put {
            tenant: tenant.to_owned(),
            key: key.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
            expected_revision: expected,
        }
    }

    #[test]
    fn compare_and_set_within_and_across_batches() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::open(dir.path()).expect("open");
        let sm = engine.state(1);
        let mut b = sm.batch();
        assert_eq!(
            b.apply_kv(5, &put("t", "k", "v1", Some(0))).expect("apply"),
            KvOutcome::Written { revision: 5 }
        );
        // Same batch: sees the pending write.
        assert_eq!(
            b.apply_kv(6, &put("t", "k", "v2", Some(0))).expect("apply"),
            KvOutcome::RevisionMismatch { current: 5 }
        );
        assert_eq!(
            b.apply_kv(7, &put("t", "k", "v3", Some(5))).expect("apply"),
            KvOutcome::Written { revision: 7 }
        );
        b.set_applied(b"a7").expect("applied");
        b.commit().expect("commit");
        let rec = sm.kv_get("t", b"k").expect("get").expect("present");
        assert_eq!((rec.revision, rec.value.as_slice()), (7, b"v3".as_slice()));
        assert_eq!(sm.kv_get("u", b"k").expect("get"), None, "other tenant");

        let mut b = sm.batch();
        let del = KvCommand::Delete {
            tenant: "t".to_owned(),
            key: b"k".to_vec(),
            expected_revision: Some(6),
        };
        assert_eq!(
            b.apply_kv(8, &del).expect("apply"),
            KvOutcome::RevisionMismatch { current: 7 }
        );
        b.commit().expect("commit");
        assert!(sm.kv_get("t", b"k").expect("get").is_some());
    }

    #[test]
    fn export_import_replaces_only_this_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::open(dir.path()).expect("open");
        let (g1, g2) = (engine.state(1), engine.state(2));
        for (sm, v) in [(&g1, "one"), (&g2, "two")] {
            let mut b = sm.batch();
            b.apply_kv(1, &put("t", "k", v, None)).expect("apply");
            b.apply_kv(2, &put("t", "only-before", v, None))
                .expect("apply");
            b.set_applied(b"x").expect("applied");
            b.commit().expect("commit");
        }
        let (applied, data) = g1.export().expect("export");
        assert_eq!(applied.as_deref(), Some(b"x".as_slice()));

        let other = tempfile::tempdir().expect("tempdir");
        let engine2 = Engine::open(other.path()).expect("open");
        let target = engine2.state(1);
        let mut b = target.batch();
        b.apply_kv(1, &put("t", "stale", "s", None)).expect("apply");
        b.commit().expect("commit");
        target.import(&data, b"y", b"snap").expect("import");
        assert_eq!(target.kv_get("t", b"stale").expect("get"), None);
        assert_eq!(
            target.kv_get("t", b"k").expect("get").map(|r| r.value),
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
        assert_eq!(
            g2.kv_get("t", b"k").expect("get").map(|r| r.value),
            Some(b"two".to_vec())
        );
    }
}
