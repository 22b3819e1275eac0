//! The one binary encoding used on disk and between nodes: bincode 2 (serde), standard
//! config. Decoding checks that the whole input was consumed, and is capped: bincode
//! allocates a string or byte buffer of the length its prefix claims before reading
//! it, so without a cap a corrupt record or a hostile peer message claiming an
//! exabyte would abort the process (found by a property test). Nesting is
//! capped too ([`MAX_DEPTH`], `depth.rs`): serde's decoders recurse once per level,
//! so a deeply nested value would overflow the stack and abort as surely.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::depth::Bounded;
use super::StorageError;

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

/// Most bytes one decode may allocate: above any legitimate record or peer message
/// (peer messages are capped at 256 MiB; snapshots are built in memory), low enough
/// that a lying length prefix costs at most a lazily-zeroed allocation, not an abort.
pub const DECODE_LIMIT: usize = 1 << 30;

/// Most levels one decoded value may nest (a struct in a field, an element in a
/// list, an option's content, ... each count one): far above any value Cairn
/// writes (every golden sample decodes within 10), far below
/// what overflows a 2 MiB tokio worker stack.
pub const MAX_DEPTH: usize = 128;

/// Decodes a value, refusing trailing bytes.
///
/// # Errors
/// The bytes are not a valid encoding of `T`, or nest deeper than [`MAX_DEPTH`].
pub fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, StorageError> {
    let config = bincode::config::standard().with_limit::<DECODE_LIMIT>();
    let seed = Bounded::new(PhantomData::<T>, MAX_DEPTH);
    let (value, used) =
        bincode::serde::seed_decode_from_slice(seed, bytes, config).map_err(|e| {
            StorageError::Corrupt {
                what,
                detail: e.to_string(),
            }
        })?;
    if used != bytes.len() {
        return Err(StorageError::Corrupt {
            what,
            detail: format!("{} trailing bytes", bytes.len() - used),
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lying_length_prefix_is_an_error_not_an_abort() {
        // A string claiming ~7e18 bytes (varint 0xfd + u64), then nothing.
        let mut bytes = vec![0xfd];
        bytes.extend_from_slice(&7_155_233_157_875_060_493u64.to_le_bytes());
        assert!(decode::<String>("test", &bytes).is_err());
        assert!(decode::<Vec<u8>>("test", &bytes).is_err());
        assert!(decode::<(String, Vec<u8>)>("test", &bytes).is_err());
        // Just above the cap: refused before allocating.
        let mut big = vec![0xfd];
        big.extend_from_slice(&((DECODE_LIMIT as u64) + 1).to_le_bytes());
        assert!(decode::<Vec<u8>>("test", &big).is_err());
        let ok = encode("test", &("k".to_owned(), vec![1u8, 2, 3])).expect("encode");
        assert_eq!(
            decode::<(String, Vec<u8>)>("test", &ok).expect("decode"),
            ("k".to_owned(), vec![1, 2, 3])
        );
    }
}
