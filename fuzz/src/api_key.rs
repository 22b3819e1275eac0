//! Fuzz target `api_key`: `ApiKey::parse` on any text, checked against the
//! documented format, and every key it accepts against the documented hash.
//!
//! Properties:
//! - `parse` accepts exactly `ck_<16 lowercase hex>_<canonical base64url of 32
//!   bytes>` and refuses everything else with the error the first broken rule
//!   calls for (length cap, prefix, then the rest).
//! - An accepted key re-encodes to the input byte for byte, and its id is the
//!   input's 16 hex digits.
//! - Its stored hash is `SHA-256(frame("cairn/v1/api-key", id, secret text))`;
//!   `verify_hash` accepts that hash and refuses it with any one bit flipped,
//!   shortened, or empty.

use cairn_crypto::token::{ApiKey, TokenFormatError, API_KEY_LEN, API_KEY_PREFIX};
use sha2::{Digest as _, Sha256};

use crate::spec;

const LABEL: &[u8] = b"cairn/v1/api-key";

/// Which rule a refused key broke, without the error's wording.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    TooLong,
    WrongPrefix,
    Malformed,
}

fn refusal(e: &TokenFormatError) -> Refusal {
    match e {
        TokenFormatError::TooLong => Refusal::TooLong,
        TokenFormatError::WrongPrefix => Refusal::WrongPrefix,
        // Not a reason an API key can be refused for.
        TokenFormatError::InvalidSessionId => panic!("an API key refused for its session id"),
        TokenFormatError::Malformed(_) => Refusal::Malformed,
    }
}

/// The format, rule by rule in the order the docs give them.
fn expected(s: &str) -> Result<(), Refusal> {
    if s.len() > API_KEY_LEN {
        return Err(Refusal::TooLong);
    }
    let rest = s.strip_prefix("ck_").ok_or(Refusal::WrongPrefix)?;
    let (id, secret) = (rest.get(..16), rest.get(16..));
    let (Some(id), Some(secret)) = (id, secret) else {
        return Err(Refusal::Malformed);
    };
    let hex = id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    match secret.strip_prefix('_') {
        Some(secret) if hex && spec::is_canonical_secret(secret) => Ok(()),
        _ => Err(Refusal::Malformed),
    }
}

/// Checks every property for one input; panics on the first that fails.
///
/// # Panics
/// When a property fails (that is the finding).
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let key = match (ApiKey::parse(text), expected(text)) {
        (Ok(key), Ok(())) => key,
        (Err(e), Err(want)) => {
            assert_eq!(refusal(&e), want, "refused for another reason");
            return;
        }
        (Ok(_), Err(want)) => panic!("parse accepted a key the format refuses ({want:?})"),
        (Err(e), Ok(())) => panic!("parse refused a well-formed key: {e}"),
    };
    assert_eq!(key.encode().as_str(), text, "one spelling per key");
    assert_eq!(text.len(), API_KEY_LEN);
    assert_eq!(
        key.id(),
        &text[API_KEY_PREFIX.len()..API_KEY_PREFIX.len() + 16]
    );

    let secret = &text[API_KEY_PREFIX.len() + 17..];
    let want: [u8; 32] = Sha256::digest(spec::frame(&[
        LABEL,
        key.id().as_bytes(),
        secret.as_bytes(),
    ]))
    .into();
    let stored = key.hash();
    assert_eq!(stored, want, "stored hash is not the documented SHA-256");
    assert!(key.verify_hash(&stored));
    // The bit to flip comes from the input, so the fuzzer reaches every one.
    let bit = data.iter().fold(0usize, |acc, &b| {
        acc.wrapping_mul(31).wrapping_add(usize::from(b))
    });
    let mut flipped = stored;
    flipped[bit / 8 % 32] ^= 1 << (bit % 8);
    assert!(!key.verify_hash(&flipped), "a flipped bit verified");
    assert!(!key.verify_hash(&stored[..31]), "a shortened hash verified");
    assert!(!key.verify_hash(&[]), "an empty hash verified");
}

/// The format's fixed parts, for libFuzzer's dictionary.
#[must_use]
pub fn dict() -> Vec<Vec<u8>> {
    ["ck_", "_", "-", "0123456789abcdef"]
        .iter()
        .map(|w| w.as_bytes().to_vec())
        .collect()
}

/// Generated keys, keys whose secrets use `_` and `-`, and near misses of each rule.
#[must_use]
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    let id = "0123456789abcdef";
    let secret = URL_SAFE_NO_PAD.encode([7u8; 32]);
    let mut seeds = vec![
        (
            "generated".to_owned(),
            ApiKey::generate().encode().to_string(),
        ),
        (
            "underscores".to_owned(),
            format!("ck_{id}_{}", URL_SAFE_NO_PAD.encode([0xff; 32])),
        ),
        (
            "dashes".to_owned(),
            format!("ck_{id}_{}", URL_SAFE_NO_PAD.encode([0xfb; 32])),
        ),
    ];
    let near = [
        format!("ck_{id}_{secret}A"),
        format!("ck_{id}_{}", &secret[1..]),
        format!("ck_0123456789ABCDEF_{secret}"),
        format!("ck_{id}-{secret}"),
        format!("ck_{id}_{}d", &secret[..42]),
        format!("cK_{id}_{secret}"),
        format!("ck_{id}_{}é", &secret[2..]),
    ];
    seeds.extend(
        near.into_iter()
            .enumerate()
            .map(|(i, s)| (format!("near_{i}"), s)),
    );
    seeds
        .into_iter()
        .map(|(name, s)| (name, s.into_bytes()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_valid_seeds_parse_and_the_near_misses_do_not() {
        for (name, data) in seeds() {
            let text = std::str::from_utf8(&data).expect("utf-8");
            let valid = !name.starts_with("near_");
            assert_eq!(ApiKey::parse(text).is_ok(), valid, "{name}");
            assert_eq!(expected(text).is_ok(), valid, "{name}");
        }
    }
}
