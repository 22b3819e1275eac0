//! Fuzz target `refresh_token`: `RefreshToken::parse` on any text, checked against
//! the documented grammar, and every token it accepts against the documented
//! hash chain.
//!
//! Properties:
//! - `parse` accepts exactly `rt1.<session_id>.<generation>.<secret>` as
//!   [`crate::spec`] restates it, and refuses everything else with the error the
//!   first broken rule calls for (length, prefix, shape, session id, then the rest).
//! - An accepted token re-encodes to the input byte for byte (one spelling per token).
//! - Its stored hash is `HMAC(key, frame("cairn/v1/refresh-hash", session, n, secret))`
//!   and its successor's secret `HMAC(key, frame("cairn/v1/refresh-next", session,
//!   n+1, secret))`; the successor round-trips too; `walk_to` agrees with `next`
//!   and refuses to walk backwards or past `MAX_WALK`.
//! - `RefreshToken::first` accepts exactly the session ids the grammar allows, and
//!   what it returns round-trips through `parse`.

use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use cairn_crypto::envelope::{DataKey, Purpose, SubKey};
use cairn_crypto::token::{RefreshToken, TokenFormatError, MAX_REFRESH_TOKEN_LEN, MAX_WALK};

use crate::spec;

const HASH_LABEL: &[u8] = b"cairn/v1/refresh-hash";
const NEXT_LABEL: &[u8] = b"cairn/v1/refresh-next";

/// A fixed token-MAC subkey, so every run (and every seed) sees the same chain.
fn key() -> &'static SubKey {
    static KEY: OnceLock<SubKey> = OnceLock::new();
    KEY.get_or_init(|| DataKey::from_bytes(&mut [0x42; 32], 1).subkey(Purpose::TokenMac))
}

/// Which rule a refused token broke, without the error's wording.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    TooLong,
    WrongPrefix,
    InvalidSessionId,
    Malformed,
}

impl From<&TokenFormatError> for Refusal {
    fn from(e: &TokenFormatError) -> Self {
        match e {
            TokenFormatError::TooLong => Self::TooLong,
            TokenFormatError::WrongPrefix => Self::WrongPrefix,
            TokenFormatError::InvalidSessionId => Self::InvalidSessionId,
            TokenFormatError::Malformed(_) => Self::Malformed,
        }
    }
}

/// The grammar, rule by rule in the order the docs give them.
fn expected(s: &str) -> Result<(), Refusal> {
    if s.len() > MAX_REFRESH_TOKEN_LEN {
        return Err(Refusal::TooLong);
    }
    let rest = s.strip_prefix("rt1.").ok_or(Refusal::WrongPrefix)?;
    let parts: Vec<&str> = rest.split('.').collect();
    let [session, generation, secret] = parts[..] else {
        return Err(Refusal::Malformed);
    };
    if !spec::is_session_id(session) {
        return Err(Refusal::InvalidSessionId);
    }
    if !spec::is_canonical_u64(generation) || !spec::is_canonical_secret(secret) {
        return Err(Refusal::Malformed);
    }
    Ok(())
}

/// The 32 secret bytes of a token's wire form.
fn secret_of(wire: &str) -> Vec<u8> {
    let secret = wire.rsplit('.').next().expect("a token has segments");
    URL_SAFE_NO_PAD
        .decode(secret)
        .expect("an accepted secret is base64url")
}

/// Checks every property for one input; panics on the first that fails.
///
/// # Panics
/// When a property fails (that is the finding).
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match (RefreshToken::parse(text), expected(text)) {
        (Ok(token), Ok(())) => check_accepted(text, &token),
        (Err(e), Err(want)) => assert_eq!(Refusal::from(&e), want, "refused for another reason"),
        (Ok(_), Err(want)) => panic!("parse accepted a token the grammar refuses ({want:?})"),
        (Err(e), Ok(())) => panic!("parse refused a well-formed token: {e}"),
    }
    // Any text is a candidate session id for a new chain.
    match RefreshToken::first(text) {
        Ok(first) => {
            assert!(spec::is_session_id(text), "first() took a bad session id");
            assert_eq!(first.generation(), 0);
            let wire = first.encode();
            let again = RefreshToken::parse(&wire).expect("a first token parses");
            assert_eq!(again.encode(), wire);
            assert_eq!(again.session_id(), text);
        }
        Err(e) => {
            assert_eq!(e, TokenFormatError::InvalidSessionId);
            assert!(
                !spec::is_session_id(text),
                "first() refused a good session id"
            );
        }
    }
}

fn check_accepted(text: &str, token: &RefreshToken) {
    let key = key();
    assert_eq!(token.encode().as_str(), text, "one spelling per token");
    let mut parts = text["rt1.".len()..].split('.');
    let session = parts.next().expect("session");
    let generation: u64 = parts.next().expect("generation").parse().expect("u64");
    assert_eq!(token.session_id(), session);
    assert_eq!(token.generation(), generation);
    let secret = secret_of(text);
    assert_eq!(secret.len(), 32);

    let n = generation.to_be_bytes();
    let stored = key.mac(&spec::frame(&[HASH_LABEL, session.as_bytes(), &n, &secret]));
    assert_eq!(
        token.hash(key),
        stored,
        "stored hash is not the documented HMAC"
    );

    let next = token.next(key);
    let successor = generation.saturating_add(1);
    assert_eq!(next.generation(), successor);
    assert_eq!(next.session_id(), session);
    let next_wire = next.encode();
    let reparsed = RefreshToken::parse(&next_wire).expect("a successor parses");
    assert_eq!(reparsed.encode(), next_wire);
    let want = key.mac(&spec::frame(&[
        NEXT_LABEL,
        session.as_bytes(),
        &successor.to_be_bytes(),
        &secret,
    ]));
    assert_eq!(
        secret_of(&next_wire),
        want,
        "successor is not the documented HMAC"
    );

    let here = token.walk_to(key, generation).expect("a walk of 0 steps");
    assert_eq!(here.encode().as_str(), text);
    if let Some(g) = generation.checked_add(1) {
        let walked = token.walk_to(key, g).expect("a walk of 1 step");
        assert_eq!(walked.encode(), next_wire);
    }
    if let Some(g) = generation.checked_sub(1) {
        assert!(token.walk_to(key, g).is_none(), "walked backwards");
    }
    if let Some(g) = generation.checked_add(MAX_WALK + 1) {
        assert!(token.walk_to(key, g).is_none(), "walked past MAX_WALK");
    }
}

/// The format's fixed parts, for libFuzzer's dictionary.
#[must_use]
pub fn dict() -> Vec<Vec<u8>> {
    [
        "rt1.",
        ".",
        "_",
        "0",
        "18446744073709551615",
        "18446744073709551616",
    ]
    .iter()
    .map(|w| w.as_bytes().to_vec())
    .collect()
}

/// Valid tokens of several shapes, and near misses of each rule.
///
/// # Panics
/// If the code under test refuses to build a token from a valid session id.
#[must_use]
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let key = key();
    let first = RefreshToken::first("sess_01").expect("valid session id");
    let walked = first.walk_to(key, 3).expect("3 steps");
    let max = format!(
        "rt1.{}.18446744073709551615.{}",
        "z".repeat(64),
        URL_SAFE_NO_PAD.encode([0xff; 32])
    );
    let secret = URL_SAFE_NO_PAD.encode([5u8; 32]);
    let mut seeds = vec![
        ("first".to_owned(), first.encode().to_string()),
        ("walked".to_owned(), walked.encode().to_string()),
        ("max".to_owned(), max),
        ("session_id".to_owned(), "sess_01".to_owned()),
    ];
    let near = [
        format!("rt1.sess.7.{secret}="),
        format!("rt1.sess.7.{}V", &secret[..42]),
        format!("rt1.sess.07.{secret}"),
        format!("rt1.sess.18446744073709551616.{secret}"),
        format!("rt1.Sess.7.{secret}"),
        format!("rt1.{}.7.{secret}", "a".repeat(65)),
        format!("rt1.sess.7.{secret}.x"),
        format!("rt2.sess.7.{secret}"),
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
    fn the_valid_seeds_parse() {
        let seeds = seeds();
        for name in ["first", "walked", "max"] {
            let (_, data) = seeds.iter().find(|(n, _)| n == name).expect("seed");
            let text = std::str::from_utf8(data).expect("utf-8");
            assert!(RefreshToken::parse(text).is_ok(), "{name}");
            assert_eq!(expected(text), Ok(()), "{name}");
        }
        assert!(seeds
            .iter()
            .filter(|(n, _)| n.starts_with("near_"))
            .all(|(_, d)| RefreshToken::parse(std::str::from_utf8(d).expect("utf-8")).is_err()));
    }

    #[test]
    fn the_grammar_oracle_names_the_first_broken_rule() {
        let secret = URL_SAFE_NO_PAD.encode([5u8; 32]);
        assert_eq!(expected(&format!("rt1.sess.7.{secret}")), Ok(()));
        assert_eq!(expected(&"x".repeat(201)), Err(Refusal::TooLong));
        assert_eq!(expected("rt1"), Err(Refusal::WrongPrefix));
        assert_eq!(expected("rt1.a.b"), Err(Refusal::Malformed));
        assert_eq!(expected("rt1.A.01.x"), Err(Refusal::InvalidSessionId));
        assert_eq!(expected("rt1.a.01.x"), Err(Refusal::Malformed));
    }
}
