//! Reading users.

use super::{FailedSignIns, GetFailedSignIns, GetUser, ListUsers, UserRecord};
use crate::engine::Rows;
use crate::keyspace::{failed_sign_in_key, tenant_row, user_key, SM_USER};
use crate::{codec, Result};

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

/// The most users one page reads.
pub const MAX_PAGE: u32 = 100;

/// A page of the tenant's users here, in id order (see [`ListUsers`]).
///
/// # Errors
/// RocksDB read failure or a corrupt record.
pub fn list(rows: &impl Rows, q: &ListUsers) -> Result<Vec<UserRecord>> {
    let prefix = tenant_row(rows.group(), SM_USER, &q.tenant, &[]);
    let from = match &q.after {
        // The smallest key after the user `after`.
        Some(after) => {
            let mut k = user_key(rows.group(), &q.tenant, after);
            k.push(0);
            k
        }
        None => prefix.clone(),
    };
    let limit = usize::try_from(q.limit.min(MAX_PAGE)).unwrap_or(0);
    rows.scan_from(&prefix, &from, limit)?
        .iter()
        .map(|(_, v)| codec::decode("user", v))
        .collect()
}
