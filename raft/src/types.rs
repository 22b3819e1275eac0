//! The openraft type configuration and the application payloads it replicates.

use std::io::Cursor;

use cairn_storage::{
    ApiKeyView, AuthCommand, AuthOutcome, DirectoryCommand, DirectoryOutcome, EmailEntry,
    KvCommand, KvOutcome, KvRecord, MasterKeyState, MetaCommand, MetaOutcome, SessionRecord,
    SigningKeys, TenantRecord, UserRecord,
};
use serde::{Deserialize, Serialize};

/// A state change, replicated through a group's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    Kv(KvCommand),
    /// Tenants and keys: proposed to the `meta` group only.
    Meta(MetaCommand),
    /// API keys, signing keys, the email index: `meta` only.
    Directory(DirectoryCommand),
    /// Users and sessions: a region's data group.
    Auth(AuthCommand),
    /// Several writes proposed as one entry (`propose_batch`), applied in order;
    /// never nested.
    Batch(Vec<Command>),
}

/// What applying a [`Command`] decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandResult {
    /// Blank and membership entries have no result.
    None,
    Kv(KvOutcome),
    Meta(MetaOutcome),
    Directory(DirectoryOutcome),
    Auth(AuthOutcome),
    /// One result per command of a [`Command::Batch`], in order.
    Batch(Vec<CommandResult>),
}

/// How a tenant is looked up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TenantRef {
    Name(String),
    Id(String),
}

/// A linearizable read of a group's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Query {
    KvGet {
        tenant: String,
        key: Vec<u8>,
    },
    /// A tenant's record and the master key state, read at one index (`meta`).
    Tenant(TenantRef),
    /// Every tenant and the master key state, read at one index (`meta`).
    Tenants,
    /// An API key with its tenant and the master key state, at one index (`meta`).
    ApiKey {
        key_id: String,
    },
    /// A tenant's token signing keys (`meta`).
    SigningKeys {
        tenant_id: String,
    },
    /// Where the user holding an email (blind index) lives (`meta`).
    Email {
        tenant_id: String,
        index: Vec<u8>,
    },
    User {
        tenant: String,
        user_id: String,
    },
    Session {
        tenant: String,
        session_id: String,
    },
    UserSessions {
        tenant: String,
        user_id: String,
    },
}

impl Query {
    /// Whether the query reads a range of rows (all tenants, a user's sessions)
    /// rather than a few keys.
    #[must_use]
    pub fn is_scan(&self) -> bool {
        matches!(self, Self::Tenants | Self::UserSessions { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueryResult {
    Kv(Option<KvRecord>),
    Tenant {
        tenant: Option<TenantRecord>,
        master: Option<MasterKeyState>,
    },
    Tenants {
        tenants: Vec<TenantRecord>,
        master: Option<MasterKeyState>,
    },
    ApiKey {
        view: Option<ApiKeyView>,
        master: Option<MasterKeyState>,
    },
    SigningKeys(SigningKeys),
    Email(Option<EmailEntry>),
    User(Option<UserRecord>),
    Session(Option<SessionRecord>),
    Sessions(Vec<SessionRecord>),
}

openraft::declare_raft_types!(
    /// Cairn's openraft configuration: u64 node ids, nodes addressed by their peer
    /// address, snapshots as in-memory buffers.
    pub TypeConfig:
        D = Command,
        R = CommandResult,
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
