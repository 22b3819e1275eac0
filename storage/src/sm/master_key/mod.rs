//! The cluster master key (KEK) in the `meta` group: which one is current, and the
//! rotation history. Tenants' data keys are wrapped under it; a rotation
//! re-wraps every one of them in the same entry (`sm::RotateMaster`, composed in
//! `sm` with the tenants feature), so no key is ever left behind under a
//! retired master key.

use serde::{Deserialize, Serialize};

pub mod apply;
pub mod read;
pub mod rules;

/// One master key (KEK) the cluster has used, named by its public fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterKeyRecord {
    pub version: u32,
    pub fingerprint: String,
    /// Unix seconds when it became current.
    pub since: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterKeyState {
    pub current: MasterKeyRecord,
    /// Earlier master keys, oldest first: the rotation history.
    pub retired: Vec<MasterKeyRecord>,
}

/// A key is not wrapped under the current master key (or a rotation expected
/// another version); `current` is the current one, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterKeyConflict {
    pub current: Option<MasterKeyRecord>,
}

/// What a master key rotation decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotateMasterOutcome {
    MasterRotated(MasterKeyState),
    /// The rotation expected another version; nothing changed.
    MasterKeyConflict {
        current: Option<MasterKeyRecord>,
    },
    /// The re-wrapped keys are not exactly the stored keys (a tenant or key was
    /// added meanwhile): nothing changed; read again and retry.
    RewrapStale,
}
