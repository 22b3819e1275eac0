//! Reading the cluster's wire version.

use super::FIRST_WIRE_VERSION;
use crate::engine::Rows;
use crate::keyspace::wire_version_key;
use crate::Result;

/// The wire version recorded in this replica of `meta` ([`FIRST_WIRE_VERSION`]
/// if none was).
///
/// # Errors
/// RocksDB read failure or a corrupt record.
pub fn wire_version(rows: &impl Rows) -> Result<u32> {
    Ok(rows
        .decode::<u32>("wire version", &wire_version_key(rows.group()))?
        .unwrap_or(FIRST_WIRE_VERSION))
}
