//! Reading signing keys.

use super::{GetSigningKeys, SigningKeys};
use crate::engine::Rows;
use crate::keyspace::signing_key;
use crate::Result;

/// A tenant's signing keys (empty if none or no such tenant).
///
/// # Errors
/// RocksDB read failure or a corrupt record.
pub fn get(rows: &impl Rows, q: &GetSigningKeys) -> Result<SigningKeys> {
    Ok(rows
        .decode("signing keys", &signing_key(rows.group(), &q.tenant_id))?
        .unwrap_or_default())
}
