//! Reading KV records.

use super::{Get, KvRecord};
use crate::engine::Rows;
use crate::keyspace::kv_key;
use crate::Result;

/// A tenant's key from the local replica (callers ensure linearizability).
///
/// # Errors
/// RocksDB read failure or a corrupt record.
pub fn get(rows: &impl Rows, q: &Get) -> Result<Option<KvRecord>> {
    rows.decode("kv record", &kv_key(rows.group(), &q.tenant, &q.key))
}
