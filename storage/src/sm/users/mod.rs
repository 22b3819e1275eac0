//! Users in a region's data group. Personal data (email, password hash) arrives
//! sealed by the node and is opaque here; the id, version and timestamps are in
//! the clear. Deleting a user deletes its sessions in the same entry (their rows
//! found through the keyspace).

use serde::{Deserialize, Serialize};

pub mod apply;
pub mod read;

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub id: String,
    /// Bumped by every update (a compare-and-set guard for concurrent PATCHes).
    pub version: u64,
    pub created_at: u64,
    pub updated_at: u64,
    /// Email and password hash, sealed by the node.
    pub sealed: Vec<u8>,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateUser {
    pub tenant: String,
    pub user: UserRecord,
}

/// Replaces the sealed fields if the user is at `expected_version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateUser {
    pub tenant: String,
    pub user_id: String,
    pub expected_version: u64,
    pub sealed: Vec<u8>,
    pub at: u64,
}

/// A sealed field of a user, named by [`ChangeUser`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserField {
    Email,
    Password,
}

/// An [`UpdateUser`] that names the sealed fields it changes (wire version 2):
/// the fields are opaque to the state machine, so the proposer says which, and
/// the apply emits `user.updated` for the email and `password.changed` for the
/// password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeUser {
    pub update: UpdateUser,
    pub changed: Vec<UserField>,
}

/// Deletes the user and every session of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteUser {
    pub tenant: String,
    pub user_id: String,
    pub at: u64,
}

/// A user's failed sign-ins since its last successful one (wire version 3).
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FailedSignIns {
    pub count: u64,
    /// Unix seconds of the latest failure.
    pub last_at: u64,
    /// The client IP of the latest failure, sealed by the node.
    pub sealed_last_ip: Option<Vec<u8>>,
}

impl std::fmt::Debug for FailedSignIns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FailedSignIns")
            .field("count", &self.count)
            .field("last_at", &self.last_at)
            .finish_non_exhaustive()
    }
}

/// Reads a user's failed sign-ins (a query; wire version 3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetFailedSignIns {
    pub tenant: String,
    pub user_id: String,
}

/// A page of a tenant's users in this group, by id (a query; wire version
/// 3): at most `limit`, each with an id after `after`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListUsers {
    pub tenant: String,
    pub after: Option<String>,
    pub limit: u32,
}

/// Reads a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetUser {
    pub tenant: String,
    pub user_id: String,
}

/// What [`CreateUser`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateUserOutcome {
    UserCreated,
    /// A random id collided with an existing one; nothing changed.
    IdCollision,
}

/// What [`UpdateUser`] decided. (The variants share a prefix: they are the wire
/// outcome's names.)
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateUserOutcome {
    UserUpdated(UserRecord),
    UserNotFound,
    /// The user changed since it was read; nothing changed.
    UserVersionConflict {
        current: u64,
    },
}

/// What [`DeleteUser`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteUserOutcome {
    UserDeleted { sessions: usize },
    UserNotFound,
}
