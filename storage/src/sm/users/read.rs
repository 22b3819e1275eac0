//! Reading users.

use super::{FailedSignIns, GetFailedSignIns, GetUser, UserRecord};
use crate::engine::Rows;
use crate::keyspace::{failed_sign_in_key, user_key};
use crate::Result;

/// # Errors
/// RocksDB read failure or a corrupt record.
pub fn get(rows: &impl Rows, q: &GetUser) -> Result<Option<UserRecord>> {
    rows.decode("user", &user_key(rows.group(), &q.tenant, &q.user_id))
}

/// # Errors
/// RocksDB read failure or a corrupt record.
pub fn failed_sign_ins(rows: &impl Rows, q: &GetFailedSignIns) -> Result<Option<FailedSignIns>> {
    rows.decode(
        "failed sign-ins",
        &failed_sign_in_key(rows.group(), &q.tenant, &q.user_id),
    )
}
