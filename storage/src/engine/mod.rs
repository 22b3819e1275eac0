//! The only RocksDB code of Cairn: [`Engine`] opens the node's database and owns its
//! column families; [`GroupLog`] is a group's Raft log and hard state,
//! [`GroupState`] its state machine rows, applied state and snapshots (export and
//! import), [`ApplyBatch`] the writes of one apply; [`codec`] the one binary
//! encoding; [`NodeIdentity`] who a data dir belongs to.

use std::path::Path;
use std::sync::Arc;

use rocksdb::{ColumnFamilyDescriptor, Options, WriteOptions, DB};

use crate::keyspace::{
    ADMISSION_AWARE_KEY, ADMISSION_KEY, ALL_CFS, CF_NODE, IDENTITY_KEY, STAGED_KEK_KEY,
};
use crate::Result;

mod batch;
pub mod codec;
mod depth;
mod error;
mod identity;
mod log;
mod state;

pub use batch::{ApplyBatch, Rows};
pub use error::StorageError;
pub use identity::NodeIdentity;
pub use log::{GroupLog, HardState};
pub use state::{GroupState, View};

/// A node's RocksDB. Cheap to clone; every group's log and state machine share it
/// (and its WAL, so concurrent synced writes from several groups share one fsync).
#[derive(Clone)]
pub struct Engine {
    db: Arc<DB>,
}

impl Engine {
    /// Opens (creating if needed) the node's database under `dir`.
    ///
    /// # Errors
    /// RocksDB cannot open the directory (missing permissions, locked by another
    /// process, corrupt files).
    pub fn open(dir: &Path) -> Result<Self> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        // Bound memory: modest memtables, shared across the few column families.
        opts.set_write_buffer_size(16 << 20);
        opts.set_max_write_buffer_number(3);
        opts.set_keep_log_file_num(4);
        opts.increase_parallelism(2);
        let cfs = ALL_CFS.iter().map(|name| {
            let mut cf_opts = Options::default();
            cf_opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
            cf_opts.set_write_buffer_size(16 << 20);
            ColumnFamilyDescriptor::new(*name, cf_opts)
        });
        let db = DB::open_cf_descriptors(&opts, dir.join("db"), cfs)?;
        Ok(Self { db: Arc::new(db) })
    }

    pub(crate) fn db(&self) -> &DB {
        &self.db
    }

    pub(crate) fn cf(&self, name: &'static str) -> Result<&rocksdb::ColumnFamily> {
        self.db.cf_handle(name).ok_or(StorageError::Corrupt {
            what: "column family",
            detail: format!("{name} missing"),
        })
    }

    #[must_use]
    pub fn log(&self, group: u64) -> GroupLog {
        GroupLog::new(self.clone(), group)
    }

    #[must_use]
    pub fn state(&self, group: u64) -> GroupState {
        GroupState::new(self.clone(), group)
    }

    /// The identity recorded in this data dir, if any.
    ///
    /// # Errors
    /// Read failure or a corrupt identity record.
    pub fn identity(&self) -> Result<Option<NodeIdentity>> {
        match self.db.get_cf(self.cf(CF_NODE)?, IDENTITY_KEY)? {
            Some(bytes) => Ok(Some(codec::decode("node identity", &bytes)?)),
            None => Ok(None),
        }
    }

    /// Records `expected` in a fresh data dir, or checks that the recorded identity
    /// equals it. Returns whether the data dir was fresh.
    ///
    /// # Errors
    /// [`StorageError::IdentityMismatch`] if the data dir belongs to another node,
    /// cluster or group catalog.
    pub fn claim(&self, expected: &NodeIdentity) -> Result<bool> {
        match self.identity()? {
            Some(found) if &found == expected => Ok(false),
            Some(found) => Err(StorageError::IdentityMismatch {
                found: Box::new(found),
                expected: Box::new(expected.clone()),
            }),
            None => {
                let bytes = codec::encode("node identity", expected)?;
                let cf = self.cf(CF_NODE)?;
                let mut batch = rocksdb::WriteBatch::default();
                batch.put_cf(cf, IDENTITY_KEY, bytes);
                // Created by a version that admits nodes at `cairn init`: such a
                // dir is never admitted by the legacy rule (see `admission`).
                batch.put_cf(cf, ADMISSION_AWARE_KEY, b"1");
                self.db.write_opt(batch, &synced())?;
                Ok(true)
            }
        }
    }

    /// The cluster id this data dir was admitted with by `cairn init`, if any.
    ///
    /// # Errors
    /// Read failure or a corrupt record.
    pub fn admission(&self) -> Result<Option<String>> {
        match self.db.get_cf(self.cf(CF_NODE)?, ADMISSION_KEY)? {
            Some(bytes) => Ok(Some(codec::decode("admission", &bytes)?)),
            None => Ok(None),
        }
    }

    /// Whether this data dir was created by a version that records admissions (so
    /// a missing admission record means "not admitted", never "written before
    /// admissions existed").
    ///
    /// # Errors
    /// Read failure.
    pub fn is_admission_aware(&self) -> Result<bool> {
        Ok(self
            .db
            .get_cf(self.cf(CF_NODE)?, ADMISSION_AWARE_KEY)?
            .is_some())
    }

    /// Records the cluster id this data dir is admitted with (synced).
    ///
    /// # Errors
    /// Write failure.
    pub fn set_admission(&self, cluster_id: &str) -> Result<()> {
        let bytes = codec::encode("admission", &cluster_id)?;
        self.db
            .put_cf_opt(self.cf(CF_NODE)?, ADMISSION_KEY, bytes, &synced())?;
        Ok(())
    }

    /// The master key files staged on this node by master key rotations, oldest
    /// first (node-local, never replicated: paths, not keys).
    ///
    /// # Errors
    /// Read failure or a corrupt record.
    pub fn staged_master_key_files(&self) -> Result<Vec<std::path::PathBuf>> {
        match self.db.get_cf(self.cf(CF_NODE)?, STAGED_KEK_KEY)? {
            Some(bytes) => {
                let paths: Vec<String> = codec::decode("staged master key paths", &bytes)?;
                Ok(paths.into_iter().map(Into::into).collect())
            }
            None => Ok(Vec::new()),
        }
    }

    /// Adds a staged master key file (synced). The last few are kept: a staged
    /// key may be the cluster's current one even after a later staging that was
    /// never rotated to, while the config still names an older file.
    ///
    /// # Errors
    /// A path that is not UTF-8, or a write failure.
    pub fn add_staged_master_key_file(&self, path: &std::path::Path) -> Result<()> {
        const KEEP: usize = 8;
        let text = path.to_str().ok_or_else(|| StorageError::Encode {
            what: "staged master key path",
            detail: "the path is not valid UTF-8".to_owned(),
        })?;
        let mut paths: Vec<String> = self
            .staged_master_key_files()?
            .into_iter()
            .filter_map(|p| p.to_str().map(str::to_owned))
            .filter(|p| p != text)
            .collect();
        paths.push(text.to_owned());
        if paths.len() > KEEP {
            paths.drain(..paths.len() - KEEP);
        }
        let bytes = codec::encode("staged master key paths", &paths)?;
        self.db
            .put_cf_opt(self.cf(CF_NODE)?, STAGED_KEK_KEY, bytes, &synced())?;
        Ok(())
    }

    /// Flushes memtables and syncs the WAL: used at clean shutdown so restart is fast.
    ///
    /// # Errors
    /// RocksDB flush failure.
    pub fn flush(&self) -> Result<()> {
        self.db.flush_wal(true)?;
        for name in ALL_CFS {
            self.db.flush_cf(self.cf(name)?)?;
        }
        Ok(())
    }
}

pub(crate) fn synced() -> WriteOptions {
    let mut w = WriteOptions::default();
    w.set_sync(true);
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ident(node_id: u64, cluster: &str) -> NodeIdentity {
        NodeIdentity {
            cluster_name: cluster.to_owned(),
            node_id,
            groups: vec![(0, "meta".to_owned()), (1, "local".to_owned())],
        }
    }

    #[test]
    fn claim_records_then_checks_identity() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let engine = Engine::open(dir.path()).expect("open");
            assert!(engine.claim(&ident(1, "a")).expect("claim"), "fresh");
            assert!(!engine.claim(&ident(1, "a")).expect("claim"), "same node");
        }
        let engine = Engine::open(dir.path()).expect("reopen");
        let err = engine.claim(&ident(2, "a")).expect_err("other node id");
        assert!(err.to_string().contains("written by node 1"), "{err}");
        let err = engine.claim(&ident(1, "b")).expect_err("other cluster");
        assert!(err.to_string().contains("cluster \"a\""), "{err}");
    }
}
