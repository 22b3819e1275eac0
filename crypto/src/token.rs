//! Opaque bearer secrets: rotating refresh tokens and tenant API keys. The server
//! stores only hashes of either; the secrets exist in the clear only on the wire.
//!
//! # Refresh tokens: a keyed forward hash chain
//!
//! ```text
//! rt1.<session_id>.<generation>.<base64url(secret, 32 bytes)>
//!
//! secret₀   = 32 random bytes
//! secretₙ₊₁ = HMAC(token-MAC subkey, "cairn/v1/refresh-next" ‖ session_id ‖ n+1 ‖ secretₙ)
//! stored    = HMAC(token-MAC subkey, "cairn/v1/refresh-hash" ‖ session_id ‖ n ‖ secretₙ)
//! ```
//!
//! (every field length-prefixed, `n` as u64 big-endian). Each use of a refresh token
//! rotates it: the client gets the successor and the server replaces the stored hash
//! with the successor's. Making the successor a *deterministic, keyed* function of
//! the current token, instead of fresh randomness, is what lets the server keep a
//! single hash per session and still tell apart the cases rotation must handle when a
//! token of generation `g` is presented and the session is at generation `n`:
//!
//! - `g == n` and the hash matches: the current token; rotate.
//! - `g < n`: walk the presented token forward to `n` ([`RefreshToken::walk_to`]) and
//!   compare hashes. A match proves it is a genuine *retired* token of this session,
//!   not a guess: either a client that never received its successor (for `g == n-1`
//!   the server can recompute and resend exactly the successor it issued, making
//!   rotation idempotent under lost responses) or a replay by someone who stole it,
//!   which warrants revoking the session. No match: garbage, refused without
//!   revoking anything, so knowing a session id is not enough to log anyone out.
//! - `g > n`, or no match: refused.
//!
//! Why this is safe:
//! - Successors need the tenant's token-MAC subkey ([`Purpose::TokenMac`]): HMAC is a
//!   PRF, so a thief holding token `n` cannot compute token `n+1`, and a
//!   predecessor cannot be computed from a successor even with the key.
//! - The stored value is a keyed hash under a different domain label than successor
//!   derivation, so a leaked database gives neither a current token nor a successor.
//! - The subkey is the crux: with it, anyone holding an old token can walk forward.
//!   It exists only in memory, derived from the tenant DEK; a session must remember
//!   the key version ([`SubKey::version`]) its chain was started under.
//! - [`MAX_WALK`] bounds the work one presented token can cause.
//!
//! # API keys
//!
//! ```text
//! ck_<key_id: 16 lowercase hex>_<secret: base64url(32 random bytes), 43 chars>
//! ```
//!
//! The key id is public (it names the key in listings and logs, and finds the stored
//! record); the secret is 256 random bits. The stored hash is plain SHA-256, on
//! purpose: the tenant is found *from* the key, so no tenant key is available yet to
//! key the hash with, and none is needed: a uniformly random 256-bit secret has no
//! dictionary to attack and cannot be brute-forced from its hash, so neither a key nor
//! a slow password hash would add anything. The comparison is still constant-time.
//!
//! Parsing is strict and positional, with one accepted spelling per token, and errors
//! never echo the input.
//!
//! [`Purpose::TokenMac`]: crate::envelope::Purpose::TokenMac
//! [`SubKey::version`]: crate::envelope::SubKey::version

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use crate::envelope::SubKey;

/// Longest refresh token accepted, in bytes (the longest well-formed one is 133).
pub const MAX_REFRESH_TOKEN_LEN: usize = 200;
/// Furthest [`RefreshToken::walk_to`] goes: one HMAC per step.
pub const MAX_WALK: u64 = 100_000;
/// Longest session id, in characters of `[a-z0-9_]`.
pub const MAX_SESSION_ID_LEN: usize = 64;
/// Length of every API key, in bytes: `ck_` + 16 + `_` + 43.
pub const API_KEY_LEN: usize = API_KEY_PREFIX.len() + API_KEY_ID_LEN + 1 + SECRET_B64_LEN;

const REFRESH_PREFIX: &str = "rt1.";
/// How every API key starts (tells an API key from the operator token).
pub const API_KEY_PREFIX: &str = "ck_";
const API_KEY_ID_LEN: usize = 16;
const SECRET_LEN: usize = 32;
/// 32 bytes in unpadded base64.
const SECRET_B64_LEN: usize = 43;
/// `u64::MAX` has 20 decimal digits.
const MAX_GENERATION_DIGITS: usize = 20;

const REFRESH_NEXT_LABEL: &[u8] = b"cairn/v1/refresh-next";
const REFRESH_HASH_LABEL: &[u8] = b"cairn/v1/refresh-hash";
const API_KEY_LABEL: &[u8] = b"cairn/v1/api-key";

/// Why a presented token was refused. Never contains any of the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenFormatError {
    #[error("token is too long")]
    TooLong,
    #[error("token does not start with the expected prefix")]
    WrongPrefix,
    #[error("session id must be 1 to 64 characters of a-z, 0-9 and _")]
    InvalidSessionId,
    #[error("malformed token: {0}")]
    Malformed(&'static str),
}

/// A refresh token: a session, a position in its rotation chain, and a 32-byte
/// secret. Zeroized on drop; `Debug` omits the secret. Not comparable with `==`:
/// compare [`RefreshToken::hash`]es, in constant time.
#[derive(Clone)]
pub struct RefreshToken {
    session_id: String,
    generation: u64,
    secret: Zeroizing<[u8; SECRET_LEN]>,
}

impl RefreshToken {
    /// The first token of a new session: generation 0, 32 random bytes.
    ///
    /// # Errors
    /// [`TokenFormatError::InvalidSessionId`] unless `session_id` is 1–64 characters
    /// of `[a-z0-9_]`.
    pub fn first(session_id: &str) -> Result<Self, TokenFormatError> {
        check_session_id(session_id)?;
        let mut secret = Zeroizing::new([0u8; SECRET_LEN]);
        rand::rngs::OsRng.fill_bytes(secret.as_mut());
        Ok(Self {
            session_id: session_id.to_owned(),
            generation: 0,
            secret,
        })
    }

    /// Parses `rt1.<session_id>.<generation>.<secret>` strictly: the generation in
    /// canonical decimal (no sign, no leading zeros), the secret as canonical
    /// unpadded base64url of exactly 32 bytes.
    ///
    /// # Errors
    /// Any deviation from the format, as a [`TokenFormatError`] that does not echo
    /// the input.
    pub fn parse(s: &str) -> Result<Self, TokenFormatError> {
        if s.len() > MAX_REFRESH_TOKEN_LEN {
            return Err(TokenFormatError::TooLong);
        }
        let rest = s
            .strip_prefix(REFRESH_PREFIX)
            .ok_or(TokenFormatError::WrongPrefix)?;
        let mut parts = rest.split('.');
        let (Some(session_id), Some(generation), Some(secret), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenFormatError::Malformed(
                "expected rt1.<session>.<generation>.<secret>",
            ));
        };
        check_session_id(session_id)?;
        Ok(Self {
            session_id: session_id.to_owned(),
            generation: parse_generation(generation)?,
            secret: decode_secret(secret)?,
        })
    }

    /// The wire form, `rt1.<session_id>.<generation>.<secret>`.
    #[must_use]
    pub fn encode(&self) -> Zeroizing<String> {
        let generation = self.generation.to_string();
        let mut out = Zeroizing::new(String::with_capacity(
            REFRESH_PREFIX.len()
                + self.session_id.len()
                + 1
                + generation.len()
                + 1
                + SECRET_B64_LEN,
        ));
        out.push_str(REFRESH_PREFIX);
        out.push_str(&self.session_id);
        out.push('.');
        out.push_str(&generation);
        out.push('.');
        push_secret(&mut out, &self.secret);
        out
    }

    #[must_use]
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    #[must_use]
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The successor token: generation + 1, secret = HMAC under `key` (the tenant's
    /// token-MAC subkey) of this token's session, the new generation and this
    /// secret. Deterministic; see the module docs for why.
    ///
    /// The generation saturates at `u64::MAX` (2⁶⁴ rotations are unreachable; the
    /// secret still changes, so a saturated chain fails verification rather than
    /// repeating a token).
    #[must_use]
    pub fn next(&self, key: &SubKey) -> Self {
        let generation = self.generation.saturating_add(1);
        let input = frame(&[
            REFRESH_NEXT_LABEL,
            self.session_id.as_bytes(),
            &generation.to_be_bytes(),
            self.secret.as_ref(),
        ]);
        Self {
            session_id: self.session_id.clone(),
            generation,
            secret: Zeroizing::new(key.mac(&input)),
        }
    }

    /// The keyed hash the server stores for this token: HMAC under `key` of the
    /// session, generation and secret, under a label distinct from [`Self::next`]'s.
    #[must_use]
    pub fn hash(&self, key: &SubKey) -> [u8; 32] {
        let input = frame(&[
            REFRESH_HASH_LABEL,
            self.session_id.as_bytes(),
            &self.generation.to_be_bytes(),
            self.secret.as_ref(),
        ]);
        key.mac(&input)
    }

    /// This token walked forward by repeated [`Self::next`] to `generation`; itself
    /// (a copy) if it is already there. `None` if `generation` is behind this token
    /// or more than [`MAX_WALK`] steps ahead.
    #[must_use]
    pub fn walk_to(&self, key: &SubKey, generation: u64) -> Option<Self> {
        let distance = generation.checked_sub(self.generation)?;
        if distance > MAX_WALK {
            return None;
        }
        let mut token = self.clone();
        for _ in 0..distance {
            token = token.next(key);
        }
        Some(token)
    }
}

impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshToken")
            .field("session_id", &self.session_id)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// A tenant API key: a public id and a 256-bit secret. Zeroized on drop; `Debug`
/// shows only the id.
#[derive(Clone)]
pub struct ApiKey {
    id: String,
    secret: Zeroizing<String>,
}

impl ApiKey {
    /// A fresh key: 8 random bytes of id, 32 random bytes of secret.
    #[must_use]
    pub fn generate() -> Self {
        let mut secret = Zeroizing::new([0u8; SECRET_LEN]);
        rand::rngs::OsRng.fill_bytes(secret.as_mut());
        let mut encoded = Zeroizing::new(String::with_capacity(SECRET_B64_LEN));
        push_secret(&mut encoded, &secret);
        Self {
            id: crate::random_hex(API_KEY_ID_LEN / 2),
            secret: encoded,
        }
    }

    /// Parses `ck_<16 lowercase hex>_<43-character base64url secret>` by position
    /// (the secret's alphabet contains `_` and `-`, so splitting on `_` would be
    /// ambiguous). The secret must be canonical base64url of exactly 32 bytes.
    ///
    /// # Errors
    /// Any deviation from the format, as a [`TokenFormatError`] that does not echo
    /// the input.
    pub fn parse(s: &str) -> Result<Self, TokenFormatError> {
        if s.len() > API_KEY_LEN {
            return Err(TokenFormatError::TooLong);
        }
        if !s.starts_with(API_KEY_PREFIX) {
            return Err(TokenFormatError::WrongPrefix);
        }
        if s.len() != API_KEY_LEN || !s.is_ascii() {
            return Err(TokenFormatError::Malformed("API key has the wrong length"));
        }
        // All ASCII and of the exact length, so these slices are in bounds and on
        // character boundaries.
        let id_end = API_KEY_PREFIX.len() + API_KEY_ID_LEN;
        let id = &s[API_KEY_PREFIX.len()..id_end];
        if !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(TokenFormatError::Malformed(
                "API key id is not 16 lowercase hex digits",
            ));
        }
        if s.as_bytes()[id_end] != b'_' {
            return Err(TokenFormatError::Malformed(
                "API key id is not followed by '_'",
            ));
        }
        let secret = &s[id_end + 1..];
        // Validates alphabet, canonical form and decoded length; the text is kept.
        decode_secret(secret)?;
        Ok(Self {
            id: id.to_owned(),
            secret: Zeroizing::new(secret.to_owned()),
        })
    }

    /// The public key id (16 lowercase hex characters).
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The wire form, `ck_<id>_<secret>`, shown to the user once.
    #[must_use]
    pub fn encode(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::with_capacity(API_KEY_LEN));
        out.push_str(API_KEY_PREFIX);
        out.push_str(&self.id);
        out.push('_');
        out.push_str(&self.secret);
        out
    }

    /// The value to store: SHA-256 of the domain label, id and secret, each
    /// length-prefixed. Unkeyed on purpose (see the module docs).
    #[must_use]
    pub fn hash(&self) -> [u8; 32] {
        let input = frame(&[API_KEY_LABEL, self.id.as_bytes(), self.secret.as_bytes()]);
        Sha256::digest(input.as_slice()).into()
    }

    /// Whether this key matches a stored [`ApiKey::hash`], in constant time.
    #[must_use]
    pub fn verify_hash(&self, stored: &[u8]) -> bool {
        crate::constant_time_eq(&self.hash(), stored)
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

fn check_session_id(session_id: &str) -> Result<(), TokenFormatError> {
    let ok = (1..=MAX_SESSION_ID_LEN).contains(&session_id.len())
        && session_id
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(TokenFormatError::InvalidSessionId)
    }
}

/// Canonical decimal u64: digits only, no leading zero unless the number is 0.
fn parse_generation(s: &str) -> Result<u64, TokenFormatError> {
    if s.is_empty()
        || s.len() > MAX_GENERATION_DIGITS
        || !s.bytes().all(|b| b.is_ascii_digit())
        || (s.len() > 1 && s.starts_with('0'))
    {
        return Err(TokenFormatError::Malformed(
            "generation is not a canonical decimal number",
        ));
    }
    s.parse()
        .map_err(|_| TokenFormatError::Malformed("generation is out of range"))
}

/// Canonical unpadded base64url of exactly 32 bytes, decoded straight into zeroized
/// memory.
fn decode_secret(s: &str) -> Result<Zeroizing<[u8; SECRET_LEN]>, TokenFormatError> {
    const BAD: TokenFormatError =
        TokenFormatError::Malformed("secret is not 32 bytes of canonical base64url");
    if s.len() != SECRET_B64_LEN {
        return Err(BAD);
    }
    let mut secret = Zeroizing::new([0u8; SECRET_LEN]);
    match URL_SAFE_NO_PAD.decode_slice(s, secret.as_mut()) {
        Ok(SECRET_LEN) => Ok(secret),
        _ => Err(BAD),
    }
}

/// Appends the unpadded base64url of `secret` without an intermediate buffer that
/// would outlive this call unzeroized.
fn push_secret(out: &mut String, secret: &[u8; SECRET_LEN]) {
    let mut buf = Zeroizing::new([0u8; SECRET_B64_LEN]);
    let written = URL_SAFE_NO_PAD
        .encode_slice(secret, buf.as_mut())
        .expect("32 bytes are exactly 43 unpadded base64 characters");
    out.extend(buf[..written].iter().copied().map(char::from));
}

/// Unambiguous concatenation: each field prefixed with its length as u64 BE.
/// Capacity is exact, so the buffer never reallocates and leaves no copy of a secret
/// behind.
fn frame(fields: &[&[u8]]) -> Zeroizing<Vec<u8>> {
    let len = fields.iter().map(|f| 8 + f.len()).sum();
    let mut out = Zeroizing::new(Vec::with_capacity(len));
    for field in fields {
        out.extend_from_slice(&(field.len() as u64).to_be_bytes());
        out.extend_from_slice(field);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{DataKey, Purpose};

    fn subkey(seed: u8) -> SubKey {
        let mut bytes = [seed; 32];
        DataKey::from_bytes(&mut bytes, 1).subkey(Purpose::TokenMac)
    }

    fn token(session: &str, generation: u64, secret: [u8; 32]) -> RefreshToken {
        RefreshToken {
            session_id: session.to_owned(),
            generation,
            secret: Zeroizing::new(secret),
        }
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    #[test]
    fn refresh_token_round_trips() {
        let first = RefreshToken::first("sess_01").expect("first");
        assert_eq!(first.generation(), 0);
        assert_eq!(first.session_id(), "sess_01");
        let wire = first.encode();
        assert!(wire.starts_with("rt1.sess_01.0."), "{}", wire.as_str());
        let parsed = RefreshToken::parse(&wire).expect("parse");
        assert_eq!(parsed.encode(), wire);
        assert_eq!(parsed.hash(&subkey(1)), first.hash(&subkey(1)));

        let longest = token(&"z".repeat(64), u64::MAX, [0xff; 32]);
        let wire = longest.encode();
        assert_eq!(wire.len(), 133);
        assert_eq!(RefreshToken::parse(&wire).expect("parse").encode(), wire);
        assert_ne!(
            RefreshToken::first("s").expect("first").encode(),
            RefreshToken::first("s").expect("first").encode(),
            "random first secrets"
        );
    }

    #[test]
    fn malformed_refresh_tokens_are_refused() {
        let secret = b64(&[5u8; 32]);
        let good = format!("rt1.sess.7.{secret}");
        assert!(RefreshToken::parse(&good).is_ok());
        let mut padded = secret.clone();
        padded.push('=');
        let std_alpha = b64(&[0xfb; 32]).replace('-', "+").replace('_', "/");
        // 32 bytes leave 2 unused bits in the last character: set one.
        let mut non_canonical = secret.clone();
        let last = non_canonical.pop().expect("char");
        assert_eq!(last, 'U');
        non_canonical.push('V');
        let too_long_id = "a".repeat(65);
        let cases: Vec<(String, TokenFormatError)> = vec![
            (String::new(), TokenFormatError::WrongPrefix),
            (
                format!("rt2.sess.7.{secret}"),
                TokenFormatError::WrongPrefix,
            ),
            (
                format!("RT1.sess.7.{secret}"),
                TokenFormatError::WrongPrefix,
            ),
            (
                format!(" rt1.sess.7.{secret}"),
                TokenFormatError::WrongPrefix,
            ),
            (format!("ck_sess.7.{secret}"), TokenFormatError::WrongPrefix),
            (
                "rt1.".to_owned(),
                TokenFormatError::Malformed("expected rt1.<session>.<generation>.<secret>"),
            ),
            (
                format!("rt1.sess.{secret}"),
                TokenFormatError::Malformed("expected rt1.<session>.<generation>.<secret>"),
            ),
            (
                format!("rt1.sess.7.{secret}.x"),
                TokenFormatError::Malformed("expected rt1.<session>.<generation>.<secret>"),
            ),
            (
                format!("rt1.sess.7.{secret}."),
                TokenFormatError::Malformed("expected rt1.<session>.<generation>.<secret>"),
            ),
            (
                format!("rt1..7.{secret}"),
                TokenFormatError::InvalidSessionId,
            ),
            (
                format!("rt1.Sess.7.{secret}"),
                TokenFormatError::InvalidSessionId,
            ),
            (
                format!("rt1.se-ss.7.{secret}"),
                TokenFormatError::InvalidSessionId,
            ),
            (
                format!("rt1.sé.7.{secret}"),
                TokenFormatError::InvalidSessionId,
            ),
            (
                format!("rt1.{too_long_id}.7.{secret}"),
                TokenFormatError::InvalidSessionId,
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(RefreshToken::parse(&input).err(), Some(expected), "{input}");
        }
        for generation in [
            "",
            "01",
            "00",
            "+1",
            "-1",
            " 1",
            "1 ",
            "1_000",
            "0x1",
            "1e3",
            "١",
            "18446744073709551616",
            "99999999999999999999",
            "100000000000000000000",
        ] {
            let input = format!("rt1.sess.{generation}.{secret}");
            assert!(
                matches!(
                    RefreshToken::parse(&input),
                    Err(TokenFormatError::Malformed(_))
                ),
                "{input}"
            );
        }
        let max = format!("rt1.sess.18446744073709551615.{secret}");
        assert_eq!(
            RefreshToken::parse(&max).expect("u64::MAX").generation(),
            u64::MAX
        );
        for bad_secret in [
            "",
            padded.as_str(),
            &secret[1..],
            &format!("{secret}A"),
            std_alpha.as_str(),
            non_canonical.as_str(),
            &b64(&[5u8; 31]),
            &b64(&[5u8; 33]),
            &format!("{}=", b64(&[5u8; 31])),
            &" ".repeat(43),
        ] {
            let input = format!("rt1.sess.7.{bad_secret}");
            assert!(
                matches!(
                    RefreshToken::parse(&input),
                    Err(TokenFormatError::Malformed(_))
                ),
                "{input}"
            );
        }
        let oversize = format!("{good}{}", "A".repeat(MAX_REFRESH_TOKEN_LEN));
        assert_eq!(
            RefreshToken::parse(&oversize).err(),
            Some(TokenFormatError::TooLong)
        );
    }

    #[test]
    fn first_validates_the_session_id() {
        for bad in ["", "A", "a.b", "a b", &"a".repeat(65)] {
            assert_eq!(
                RefreshToken::first(bad).err(),
                Some(TokenFormatError::InvalidSessionId),
                "{bad}"
            );
        }
        assert!(RefreshToken::first(&"a".repeat(64)).is_ok());
        assert!(RefreshToken::first("0_z").is_ok());
    }

    #[test]
    fn next_is_deterministic_and_bound_to_key_session_and_generation() {
        let key = subkey(1);
        let t = token("sess", 3, [9; 32]);
        let n = t.next(&key);
        assert_eq!(n.generation(), 4);
        assert_eq!(n.session_id(), "sess");
        assert_eq!(n.encode(), t.next(&key).encode(), "deterministic");
        assert_ne!(n.encode(), t.encode());
        let secret = |t: &RefreshToken| *t.secret;
        assert_ne!(secret(&n), secret(&t.next(&subkey(2))), "per key");
        assert_ne!(
            secret(&n),
            secret(&token("sess2", 3, [9; 32]).next(&key)),
            "per session"
        );
        assert_ne!(
            secret(&n),
            secret(&token("sess", 4, [9; 32]).next(&key)),
            "per generation"
        );
        assert_ne!(
            secret(&n),
            secret(&token("sess", 3, [8; 32]).next(&key)),
            "per secret"
        );
        // Another purpose's subkey (same DEK) gives another chain.
        let mut bytes = [1u8; 32];
        let value_key = DataKey::from_bytes(&mut bytes, 1).subkey(Purpose::BlindIndex);
        assert_ne!(secret(&n), secret(&t.next(&value_key)));
        // Saturation keeps the generation but still changes the secret.
        let last = token("sess", u64::MAX, [1; 32]);
        let after = last.next(&key);
        assert_eq!(after.generation(), u64::MAX);
        assert_ne!(secret(&after), secret(&last));
    }

    #[test]
    fn stored_hash_is_keyed_and_distinct_from_successors() {
        let key = subkey(1);
        let t = token("sess", 3, [9; 32]);
        let h = t.hash(&key);
        assert_eq!(h, t.hash(&key));
        assert_ne!(h, t.hash(&subkey(2)), "per key");
        assert_ne!(h, token("sess", 4, [9; 32]).hash(&key), "per generation");
        assert_ne!(h, token("sess2", 3, [9; 32]).hash(&key), "per session");
        assert_ne!(h, token("sess", 3, [8; 32]).hash(&key), "per secret");
        assert_ne!(h, t.next(&key).hash(&key));
        // Domain separation: the stored hash is never the successor's secret.
        assert_ne!(h, *t.next(&key).secret);
        // Length prefixes: moving characters between fields changes the input.
        assert_ne!(
            frame(&[b"ab", b"c"]).as_slice(),
            frame(&[b"a", b"bc"]).as_slice()
        );
    }

    #[test]
    fn walk_to_matches_repeated_next() {
        let key = subkey(1);
        let start = token("sess", 10, [4; 32]);
        let mut stepped = start.clone();
        for _ in 0..25 {
            stepped = stepped.next(&key);
        }
        let walked = start.walk_to(&key, 35).expect("walk");
        assert_eq!(walked.encode(), stepped.encode());
        assert_eq!(walked.hash(&key), stepped.hash(&key));
        assert_eq!(
            start.walk_to(&key, 10).expect("same").encode(),
            start.encode()
        );
        assert!(start.walk_to(&key, 9).is_none(), "backwards");
        assert!(start.walk_to(&key, 0).is_none(), "backwards");
        assert!(start.walk_to(&key, 10 + MAX_WALK + 1).is_none(), "too far");
        assert!(start.walk_to(&key, u64::MAX).is_none(), "too far");
        // A retired token proves itself against the current stored hash.
        let current = start.walk_to(&key, 12).expect("walk");
        let stored = current.hash(&key);
        let retired = start.next(&key);
        assert_eq!(
            retired
                .walk_to(&key, current.generation())
                .expect("walk")
                .hash(&key),
            stored
        );
        let forged = token("sess", 11, [0; 32]);
        assert_ne!(
            forged
                .walk_to(&key, current.generation())
                .expect("walk")
                .hash(&key),
            stored
        );
    }

    #[test]
    fn walk_to_the_limit_is_bounded() {
        let key = subkey(3);
        let start = token("s", 0, [2; 32]);
        assert_eq!(
            start
                .walk_to(&key, MAX_WALK)
                .expect("at the limit")
                .generation(),
            MAX_WALK
        );
        assert!(start.walk_to(&key, MAX_WALK + 1).is_none());
    }

    #[test]
    fn debug_never_shows_secrets() {
        let t = token("sess", 3, [0xab; 32]);
        let debug = format!("{t:?}");
        assert!(debug.contains("sess") && debug.contains('3'), "{debug}");
        assert!(!debug.contains(&b64(&[0xab; 32])), "{debug}");
        assert!(!debug.contains("171"), "{debug}");
        let key = ApiKey::generate();
        let debug = format!("{key:?}");
        assert!(debug.contains(key.id()), "{debug}");
        assert!(!debug.contains(key.secret.as_str()), "{debug}");
    }

    #[test]
    fn api_key_round_trips_and_verifies() {
        let key = ApiKey::generate();
        let wire = key.encode();
        assert_eq!(wire.len(), API_KEY_LEN);
        assert_eq!(wire.len(), 63);
        assert!(wire.starts_with("ck_"));
        assert_eq!(key.id().len(), 16);
        assert!(key
            .id()
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        let parsed = ApiKey::parse(&wire).expect("parse");
        assert_eq!(parsed.id(), key.id());
        assert_eq!(parsed.encode(), wire);
        let stored = key.hash();
        assert!(parsed.verify_hash(&stored));
        assert!(!parsed.verify_hash(&stored[..31]));
        assert!(!parsed.verify_hash(&[]));
        assert!(!ApiKey::generate().verify_hash(&stored));
        assert_ne!(ApiKey::generate().encode(), wire);
    }

    #[test]
    fn api_key_with_underscores_and_dashes_in_the_secret_parses() {
        // 0xff bytes encode to "_" characters, 0xfb to "-".
        let wire = format!("ck_0123456789abcdef_{}", b64(&[0xff; 32]));
        assert!(wire[20..].starts_with("___"));
        let key = ApiKey::parse(&wire).expect("parse");
        assert_eq!(key.id(), "0123456789abcdef");
        assert_eq!(key.encode().as_str(), wire);
        let wire = format!("ck_0123456789abcdef_{}", b64(&[0xfb; 32]));
        assert!(wire[20..].contains('-'));
        assert!(ApiKey::parse(&wire).is_ok());
    }

    #[test]
    fn any_one_character_change_fails_verification() {
        let key = ApiKey::generate();
        let stored = key.hash();
        let wire = key.encode();
        let alphabet = "0123456789abcdefABCDEF-_xyzXYZ";
        for i in 0..wire.len() {
            for c in alphabet.chars() {
                let mut changed: Vec<char> = wire.chars().collect();
                if changed[i] == c {
                    continue;
                }
                changed[i] = c;
                let changed: String = changed.into_iter().collect();
                if let Ok(other) = ApiKey::parse(&changed) {
                    assert!(!other.verify_hash(&stored), "position {i}");
                }
            }
        }
    }

    #[test]
    fn malformed_api_keys_are_refused() {
        let secret = b64(&[7u8; 32]);
        let id = "0123456789abcdef";
        assert!(ApiKey::parse(&format!("ck_{id}_{secret}")).is_ok());
        let mut non_canonical = secret.clone();
        non_canonical.pop();
        non_canonical.push('d'); // canonical is 'c': 2 unused bits set
        assert!(ApiKey::parse(&format!("ck_{id}_{non_canonical}")).is_err());
        let too_long = format!("ck_{id}_{secret}A");
        assert_eq!(
            ApiKey::parse(&too_long).err(),
            Some(TokenFormatError::TooLong)
        );
        for (input, expected) in [
            (format!("cK_{id}_{secret}"), TokenFormatError::WrongPrefix),
            (format!("sk_{id}_{secret}"), TokenFormatError::WrongPrefix),
            (format!("_{id}_{secret}"), TokenFormatError::WrongPrefix),
            (String::new(), TokenFormatError::WrongPrefix),
        ] {
            assert_eq!(ApiKey::parse(&input).err(), Some(expected), "{input}");
        }
        for input in [
            "ck_".to_owned(),
            format!("ck_{id}"),
            format!("ck_{id}_"),
            format!("ck_{id}_{}", &secret[1..]),
            format!("ck_{}_{secret}", &id[1..]),
            format!("ck_{id}A_{}", &secret[1..]),
            format!("ck_0123456789ABCDEF_{secret}"),
            format!("ck_0123456789abcdeg_{secret}"),
            format!("ck_{id}-{secret}"),
            format!("ck_{id}.{secret}"),
            format!("ck_{id}_{}=", &secret[1..]),
            format!("ck_{id}_{}+", &secret[1..]),
            format!("ck_{id}_{}/", &secret[1..]),
            format!("ck_{id}_{}é", &secret[2..]),
            format!("ck_{id}_{}", " ".repeat(43)),
        ] {
            assert!(
                matches!(ApiKey::parse(&input), Err(TokenFormatError::Malformed(_))),
                "{input}"
            );
        }
    }

    #[test]
    fn errors_do_not_echo_the_input() {
        let secret = b64(&[7u8; 32]);
        for err in [
            RefreshToken::parse(&format!("rt1.sess.01.{secret}")),
            RefreshToken::parse(&format!("rt1.sess.1.{secret}x")),
        ]
        .into_iter()
        .filter_map(Result::err)
        .chain(ApiKey::parse(&format!("ck_0123456789abcdeX_{secret}")).err())
        {
            let message = err.to_string();
            assert!(!message.contains(&secret[..10]), "{message}");
            assert!(
                !message.contains("sess") && !message.contains("0123"),
                "{message}"
            );
        }
    }
}
