//! Tenant key-value: commands, outcomes and the stored record.
//!
//! A command's revision is its sequence number in the log (entry index × 256 + its
//! position in the entry, see `cairn_raft`'s state machine): unique and increasing
//! within a group, the same on every replica (like etcd's `mod_revision`).
//!
//! `tenant` is the tenant's id and `key` the stored key path (the node stores a
//! blind index of the key name there, and the sealed record in `value`): storage
//! treats all three as opaque bytes. KV writes are the tenant's data plane: they
//! cause no domain event.

use serde::{Deserialize, Serialize};

pub mod apply;
pub mod read;
pub mod rules;

/// Writes `value`. With `expected_revision`, only if the key's current revision
/// equals it (`0`: only if the key does not exist).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Put {
    pub tenant: String,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub expected_revision: Option<u64>,
}

/// Deletes the key (absent keys are not an error), with the same optional guard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delete {
    pub tenant: String,
    pub key: Vec<u8>,
    pub expected_revision: Option<u64>,
}

/// What a [`Put`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    Written {
        revision: u64,
    },
    /// The guard failed; `current` is the key's revision (`0`: absent). Nothing changed.
    RevisionMismatch {
        current: u64,
    },
}

/// What a [`Delete`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteOutcome {
    Deleted {
        existed: bool,
    },
    /// The guard failed; nothing changed.
    RevisionMismatch {
        current: u64,
    },
}

/// A stored value and the revision that wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvRecord {
    pub revision: u64,
    pub value: Vec<u8>,
}

/// Reads a tenant's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Get {
    pub tenant: String,
    pub key: Vec<u8>,
}
