//! Compact JWS (RFC 7515) access tokens signed with EdDSA over Ed25519 (RFC 8037),
//! and nothing else.
//!
//! Written by hand on `ed25519-dalek` and `base64` rather than with a general JOSE
//! library, because the general case is where JWT bugs live. There is exactly one
//! algorithm: the header's `alg` is *checked* to be `EdDSA`, never *used* to choose
//! how to verify, so the algorithm-confusion class of bugs (`alg: none`, an RSA or
//! Ed25519 public key used as an HMAC secret, ECDSA psychic signatures) cannot arise.
//! Header members that ask the verifier to fetch or trust keys (`jku`, `jwk`, `x5u`,
//! …) or to understand extensions (`crit`) are refused rather than ignored.
//!
//! Token layout (every segment base64url without padding, canonical):
//!
//! ```text
//! base64url({"alg":"EdDSA","typ":"JWT","kid":"<RFC 7638 thumbprint>"})
//!   "." base64url(claims JSON object)
//!   "." base64url(Ed25519 signature, 64 bytes, over the first two segments as sent)
//! ```
//!
//! Verification is strict and ordered so that nothing attacker-controlled is
//! interpreted before it is authenticated, except the small header needed to pick
//! the key: size cap → segment shape → header → key id → signature
//! (`verify_strict`: canonical `s`, no small-order `R` or key) → claims. Claims are
//! decoded only after the signature checks out. Time-based checks (`exp`, `nbf`) and
//! audience checks belong to the caller, who knows the clock and the tenant.
//!
//! Ed25519 signatures are deterministic, so signing the same claims with the same
//! key always yields the same token.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, VerifyingKey};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Longest token accepted or produced, in bytes. Access tokens carry a handful of
/// claims; anything near this size is a mistake or an attack on the decoder.
pub const MAX_TOKEN_LEN: usize = 8192;

/// The only algorithm, as named in the JOSE header (RFC 8037 §3.1).
const ALG: &str = "EdDSA";
const TYP: &str = "JWT";
const SIGNATURE_LEN: usize = 64;
/// 64 bytes in unpadded base64.
const SIGNATURE_B64_LEN: usize = 86;

/// Why a token could not be produced or accepted. Never contains token text, claims
/// or key bytes: a message may reach a log or an HTTP response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    #[error("token is longer than {MAX_TOKEN_LEN} bytes")]
    TooLarge,
    #[error("unsupported token algorithm (only EdDSA is accepted)")]
    UnsupportedAlgorithm,
    #[error("token was issued under a different key")]
    WrongKey,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("key material is invalid")]
    InvalidKey,
    #[error("claims could not be encoded as a JSON object")]
    Encode,
}

/// An Ed25519 signing key. Zeroized on drop (by `ed25519-dalek`); its `Debug` shows
/// only the public key id.
pub struct SigningKey(ed25519_dalek::SigningKey);

impl SigningKey {
    /// A fresh key from the OS CSPRNG.
    #[must_use]
    pub fn generate() -> Self {
        Self(ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng))
    }

    /// A key from its 32-byte seed (the form [`SigningKey::to_bytes`] returns).
    ///
    /// # Errors
    /// [`JwtError::InvalidKey`] unless `bytes` is exactly 32 bytes long.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, JwtError> {
        let seed: Zeroizing<[u8; 32]> =
            Zeroizing::new(bytes.try_into().map_err(|_| JwtError::InvalidKey)?);
        Ok(Self(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    /// The 32-byte seed, for storing the key (sealed) elsewhere.
    #[must_use]
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The public key, as published in the JWKS.
    #[must_use]
    pub fn public(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }

    /// The key id tokens signed by this key carry ([`key_id`] of its public key).
    #[must_use]
    pub fn key_id(&self) -> String {
        key_id(&self.public())
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.key_id())
            .finish_non_exhaustive()
    }
}

/// The RFC 7638 JWK thumbprint of an Ed25519 public key: SHA-256 over the required
/// members in lexicographic order without whitespace
/// (`{"crv":"Ed25519","kty":"OKP","x":"…"}`), base64url without padding.
///
/// Derived from the key, so a `kid` cannot name one key and carry another.
#[must_use]
pub fn key_id(public: &[u8; 32]) -> String {
    let canonical = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(public)
    );
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// The public JWK (RFC 8037 §2) for a JWKS document.
#[must_use]
pub fn jwk(public: &[u8; 32]) -> serde_json::Value {
    serde_json::json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "x": URL_SAFE_NO_PAD.encode(public),
        "kid": key_id(public),
        "alg": ALG,
        "use": "sig",
    })
}

/// Signs `claims` into a compact JWS with header
/// `{"alg":"EdDSA","typ":"JWT","kid":"<key id>"}`. Deterministic.
///
/// # Errors
/// [`JwtError::Encode`] if the claims do not serialize to a JSON object;
/// [`JwtError::TooLarge`] if the token would exceed [`MAX_TOKEN_LEN`] (so that every
/// token this returns is one [`verify`] accepts).
pub fn sign<T: serde::Serialize>(key: &SigningKey, claims: &T) -> Result<String, JwtError> {
    let payload = serde_json::to_vec(claims).map_err(|_| JwtError::Encode)?;
    if payload.first() != Some(&b'{') {
        return Err(JwtError::Encode);
    }
    // The kid is base64url, so it needs no JSON escaping.
    let header = format!(
        r#"{{"alg":"{ALG}","typ":"{TYP}","kid":"{}"}}"#,
        key.key_id()
    );
    let mut token = URL_SAFE_NO_PAD.encode(header.as_bytes());
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
    if token.len() + 1 + SIGNATURE_B64_LEN > MAX_TOKEN_LEN {
        return Err(JwtError::TooLarge);
    }
    let signature = key.0.sign(token.as_bytes());
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature.to_bytes(), &mut token);
    Ok(token)
}

/// The key id a token names, after the same strict header checks as [`verify`], so
/// the caller can pick the verification key. Nothing here is authenticated yet.
///
/// # Errors
/// The token's shape or header is not one [`verify`] would accept.
pub fn header_kid(token: &str) -> Result<String, JwtError> {
    let parts = split(token)?;
    Ok(parse_header(parts.header)?.kid)
}

/// Verifies `token` against `public` and returns its claims. Does not check `exp`,
/// `nbf`, `aud` or any other claim: that is the caller's job.
///
/// # Errors
/// - [`JwtError::TooLarge`], [`JwtError::Malformed`]: not a strict compact JWS (three
///   non-empty canonical base64url segments, a JSON header, a 64-byte signature,
///   a JSON object payload that decodes into `T`).
/// - [`JwtError::UnsupportedAlgorithm`]: `alg` is missing or is not `EdDSA`.
/// - [`JwtError::WrongKey`]: the `kid` is not `public`'s thumbprint.
/// - [`JwtError::InvalidKey`]: `public` is not a valid Ed25519 point.
/// - [`JwtError::BadSignature`]: the signature does not verify.
pub fn verify<T: serde::de::DeserializeOwned>(
    token: &str,
    public: &[u8; 32],
) -> Result<T, JwtError> {
    let parts = split(token)?;
    let header = parse_header(parts.header)?;
    if header.kid != key_id(public) {
        return Err(JwtError::WrongKey);
    }
    if parts.signature.len() != SIGNATURE_B64_LEN {
        return Err(JwtError::Malformed("signature is not 64 bytes"));
    }
    let mut signature = [0u8; SIGNATURE_LEN];
    if decode(parts.signature, &mut signature)? != SIGNATURE_LEN {
        return Err(JwtError::Malformed("signature is not 64 bytes"));
    }
    let verifying = VerifyingKey::from_bytes(public).map_err(|_| JwtError::InvalidKey)?;
    verifying
        .verify_strict(parts.signed.as_bytes(), &Signature::from_bytes(&signature))
        .map_err(|_| JwtError::BadSignature)?;
    let payload = decode_vec(parts.payload)?;
    if payload.first() != Some(&b'{') {
        return Err(JwtError::Malformed("claims are not a JSON object"));
    }
    serde_json::from_slice(&payload).map_err(|_| JwtError::Malformed("claims do not decode"))
}

/// The three segments of a compact JWS, and the signed input (`header.payload`).
struct Parts<'a> {
    header: &'a str,
    payload: &'a str,
    signature: &'a str,
    signed: &'a str,
}

fn split(token: &str) -> Result<Parts<'_>, JwtError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwtError::TooLarge);
    }
    let mut segments = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err(JwtError::Malformed("not three dot-separated segments"));
    };
    if header.is_empty() || payload.is_empty() || signature.is_empty() {
        return Err(JwtError::Malformed("empty segment"));
    }
    Ok(Parts {
        header,
        payload,
        signature,
        signed: &token[..header.len() + 1 + payload.len()],
    })
}

/// The JOSE header. `deny_unknown_fields` refuses `crit`, `jku`, `jwk`, `x5u`, `b64`
/// and everything else we would otherwise have to either honour or silently
/// ignore; serde also refuses duplicate members.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    alg: Option<String>,
    typ: Option<String>,
    kid: Option<String>,
}

/// Checked header: `alg` is `EdDSA`, `typ` absent or `JWT`, `kid` present.
struct CheckedHeader {
    kid: String,
}

fn parse_header(segment: &str) -> Result<CheckedHeader, JwtError> {
    const INVALID: JwtError = JwtError::Malformed("header is not valid");
    let bytes = decode_vec(segment)?;
    // A JSON object, from its first byte: serde would also read the struct from
    // an array (`["EdDSA","JWT","<kid>"]`) and skip leading whitespace, both
    // second spellings of one header (found by `fuzz/`'s `jwt` target).
    if bytes.first() != Some(&b'{') {
        return Err(INVALID);
    }
    let header: Header = serde_json::from_slice(&bytes).map_err(|_| INVALID)?;
    if header.alg.as_deref() != Some(ALG) {
        return Err(JwtError::UnsupportedAlgorithm);
    }
    if header.typ.as_deref().is_some_and(|typ| typ != TYP) {
        return Err(JwtError::Malformed("header typ is not JWT"));
    }
    let kid = header.kid.ok_or(JwtError::Malformed("header has no kid"))?;
    Ok(CheckedHeader { kid })
}

/// Strict base64url: the URL-safe alphabet only (no `+`, `/`), no `=` padding, and
/// canonical trailing bits (the engine's default), so each byte string has exactly
/// one accepted encoding and a token cannot be altered without breaking it.
fn decode(segment: &str, out: &mut [u8]) -> Result<usize, JwtError> {
    URL_SAFE_NO_PAD
        .decode_slice(segment, out)
        .map_err(|_| JwtError::Malformed("segment is not canonical base64url"))
}

fn decode_vec(segment: &str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| JwtError::Malformed("segment is not canonical base64url"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;

    #[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
    struct Claims {
        sub: String,
        exp: u64,
    }

    fn claims() -> Claims {
        Claims {
            sub: "user_1".to_owned(),
            exp: 1_900_000_000,
        }
    }

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32]).expect("32 bytes")
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A token with an arbitrary header and payload, validly signed by `key`.
    fn signed_raw(key: &SigningKey, header: &str, payload: &[u8]) -> String {
        let signed = format!("{}.{}", b64(header.as_bytes()), b64(payload));
        let signature = key.0.sign(signed.as_bytes());
        format!("{signed}.{}", b64(&signature.to_bytes()))
    }

    fn header_for(key: &SigningKey) -> String {
        format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{}"}}"#, key.key_id())
    }

    #[test]
    fn round_trip() {
        let key = key();
        let token = sign(&key, &claims()).expect("sign");
        assert_eq!(token.split('.').count(), 3);
        assert_eq!(verify::<Claims>(&token, &key.public()), Ok(claims()));
        assert_eq!(header_kid(&token), Ok(key.key_id()));
        let generated = SigningKey::generate();
        let token = sign(&generated, &claims()).expect("sign");
        assert_eq!(verify::<Claims>(&token, &generated.public()), Ok(claims()));
    }

    #[test]
    fn header_is_exactly_the_documented_one() {
        let key = key();
        let token = sign(&key, &claims()).expect("sign");
        let header = token.split('.').next().expect("header");
        let decoded = URL_SAFE_NO_PAD.decode(header).expect("b64");
        assert_eq!(decoded, header_for(&key).into_bytes());
    }

    #[test]
    fn signing_is_deterministic() {
        let key = key();
        let a = sign(&key, &claims()).expect("sign");
        let b = sign(&key, &claims()).expect("sign");
        assert_eq!(a, b);
        let other = sign(
            &key,
            &Claims {
                exp: 1_900_000_001,
                ..claims()
            },
        )
        .expect("sign");
        assert_ne!(a, other);
    }

    #[test]
    fn key_bytes_round_trip_and_length_is_checked() {
        let key = SigningKey::generate();
        let again = SigningKey::from_bytes(key.to_bytes().as_ref()).expect("from_bytes");
        assert_eq!(again.public(), key.public());
        assert_eq!(
            SigningKey::from_bytes(&[1u8; 31]).err(),
            Some(JwtError::InvalidKey)
        );
        assert_eq!(
            SigningKey::from_bytes(&[1u8; 33]).err(),
            Some(JwtError::InvalidKey)
        );
        assert_eq!(
            SigningKey::from_bytes(&[]).err(),
            Some(JwtError::InvalidKey)
        );
    }

    #[test]
    fn debug_shows_only_the_key_id() {
        let key = key();
        let debug = format!("{key:?}");
        assert!(debug.contains(&key.key_id()), "{debug}");
        assert!(!debug.contains(&b64(key.to_bytes().as_ref())), "{debug}");
        assert!(!debug.contains("7, 7, 7"), "{debug}");
    }

    /// RFC 8037 Appendix A.1–A.3: the example Ed25519 key and its RFC 7638 thumbprint.
    #[test]
    fn key_id_matches_rfc8037_appendix_a3() {
        let d = URL_SAFE_NO_PAD
            .decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
            .expect("b64");
        let key = SigningKey::from_bytes(&d).expect("key");
        assert_eq!(
            b64(&key.public()),
            "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
        );
        assert_eq!(
            key_id(&key.public()),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    /// RFC 7638 §3 computed independently: serialise the required members with
    /// serde_json (sorted map, compact) and hash.
    #[test]
    fn key_id_is_the_rfc7638_thumbprint() {
        let public = SigningKey::generate().public();
        let mut members = std::collections::BTreeMap::new();
        members.insert("x", b64(&public));
        members.insert("kty", "OKP".to_owned());
        members.insert("crv", "Ed25519".to_owned());
        let canonical = serde_json::to_string(&members).expect("json");
        let expected = b64(&Sha256::digest(canonical.as_bytes()));
        assert_eq!(key_id(&public), expected);
        assert_eq!(key_id(&public).len(), 43);
    }

    #[test]
    fn jwk_has_the_public_members() {
        let key = key();
        let jwk = jwk(&key.public());
        assert_eq!(jwk["kty"], "OKP");
        assert_eq!(jwk["crv"], "Ed25519");
        assert_eq!(jwk["alg"], "EdDSA");
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["x"], b64(&key.public()));
        assert_eq!(jwk["kid"], key.key_id());
        assert_eq!(jwk.as_object().map(serde_json::Map::len), Some(6));
        assert!(jwk.get("d").is_none());
    }

    #[test]
    fn alg_none_is_refused() {
        let key = key();
        let payload = b64(&serde_json::to_vec(&claims()).expect("json"));
        let none = b64(br#"{"alg":"none"}"#);
        let none_kid = b64(format!(r#"{{"alg":"none","kid":"{}"}}"#, key.key_id()).as_bytes());
        let real = sign(&key, &claims()).expect("sign");
        let real_sig = real.rsplit('.').next().expect("sig");
        for token in [
            format!("{none}.{payload}."),
            format!("{none}.{payload}"),
            format!("{none}.{payload}.{real_sig}"),
            format!("{none_kid}.{payload}."),
            format!("{none_kid}.{payload}.{real_sig}"),
        ] {
            assert!(verify::<Claims>(&token, &key.public()).is_err(), "{token}");
            assert!(header_kid(&token).is_err(), "{token}");
        }
        assert_eq!(
            verify::<Claims>(&format!("{none_kid}.{payload}.{real_sig}"), &key.public()),
            Err(JwtError::UnsupportedAlgorithm)
        );
    }

    #[test]
    fn other_algorithms_and_header_members_are_refused() {
        use hmac::{Hmac, Mac};
        let key = key();
        let kid = key.key_id();
        let payload = b64(&serde_json::to_vec(&claims()).expect("json"));
        // The classic confusion: HMAC keyed with the public key.
        let header = b64(format!(r#"{{"alg":"HS256","typ":"JWT","kid":"{kid}"}}"#).as_bytes());
        let signed = format!("{header}.{payload}");
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key.public()).expect("hmac");
        mac.update(signed.as_bytes());
        let hs256 = format!("{signed}.{}", b64(&mac.finalize().into_bytes()));
        assert_eq!(
            verify::<Claims>(&hs256, &key.public()),
            Err(JwtError::UnsupportedAlgorithm)
        );
        let p = serde_json::to_vec(&claims()).expect("json");
        for (header, expected) in [
            (
                format!(r#"{{"alg":"ES256","typ":"JWT","kid":"{kid}"}}"#),
                JwtError::UnsupportedAlgorithm,
            ),
            (
                format!(r#"{{"alg":"eddsa","typ":"JWT","kid":"{kid}"}}"#),
                JwtError::UnsupportedAlgorithm,
            ),
            (
                format!(r#"{{"typ":"JWT","kid":"{kid}"}}"#),
                JwtError::UnsupportedAlgorithm,
            ),
            (
                format!(r#"{{"alg":null,"kid":"{kid}"}}"#),
                JwtError::UnsupportedAlgorithm,
            ),
            (
                format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{kid}","crit":["exp"]}}"#),
                JwtError::Malformed("header is not valid"),
            ),
            (
                format!(r#"{{"alg":"EdDSA","kid":"{kid}","jku":"https://evil"}}"#),
                JwtError::Malformed("header is not valid"),
            ),
            (
                format!(r#"{{"alg":"EdDSA","alg":"EdDSA","kid":"{kid}"}}"#),
                JwtError::Malformed("header is not valid"),
            ),
            (
                format!(r#"{{"alg":"EdDSA","typ":"JOSE","kid":"{kid}"}}"#),
                JwtError::Malformed("header typ is not JWT"),
            ),
            (
                r#"{"alg":"EdDSA","typ":"JWT"}"#.to_owned(),
                JwtError::Malformed("header has no kid"),
            ),
            (
                format!(r#"["EdDSA","{kid}"]"#),
                JwtError::Malformed("header is not valid"),
            ),
            (
                format!(r#"["EdDSA","JWT","{kid}"]"#),
                JwtError::Malformed("header is not valid"),
            ),
            (
                format!(r#"["EdDSA",null,"{kid}"]"#),
                JwtError::Malformed("header is not valid"),
            ),
            (
                format!(r#" {{"alg":"EdDSA","kid":"{kid}"}}"#),
                JwtError::Malformed("header is not valid"),
            ),
            (
                format!("\n{{\"alg\":\"EdDSA\",\"kid\":\"{kid}\"}}"),
                JwtError::Malformed("header is not valid"),
            ),
        ] {
            // Validly signed by the right key, so only the header check can refuse it.
            let token = signed_raw(&key, &header, &p);
            assert_eq!(
                verify::<Claims>(&token, &key.public()),
                Err(expected),
                "{header}"
            );
        }
        // typ is optional; without it the header is still acceptable.
        let token = signed_raw(&key, &format!(r#"{{"alg":"EdDSA","kid":"{kid}"}}"#), &p);
        assert_eq!(verify::<Claims>(&token, &key.public()), Ok(claims()));
    }

    #[test]
    fn wrong_key_and_borrowed_kid_are_refused() {
        let key = key();
        let other = SigningKey::generate();
        let token = sign(&key, &claims()).expect("sign");
        assert_eq!(
            verify::<Claims>(&token, &other.public()),
            Err(JwtError::WrongKey)
        );
        // Signed by `other` but claiming `key`'s kid: the kid matches, the signature
        // does not.
        let forged = signed_raw(
            &other,
            &header_for(&key),
            &serde_json::to_vec(&claims()).expect("json"),
        );
        assert_eq!(
            verify::<Claims>(&forged, &key.public()),
            Err(JwtError::BadSignature)
        );
        // An invalid public key is an error, not a panic.
        let mut not_a_point = [0u8; 32];
        not_a_point[0] = 2;
        not_a_point[31] = 0x80;
        let token = signed_raw(
            &key,
            &format!(r#"{{"alg":"EdDSA","kid":"{}"}}"#, key_id(&not_a_point)),
            b"{}",
        );
        assert!(verify::<Claims>(&token, &not_a_point).is_err());
    }

    #[test]
    fn any_bit_flip_in_any_segment_is_refused() {
        let key = key();
        let token = sign(&key, &claims()).expect("sign");
        let bytes = token.as_bytes();
        for i in 0..bytes.len() {
            for bit in 0..7 {
                let mut t = bytes.to_vec();
                t[i] ^= 1 << bit;
                // Only ASCII flips keep it a str; all of them must fail.
                let t = String::from_utf8(t).expect("ascii stays ascii");
                assert!(
                    verify::<Claims>(&t, &key.public()).is_err(),
                    "byte {i} bit {bit}"
                );
            }
        }
        // One flipped bit in each decoded segment, re-encoded canonically.
        let segments: Vec<Vec<u8>> = token
            .split('.')
            .map(|s| URL_SAFE_NO_PAD.decode(s).expect("b64"))
            .collect();
        for s in 0..3 {
            let mut parts = segments.clone();
            parts[s][0] ^= 1;
            let t = parts.iter().map(|p| b64(p)).collect::<Vec<_>>().join(".");
            assert!(verify::<Claims>(&t, &key.public()).is_err(), "segment {s}");
        }
    }

    #[test]
    fn non_canonical_base64_is_refused() {
        let key = key();
        let token = sign(&key, &claims()).expect("sign");
        let mut segments: Vec<String> = token.split('.').map(str::to_owned).collect();
        // Padding on a segment whose length is not a multiple of 4 (86-char signature).
        let mut padded = segments.clone();
        padded[2].push_str("==");
        assert!(verify::<Claims>(&padded.join("."), &key.public()).is_err());
        // Standard-alphabet characters.
        for (c, replacement) in [('-', '+'), ('_', '/')] {
            let mut changed = false;
            let mut std_alpha = segments.clone();
            for s in &mut std_alpha {
                if s.contains(c) {
                    *s = s.replace(c, &replacement.to_string());
                    changed = true;
                }
            }
            if changed {
                assert!(verify::<Claims>(&std_alpha.join("."), &key.public()).is_err());
            }
        }
        for bad in ["+", "/", "=", " ", "\n"] {
            for i in 0..3 {
                let mut t = segments.clone();
                t[i].insert_str(4, bad);
                assert!(
                    verify::<Claims>(&t.join("."), &key.public()).is_err(),
                    "{bad:?} in {i}"
                );
            }
        }
        // Non-canonical trailing bits: 64 bytes encode to 86 chars, whose last char
        // carries 4 unused bits; setting one is a different string, same bytes.
        let last = segments[2].pop().expect("char");
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let idx = alphabet
            .iter()
            .position(|&a| char::from(a) == last)
            .expect("alphabet");
        assert_eq!(idx & 0xf, 0, "canonical: the 4 unused bits are zero");
        segments[2].push(char::from(alphabet[idx | 1]));
        assert!(verify::<Claims>(&segments.join("."), &key.public()).is_err());
    }

    #[test]
    fn wrong_segment_counts_and_sizes_are_refused() {
        let key = key();
        let token = sign(&key, &claims()).expect("sign");
        let (signed, _) = token.rsplit_once('.').expect("three");
        let four = format!("{token}.{}", b64(b"x"));
        let empty_payload = {
            let mut s: Vec<&str> = token.split('.').collect();
            s[1] = "";
            s.join(".")
        };
        for t in [
            "",
            ".",
            "..",
            "...",
            signed,
            four.as_str(),
            empty_payload.as_str(),
            &format!("{token}."),
            &format!(".{token}"),
        ] {
            assert!(verify::<Claims>(t, &key.public()).is_err(), "{t}");
        }
        let oversize = format!("{token}{}", "A".repeat(MAX_TOKEN_LEN));
        assert_eq!(
            verify::<Claims>(&oversize, &key.public()),
            Err(JwtError::TooLarge)
        );
        assert_eq!(header_kid(&oversize), Err(JwtError::TooLarge));
        // Signature of the wrong length.
        let short = format!("{signed}.{}", b64(&[0u8; 63]));
        assert_eq!(
            verify::<Claims>(&short, &key.public()),
            Err(JwtError::Malformed("signature is not 64 bytes"))
        );
        let long = format!("{signed}.{}", b64(&[0u8; 65]));
        assert!(verify::<Claims>(&long, &key.public()).is_err());
    }

    #[test]
    fn sign_refuses_what_verify_would_refuse() {
        let key = key();
        let big = serde_json::json!({ "pad": "x".repeat(MAX_TOKEN_LEN) });
        assert_eq!(sign(&key, &big), Err(JwtError::TooLarge));
        assert_eq!(sign(&key, &[1, 2, 3]), Err(JwtError::Encode));
        assert_eq!(sign(&key, &"claims"), Err(JwtError::Encode));
        // The largest accepted token still verifies.
        let mut n = 0;
        let mut last_ok = None;
        while n < MAX_TOKEN_LEN {
            match sign(&key, &serde_json::json!({ "pad": "x".repeat(n) })) {
                Ok(t) => last_ok = Some(t),
                Err(_) => break,
            }
            n += 97;
        }
        let t = last_ok.expect("some size fits");
        assert!(t.len() <= MAX_TOKEN_LEN);
        assert!(verify::<serde_json::Value>(&t, &key.public()).is_ok());
    }

    #[test]
    fn payloads_are_decoded_only_when_signed_and_must_fit() {
        let key = key();
        let header = header_for(&key);
        for payload in [
            &b"not json"[..],
            b"",
            b"[1,2]",
            b"\"s\"",
            b" {}",
            br#"{"sub":"u"}"#,
            b"{\"sub\":\"u\",\"exp\":1",
        ] {
            let token = signed_raw(&key, &header, payload);
            assert!(
                matches!(
                    verify::<Claims>(&token, &key.public()),
                    Err(JwtError::Malformed(_))
                ),
                "{payload:?}"
            );
        }
        // Garbage payload with a bad signature: the signature is what fails.
        let good = sign(&key, &claims()).expect("sign");
        let sig = good.rsplit('.').next().expect("sig");
        let token = format!("{}.{}.{sig}", b64(header.as_bytes()), b64(b"not json"));
        assert_eq!(
            verify::<Claims>(&token, &key.public()),
            Err(JwtError::BadSignature)
        );
    }

    #[test]
    fn errors_do_not_echo_the_token() {
        let key = key();
        let token = sign(&key, &claims()).expect("sign");
        let other = SigningKey::generate();
        let (signed, _) = token.rsplit_once('.').expect("three");
        let tampered = format!("{signed}.{}", b64(&[0u8; 64]));
        for result in [
            verify::<Claims>(&token, &other.public()),
            verify::<Claims>(&tampered, &key.public()),
            verify::<Claims>(&token[1..], &key.public()),
        ] {
            let message = result.expect_err("must fail").to_string();
            for segment in token.split('.') {
                assert!(!message.contains(segment), "{message}");
            }
            assert!(!message.contains("user_1"));
        }
    }
}
