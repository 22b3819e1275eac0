//! The one binary encoding used on disk and between nodes: bincode 2 (serde), standard
//! config. Decoding checks that the whole input was consumed.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::StorageError;

/// Encodes a value.
///
/// # Errors
/// The value cannot be encoded by bincode (e.g. a map with non-string keys is fine,
/// but an unsupported serde feature is not).
pub fn encode<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>, StorageError> {
    bincode::serde::encode_to_vec(value, bincode::config::standard()).map_err(|e| {
        StorageError::Encode {
            what,
            detail: e.to_string(),
        }
    })
}

/// Decodes a value, refusing trailing bytes.
///
/// # Errors
/// The bytes are not a valid encoding of `T`.
pub fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, StorageError> {
    let (value, used) = bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map_err(|e| StorageError::Corrupt {
            what,
            detail: e.to_string(),
        })?;
    if used != bytes.len() {
        return Err(StorageError::Corrupt {
            what,
            detail: format!("{} trailing bytes", bytes.len() - used),
        });
    }
    Ok(value)
}
