//! [`StorageError`]: what the storage crate fails with.

use super::identity::NodeIdentity;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("corrupt {what} on disk: {detail}")]
    Corrupt { what: &'static str, detail: String },
    #[error("cannot encode {what}: {detail}")]
    Encode { what: &'static str, detail: String },
    #[error(
        "data dir belongs to another node: it was written by node {} of cluster {:?} \
         (groups {:?}), but this is node {} of cluster {:?} (groups {:?}); \
         point this node at its own data_dir",
        found.node_id, found.cluster_name, found.groups,
        expected.node_id, expected.cluster_name, expected.groups
    )]
    IdentityMismatch {
        found: Box<NodeIdentity>,
        expected: Box<NodeIdentity>,
    },
}
