//! Reading the email index.

use super::{EmailEntry, GetEmail};
use crate::engine::Rows;
use crate::keyspace::email_key;
use crate::Result;

/// Where the user holding an email lives.
///
/// # Errors
/// RocksDB read failure or a corrupt record.
pub fn get(rows: &impl Rows, q: &GetEmail) -> Result<Option<EmailEntry>> {
    rows.decode(
        "email entry",
        &email_key(rows.group(), &q.tenant_id, &q.index),
    )
}
