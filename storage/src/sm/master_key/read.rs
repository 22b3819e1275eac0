//! Reading the master key state.

use super::MasterKeyState;
use crate::engine::Rows;
use crate::keyspace::master_key;
use crate::Result;

/// The master key state (`None` before the first tenant or rotation).
///
/// # Errors
/// RocksDB read failure or a corrupt record.
pub fn state(rows: &impl Rows) -> Result<Option<MasterKeyState>> {
    rows.decode("master key state", &master_key(rows.group()))
}
