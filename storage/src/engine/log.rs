//! [`GroupLog`]: one group's Raft log entries and hard state, as raw bytes.

use rocksdb::{Direction, IteratorMode, ReadOptions, WriteBatch};

use super::{synced, Engine};
use crate::keyspace::{log_end, log_index, log_key, state_key, CF_LOG, CF_STATE};
use crate::Result;

/// The hard-state records a group keeps beside its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HardState {
    Vote = 1,
    Committed = 2,
    Purged = 3,
}

/// One group's Raft log and hard state, as opaque bytes keyed by index.
///
/// Durability: [`GroupLog::append`], [`GroupLog::truncate_from`], the vote and the purge
/// marker are written with a synced WAL before they return. RocksDB's WAL is one
/// sequential file per node, so a synced write also makes every earlier write of any
/// group durable, and concurrent synced writers share one fsync (group commit).
#[derive(Clone)]
pub struct GroupLog {
    engine: Engine,
    group: u64,
}

impl GroupLog {
    pub(crate) fn new(engine: Engine, group: u64) -> Self {
        Self { engine, group }
    }

    #[must_use]
    pub fn group(&self) -> u64 {
        self.group
    }

    /// Appends entries (index, bytes) in one synced write batch.
    ///
    /// # Errors
    /// RocksDB write failure; nothing of the batch is then applied.
    pub fn append<I>(&self, entries: I) -> Result<()>
    where
        I: IntoIterator<Item = (u64, Vec<u8>)>,
    {
        let cf = self.engine.cf(CF_LOG)?;
        let mut batch = WriteBatch::default();
        for (index, bytes) in entries {
            batch.put_cf(cf, log_key(self.group, index), bytes);
        }
        self.engine.db().write_opt(batch, &synced())?;
        Ok(())
    }

    /// Entries with `start <= index < end`, in order.
    ///
    /// # Errors
    /// RocksDB read failure.
    pub fn range(&self, start: u64, end: u64) -> Result<Vec<(u64, Vec<u8>)>> {
        if start >= end {
            return Ok(Vec::new());
        }
        let cf = self.engine.cf(CF_LOG)?;
        let mut opts = ReadOptions::default();
        opts.set_iterate_upper_bound(log_key(self.group, end).to_vec());
        let from = log_key(self.group, start);
        let mut out = Vec::new();
        for item in self.engine.db().iterator_cf_opt(
            cf,
            opts,
            IteratorMode::From(&from, Direction::Forward),
        ) {
            let (k, v) = item?;
            if let Some(index) = log_index(&k) {
                out.push((index, v.into_vec()));
            }
        }
        Ok(out)
    }

    /// The last entry in the log, if any.
    ///
    /// # Errors
    /// RocksDB read failure.
    pub fn last(&self) -> Result<Option<(u64, Vec<u8>)>> {
        let cf = self.engine.cf(CF_LOG)?;
        let mut opts = ReadOptions::default();
        opts.set_iterate_lower_bound(log_key(self.group, 0).to_vec());
        let end = log_end(self.group);
        let mut iter = self.engine.db().iterator_cf_opt(
            cf,
            opts,
            IteratorMode::From(&end, Direction::Reverse),
        );
        match iter.next() {
            Some(item) => {
                let (k, v) = item?;
                Ok(log_index(&k).map(|i| (i, v.into_vec())))
            }
            None => Ok(None),
        }
    }

    /// Deletes entries with `index >= from` (a conflicting suffix).
    ///
    /// # Errors
    /// RocksDB write failure.
    pub fn truncate_from(&self, from: u64) -> Result<()> {
        let cf = self.engine.cf(CF_LOG)?;
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(cf, log_key(self.group, from).to_vec(), log_end(self.group));
        self.engine.db().write_opt(batch, &synced())?;
        Ok(())
    }

    /// Records `marker` as the purge point and deletes entries with `index <= upto`,
    /// atomically.
    ///
    /// # Errors
    /// RocksDB write failure.
    pub fn purge_upto(&self, upto: u64, marker: &[u8]) -> Result<()> {
        let log_cf = self.engine.cf(CF_LOG)?;
        let state_cf = self.engine.cf(CF_STATE)?;
        let mut batch = WriteBatch::default();
        batch.put_cf(
            state_cf,
            state_key(self.group, HardState::Purged as u8),
            marker,
        );
        let end = match upto.checked_add(1) {
            Some(next) => log_key(self.group, next).to_vec(),
            None => log_end(self.group),
        };
        // From the first entry still present, not from 0: each purge's range
        // tombstone then covers only what it removes, so they do not pile up.
        if let Some(first) = self.first_index()?.filter(|f| *f <= upto) {
            batch.delete_range_cf(log_cf, log_key(self.group, first).to_vec(), end);
        }
        self.engine.db().write_opt(batch, &synced())?;
        Ok(())
    }

    /// The index of the first entry in the log, if any.
    fn first_index(&self) -> Result<Option<u64>> {
        let cf = self.engine.cf(CF_LOG)?;
        let mut opts = ReadOptions::default();
        opts.set_iterate_upper_bound(log_end(self.group));
        let start = log_key(self.group, 0);
        let mut iter = self.engine.db().iterator_cf_opt(
            cf,
            opts,
            IteratorMode::From(&start, Direction::Forward),
        );
        match iter.next() {
            Some(item) => Ok(log_index(&item?.0)),
            None => Ok(None),
        }
    }

    /// Reads a hard-state record.
    ///
    /// # Errors
    /// RocksDB read failure.
    pub fn hard_state(&self, which: HardState) -> Result<Option<Vec<u8>>> {
        let cf = self.engine.cf(CF_STATE)?;
        Ok(self
            .engine
            .db()
            .get_cf(cf, state_key(self.group, which as u8))?)
    }

    /// Writes a hard-state record; `sync` for the vote (it must survive a crash before
    /// the node answers the vote request), not needed for the commit index, which is
    /// an optimisation that lets a restarted node re-apply committed entries early.
    ///
    /// # Errors
    /// RocksDB write failure.
    pub fn set_hard_state(&self, which: HardState, bytes: &[u8], sync: bool) -> Result<()> {
        let cf = self.engine.cf(CF_STATE)?;
        let key = state_key(self.group, which as u8);
        if sync {
            self.engine.db().put_cf_opt(cf, key, bytes, &synced())?;
        } else {
            self.engine.db().put_cf(cf, key, bytes)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_range_truncate_purge_per_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::open(dir.path()).expect("open");
        let a = engine.log(1);
        let b = engine.log(2);
        a.append((1..=10).map(|i| (i, vec![u8::try_from(i).unwrap_or(0)])))
            .expect("append");
        b.append([(1, b"other".to_vec())]).expect("append");
        assert_eq!(a.range(3, 6).expect("range").len(), 3);
        assert_eq!(a.last().expect("last").map(|e| e.0), Some(10));
        a.truncate_from(8).expect("truncate");
        assert_eq!(a.last().expect("last").map(|e| e.0), Some(7));
        a.purge_upto(4, b"p").expect("purge");
        let left: Vec<u64> = a
            .range(0, u64::MAX)
            .expect("range")
            .iter()
            .map(|e| e.0)
            .collect();
        assert_eq!(left, vec![5, 6, 7]);
        assert_eq!(
            a.hard_state(HardState::Purged).expect("read"),
            Some(b"p".to_vec())
        );
        assert_eq!(
            b.range(0, u64::MAX).expect("range").len(),
            1,
            "group 2 untouched"
        );
        a.purge_upto(7, b"q").expect("purge all");
        assert_eq!(a.last().expect("last"), None);
        assert_eq!(b.last().expect("last").map(|e| e.0), Some(1));
    }
}
