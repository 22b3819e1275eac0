//! The openraft type configuration. The replicated payloads are the state
//! machine's wire enums ([`Command`] and [`Outcome`], and [`Query`]/[`Answer`] for
//! reads), opaque to raft: they are defined, applied and read in
//! `cairn_storage::sm`.

use std::io::Cursor;

pub use cairn_storage::sm::{Answer, Command, Outcome, Query};

openraft::declare_raft_types!(
    /// Cairn's openraft configuration: u64 node ids, nodes addressed by their peer
    /// address, snapshots as in-memory buffers.
    pub TypeConfig:
        D = Command,
        R = Outcome,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type NodeId = u64;
pub type Node = openraft::BasicNode;
pub type LogId = openraft::LogId<NodeId>;
pub type Vote = openraft::Vote<NodeId>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type StoredMembership = openraft::StoredMembership<NodeId, Node>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, Node>;
pub type Snapshot = openraft::Snapshot<TypeConfig>;
pub type Raft = openraft::Raft<TypeConfig>;
pub type StorageError = openraft::StorageError<NodeId>;
