//! Reading users.

use super::{GetUser, UserRecord};
use crate::engine::Rows;
use crate::keyspace::user_key;
use crate::Result;

/// # Errors
/// RocksDB read failure or a corrupt record.
pub fn get(rows: &impl Rows, q: &GetUser) -> Result<Option<UserRecord>> {
    rows.decode("user", &user_key(rows.group(), &q.tenant, &q.user_id))
}
