use std::path::Path;
use std::sync::Arc;

use rocksdb::{ColumnFamilyDescriptor, Options, WriteOptions, DB};

use crate::identity::NodeIdentity;
use crate::keys::{ALL_CFS, CF_NODE};
use crate::log::GroupLog;
use crate::state::GroupState;
use crate::{codec, Result, StorageError};

const IDENTITY_KEY: &[u8] = b"identity";
const STAGED_KEK_KEY: &[u8] = b"staged-master-key-file";
const ADMISSION_KEY: &[u8] = b"admission";

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
                self.db
                    .put_cf_opt(self.cf(CF_NODE)?, IDENTITY_KEY, bytes, &synced())?;
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

    /// The master key file staged on this node by a master key rotation, if any
    /// (node-local, never replicated: it is a path, not a key).
    ///
    /// # Errors
    /// Read failure or a corrupt record.
    pub fn staged_master_key_file(&self) -> Result<Option<std::path::PathBuf>> {
        match self.db.get_cf(self.cf(CF_NODE)?, STAGED_KEK_KEY)? {
            Some(bytes) => {
                let path: String = codec::decode("staged master key path", &bytes)?;
                Ok(Some(path.into()))
            }
            None => Ok(None),
        }
    }

    /// Records the staged master key file (synced).
    ///
    /// # Errors
    /// A path that is not UTF-8, or a write failure.
    pub fn set_staged_master_key_file(&self, path: &std::path::Path) -> Result<()> {
        let text = path.to_str().ok_or_else(|| StorageError::Encode {
            what: "staged master key path",
            detail: "the path is not valid UTF-8".to_owned(),
        })?;
        let bytes = codec::encode("staged master key path", &text)?;
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
