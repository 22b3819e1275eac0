//! Cairn storage engine: one RocksDB per node holding every Raft group's log, vote,
//! state machine and snapshot, in shared column families under big-endian
//! group-prefixed keys.
//!
//! Layout:
//! - [`Engine`]: opens the DB, owns the column families, checks the node identity.
//! - [`GroupLog`]: a group's Raft log and hard state (vote, committed, purged) as raw bytes.
//! - [`GroupState`]: a group's state machine rows, applied state, snapshots.
//! - [`kv`]: the tenant key-value commands and how they apply ([`ApplyBatch`]).
//! - [`tenants`]: the `meta` group's tenants, wrapped data keys and master key state.
//! - [`directory`]: the `meta` group's API keys, signing keys and email index.
//! - [`auth`]: users, sessions (refresh token rotation, reuse detection) and audit
//!   events in a region's data group.
//! - [`keys`]: the on-disk key encoding (drawn in `docs/on-disk-layout.md`).
//!
//! This crate knows nothing of openraft, networking or HTTP: the `raft` crate
//! encodes entries and votes and hands bytes to it.

pub mod auth;
pub mod codec;
pub mod directory;
mod engine;
mod error;
mod identity;
pub mod keys;
pub mod kv;
mod log;
mod state;
pub mod tenants;

pub use auth::{
    AuditEvent, AuthCommand, AuthOutcome, RefreshOutcome, Revocation, SessionRecord, UserRecord,
};
pub use directory::{
    ApiKeyRecord, ApiKeyView, DirectoryCommand, DirectoryOutcome, EmailEntry, SigningKeyRecord,
    SigningKeys,
};
pub use engine::Engine;
pub use error::StorageError;
pub use identity::NodeIdentity;
pub use kv::{ApplyBatch, KvCommand, KvOutcome, KvRecord};
pub use log::{GroupLog, HardState};
pub use state::GroupState;
pub use tenants::{
    MasterKeyRecord, MasterKeyState, MetaCommand, MetaOutcome, SessionPolicy, TenantLookup,
    TenantRecord, WrappedKey,
};

pub type Result<T, E = StorageError> = std::result::Result<T, E>;
