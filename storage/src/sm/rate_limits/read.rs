//! Reading rate rows.

use super::apply::stored_time;
use super::GetRates;
use crate::engine::Rows;
use crate::keyspace::rate_key;
use crate::Result;

/// The stored time of each row `q` names, in order (`None`: no row, a full
/// bucket or an untrusted pair).
///
/// # Errors
/// RocksDB read failure or a corrupt row.
pub fn get(rows: &impl Rows, q: &GetRates) -> Result<Vec<Option<u64>>> {
    q.rows
        .iter()
        .map(|(kind, id)| stored_time(rows, &rate_key(rows.group(), &q.tenant, *kind, id)))
        .collect()
}
