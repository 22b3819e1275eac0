//! Cairn storage engine: one RocksDB per node holding every Raft group's log, vote,
//! state machine and snapshot, in shared column families under big-endian
//! group-prefixed keys, and the replicated state machine itself.
//!
//! Layout:
//! - [`engine`]: the only RocksDB code — [`Engine`], [`GroupLog`], [`GroupState`]
//!   (rows, snapshots), [`ApplyBatch`], [`codec`], the node identity.
//! - [`keyspace`]: every row tag and key builder (drawn in `docs/on-disk-layout.md`).
//! - [`sm`]: the state machine — the wire enums raft carries, the typed
//!   [`sm::Op`]/[`sm::Read`] entry points, the dispatch, and one module per
//!   feature (`sm::kv`, `sm::tenants`, `sm::users`, …), plus `sm::events`.
//!
//! This crate knows nothing of openraft, networking or HTTP: the `raft` crate
//! encodes entries and votes and hands bytes to it.

pub mod engine;
pub mod keyspace;
pub mod sm;

pub use engine::{
    codec, ApplyBatch, Engine, GroupLog, GroupState, HardState, NodeIdentity, Rows, StorageError,
};
// The records and wire types, where the rest of the workspace has always found
// them.
pub use sm::api_keys::ApiKeyRecord;
pub use sm::audit::{Actor, AuditEvent, EventRecord};
pub use sm::email_index::EmailEntry;
pub use sm::events::Trace;
pub use sm::kv::KvRecord;
pub use sm::master_key::{MasterKeyRecord, MasterKeyState};
pub use sm::sessions::{RefreshOutcome, Revocation, SessionRecord};
pub use sm::signing_keys::{SigningKeyRecord, SigningKeys};
pub use sm::tenants::{SessionPolicy, TenantRecord, TenantRef, WrappedKey};
pub use sm::users::UserRecord;
pub use sm::{
    ApiKeyView, AuthCommand, AuthOutcome, DirectoryCommand, DirectoryOutcome, KvCommand, KvOutcome,
    MetaCommand, MetaOutcome,
};

pub type Result<T, E = StorageError> = std::result::Result<T, E>;
