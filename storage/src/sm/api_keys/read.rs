//! Reading API keys.

use super::ApiKeyRecord;
use crate::engine::Rows;
use crate::keyspace::api_key_key;
use crate::Result;

/// An API key by id.
///
/// # Errors
/// RocksDB read failure or a corrupt record.
pub fn get(rows: &impl Rows, key_id: &str) -> Result<Option<ApiKeyRecord>> {
    rows.decode("api key", &api_key_key(rows.group(), key_id.as_bytes()))
}

/// Whether an API key id is taken.
///
/// # Errors
/// RocksDB read failure.
pub fn exists(rows: &impl Rows, key_id: &str) -> Result<bool> {
    rows.contains(&api_key_key(rows.group(), key_id.as_bytes()))
}
