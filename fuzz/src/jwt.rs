//! Fuzz target `jwt`: access-token verification (`cairn_crypto::jwt`), from three
//! sides. The first input byte picks one:
//!
//! - **0, a presented token** (what an attacker without the key sends):
//!   `header_kid` and `verify` fail alike on a bad shape or header; a token
//!   naming another key is `WrongKey`; and a token that verifies is exactly what
//!   `sign` makes of its claims (no second spelling of a signed token exists).
//! - **1, a header, a NUL and claims, signed with the key** (what only the issuer could
//!   send, to reach the code behind the signature check): `verify` accepts
//!   exactly a JSON object header with only `alg` = `EdDSA`, an optional `typ` =
//!   `JWT` and `kid` = the key's id, no member twice, over claims that are a JSON
//!   object, within the size cap; what it accepts re-signs and verifies to the same
//!   claims.
//! - **2, claims to sign**: `sign` refuses what is not an object or is too large
//!   and nothing else; a signed token carries the documented header, verifies to
//!   its claims, and fails to verify with any one character changed.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use cairn_crypto::jwt::{self, JwtError, SigningKey, MAX_TOKEN_LEN};
use ed25519_dalek::Signer as _;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use crate::input::Reader;

const SEED_A: [u8; 32] = [7; 32];
const SEED_B: [u8; 32] = [9; 32];

/// The issuing key, and another tenant's.
fn keys() -> &'static (SigningKey, SigningKey) {
    static KEYS: OnceLock<(SigningKey, SigningKey)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let a = SigningKey::from_bytes(&SEED_A).expect("32 bytes");
        let b = SigningKey::from_bytes(&SEED_B).expect("32 bytes");
        (a, b)
    })
}

/// `header.payload.signature` over the raw bytes given, signed with key A: the
/// same Ed25519 key as `SigningKey::from_bytes(SEED_A)`.
fn sign_raw(header: &[u8], payload: &[u8]) -> String {
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = ed25519_dalek::SigningKey::from_bytes(&SEED_A).sign(signed.as_bytes());
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

/// Checks every property for one input; panics on the first that fails.
///
/// # Panics
/// When a property fails (that is the finding).
pub fn run(data: &[u8]) {
    let mut input = Reader::new(data);
    match input.byte() % 3 {
        0 => {
            if let Ok(token) = std::str::from_utf8(input.rest()) {
                presented(token);
            }
        }
        1 => {
            // JSON never holds a raw NUL, so one separates the header from the
            // claims without limiting either.
            let rest = input.rest();
            let (header, claims) = match rest.iter().position(|&b| b == 0) {
                Some(at) => (&rest[..at], &rest[at + 1..]),
                None => (rest, &[][..]),
            };
            signed(header, claims);
        }
        _ => {
            if let Ok(claims) = serde_json::from_slice::<Value>(input.rest()) {
                sign_and_tamper(&claims, data);
            }
        }
    }
}

fn presented(token: &str) {
    let (a, b) = keys();
    let verified = jwt::verify::<Value>(token, &a.public());
    match jwt::header_kid(token) {
        Err(e) => {
            assert_eq!(verified, Err(e.clone()), "verify and header_kid disagree");
            assert_eq!(jwt::verify::<Value>(token, &b.public()), Err(e));
        }
        Ok(kid) => {
            if kid != a.key_id() {
                assert_eq!(verified, Err(JwtError::WrongKey));
            }
            if kid != b.key_id() {
                assert_eq!(
                    jwt::verify::<Value>(token, &b.public()),
                    Err(JwtError::WrongKey)
                );
            }
        }
    }
    if let Ok(claims) = verified {
        // Only the seeds carry valid signatures, and the seeds come from `sign`.
        let again = jwt::sign(a, &claims).expect("verified claims sign");
        assert_eq!(again, token, "a second spelling of a signed token verified");
    }
}

fn signed(header: &[u8], payload: &[u8]) {
    let (a, b) = keys();
    let token = sign_raw(header, payload);
    let verified = jwt::verify::<Value>(&token, &a.public());
    let want = token.len() <= MAX_TOKEN_LEN
        && header_accepted(header, &a.key_id())
        && payload.first() == Some(&b'{')
        && serde_json::from_slice::<Value>(payload).is_ok();
    match &verified {
        Ok(_) => assert!(want, "verify accepted a token the rules refuse"),
        Err(e) => assert!(!want, "verify refused a token the rules accept: {e}"),
    }
    if let Ok(claims) = verified {
        assert_eq!(jwt::header_kid(&token), Ok(a.key_id()));
        assert_eq!(
            jwt::verify::<Value>(&token, &b.public()),
            Err(JwtError::WrongKey)
        );
        // `sign` may refuse claims that only fit the cap in their sender's spelling.
        match jwt::sign(a, &claims) {
            Ok(again) => {
                let back =
                    jwt::verify::<Value>(&again, &a.public()).expect("re-signed claims verify");
                // JSON floats need not survive a print and parse; Cairn's claims have none.
                if !has_float(&claims) {
                    assert_eq!(back, claims);
                }
            }
            Err(e) => assert_eq!(e, JwtError::TooLarge),
        }
    }
}

fn sign_and_tamper(claims: &Value, data: &[u8]) {
    let (a, _) = keys();
    let payload = serde_json::to_vec(claims).expect("a Value serializes");
    let header = format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{}"}}"#, a.key_id());
    let len = b64_len(header.len()) + 1 + b64_len(payload.len()) + 1 + 86;
    let token = match jwt::sign(a, claims) {
        Ok(token) => token,
        Err(e) => {
            let want = if claims.is_object() {
                JwtError::TooLarge
            } else {
                JwtError::Encode
            };
            assert_eq!(e, want);
            assert!(
                !claims.is_object() || len > MAX_TOKEN_LEN,
                "refused a token that fits"
            );
            return;
        }
    };
    assert!(claims.is_object(), "signed claims that are not an object");
    assert_eq!(token.len(), len);
    assert!(token.len() <= MAX_TOKEN_LEN);
    let first = token.split('.').next().expect("a header segment");
    assert_eq!(
        URL_SAFE_NO_PAD.decode(first).as_deref(),
        Ok(header.as_bytes())
    );
    assert_eq!(
        jwt::sign(a, claims).as_ref(),
        Ok(&token),
        "signing is deterministic"
    );
    assert_eq!(jwt::header_kid(&token), Ok(a.key_id()));
    let verified = jwt::verify::<Value>(&token, &a.public()).expect("a signed token verifies");
    // JSON floats need not survive a print and parse; the claims Cairn signs have none.
    if !has_float(claims) {
        assert_eq!(&verified, claims);
    }

    // Change one character (where and to what comes from the input) to another
    // of the token's alphabet: it no longer verifies.
    let at = data.iter().fold(0usize, |acc, &b| {
        acc.wrapping_mul(31).wrapping_add(usize::from(b))
    });
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
    let mut tampered = token.clone().into_bytes();
    let i = at % tampered.len();
    let mut c = alphabet[at / tampered.len() % alphabet.len()];
    if c == tampered[i] {
        c = if c == b'A' { b'B' } else { b'A' };
    }
    tampered[i] = c;
    let tampered = String::from_utf8(tampered).expect("ASCII");
    assert!(
        jwt::verify::<Value>(&tampered, &a.public()).is_err(),
        "a token verified with character {i} changed"
    );
}

/// Unpadded base64 length of `n` bytes.
fn b64_len(n: usize) -> usize {
    (n * 4).div_ceil(3)
}

fn has_float(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_f64(),
        Value::Array(items) => items.iter().any(has_float),
        Value::Object(members) => members.values().any(has_float),
        _ => false,
    }
}

/// A JSON object's members in order, duplicates kept (a `Value` keeps only the
/// last of each name, so it cannot see them).
struct Members(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(V)
    }
}

/// The header rules: a JSON object (nothing before its `{`) whose members are
/// `alg` = "EdDSA", `kid` = `kid` and optionally `typ` = "JWT", each at most once;
/// `null` counts as absent.
fn header_accepted(header: &[u8], kid: &str) -> bool {
    if header.first() != Some(&b'{') {
        return false;
    }
    let Ok(Members(members)) = serde_json::from_slice::<Members>(header) else {
        return false;
    };
    let mut seen = BTreeSet::new();
    let (mut alg, mut typ, mut k) = (None, None, None);
    for (name, value) in members {
        if !seen.insert(name.clone()) {
            return false;
        }
        let value = match value {
            Value::Null => None,
            Value::String(s) => Some(s),
            _ => return false,
        };
        match name.as_str() {
            "alg" => alg = value,
            "typ" => typ = value,
            "kid" => k = value,
            _ => return false,
        }
    }
    alg.as_deref() == Some("EdDSA")
        && typ.as_deref().is_none_or(|t| t == "JWT")
        && k.as_deref() == Some(kid)
}

/// A mode-1 input: `header`, a NUL, `claims`.
fn signed_seed(header: &[u8], claims: &[u8]) -> Vec<u8> {
    [&[1u8][..], header, &[0], claims].concat()
}

/// The words of JOSE headers and claims, for libFuzzer's dictionary: it cannot
/// learn them from string comparisons without a sanitizer's hooks.
#[must_use]
pub fn dict() -> Vec<Vec<u8>> {
    let kid = keys().0.key_id();
    let words = [
        "\"alg\"",
        "\"typ\"",
        "\"kid\"",
        "\"EdDSA\"",
        "\"JWT\"",
        "\"none\"",
        "\"crit\"",
        "\"jku\"",
        "\"jwk\"",
        "null",
        "true",
        "{",
        "}",
        "[",
        "]",
        ":",
        ",",
        " ",
        "\t",
        "\n",
        "\r",
        "\\u00",
        "1e400",
        &format!("\"{kid}\""),
    ];
    words.iter().map(|w| w.as_bytes().to_vec()).collect()
}

/// Signed tokens, odd but signed headers and claims, and claims to sign.
///
/// # Panics
/// If the code under test refuses to sign the seed claims.
#[must_use]
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    use crate::input::Writer;
    let (a, b) = keys();
    let claims = serde_json::json!({
        "sub": "usr_1c2d", "sid": "ses_3e4f", "iat": 1_700_000_000, "exp": 1_700_000_900,
        "aud": "ten_0a1b", "amr": ["pwd"],
    });
    let kid = a.key_id();
    let header = format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{kid}"}}"#);
    let mut seeds = Vec::new();
    let token = jwt::sign(a, &claims).expect("sign");
    seeds.push((
        "presented.valid".to_owned(),
        Writer::default().byte(0).rest(token.as_bytes()),
    ));
    let other = jwt::sign(b, &claims).expect("sign");
    seeds.push((
        "presented.other_key".to_owned(),
        Writer::default().byte(0).rest(other.as_bytes()),
    ));
    let (signed_part, _) = token.rsplit_once('.').expect("three segments");
    let zeroed = format!("{signed_part}.{}", URL_SAFE_NO_PAD.encode([0u8; 64]));
    seeds.push((
        "presented.bad_signature".to_owned(),
        Writer::default().byte(0).rest(zeroed.as_bytes()),
    ));

    let headers = [
        ("documented", header.clone()),
        ("no_typ", format!(r#"{{"kid":"{kid}","alg":"EdDSA"}}"#)),
        (
            "null_typ",
            format!(r#"{{"alg":"EdDSA","typ":null,"kid":"{kid}"}}"#),
        ),
        (
            "escaped",
            format!(r#"{{"\u0061lg":"Ed\u0044SA","kid":"{kid}"}}"#),
        ),
        (
            "duplicate",
            format!(r#"{{"alg":"EdDSA","alg":"EdDSA","kid":"{kid}"}}"#),
        ),
        (
            "crit",
            format!(r#"{{"alg":"EdDSA","kid":"{kid}","crit":["b64"]}}"#),
        ),
        ("alg_none", format!(r#"{{"alg":"none","kid":"{kid}"}}"#)),
        ("array", format!(r#"["EdDSA","JWT","{kid}"]"#)),
        ("space", format!(r#" {{"alg":"EdDSA","kid":"{kid}"}}"#)),
    ];
    let payloads: [(&str, &[u8]); 4] = [
        ("object", br#"{"sub":"usr_1c2d","exp":1700000900}"#),
        ("duplicate", br#"{"sub":"a","sub":"b"}"#),
        ("array", b"[1,2]"),
        ("deep", &[b'['; 200]),
    ];
    for (h, header) in &headers {
        let (p, payload) = payloads[0];
        seeds.push((
            format!("signed.{h}.{p}"),
            signed_seed(header.as_bytes(), payload),
        ));
    }
    for (p, payload) in &payloads[1..] {
        seeds.push((
            format!("signed.documented.{p}"),
            signed_seed(header.as_bytes(), payload),
        ));
    }

    let to_sign: [(&str, &[u8]); 4] = [
        (
            "claims",
            br#"{"sub":"usr_1c2d","exp":1700000900,"amr":["pwd"]}"#,
        ),
        ("empty", b"{}"),
        ("string", br#""claims""#),
        (
            "unicode",
            "{\"name\":\"J\u{f6}rg \\ud83d\\ude00\"}".as_bytes(),
        ),
    ];
    for (name, claims) in to_sign {
        seeds.push((
            format!("sign.{name}"),
            Writer::default().byte(2).rest(claims),
        ));
    }
    seeds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seeds_reach_each_outcome() {
        let (a, _) = keys();
        let seeds = seeds();
        let find = |name: &str| {
            let (_, data) = seeds.iter().find(|(n, _)| n == name).expect(name);
            data[1..].to_vec()
        };
        let token = String::from_utf8(find("presented.valid")).expect("utf-8");
        assert!(jwt::verify::<Value>(&token, &a.public()).is_ok());
        let token = String::from_utf8(find("presented.bad_signature")).expect("utf-8");
        assert_eq!(
            jwt::verify::<Value>(&token, &a.public()),
            Err(JwtError::BadSignature)
        );

        let signed = |name: &str| {
            let data = find(name);
            let at = data.iter().position(|&b| b == 0).expect("a NUL");
            sign_raw(&data[..at], &data[at + 1..])
        };
        for ok in [
            "documented.object",
            "no_typ.object",
            "null_typ.object",
            "escaped.object",
            "documented.duplicate",
        ] {
            let token = signed(&format!("signed.{ok}"));
            assert!(jwt::verify::<Value>(&token, &a.public()).is_ok(), "{ok}");
        }
        for bad in [
            "duplicate.object",
            "crit.object",
            "alg_none.object",
            "documented.array",
            "documented.deep",
        ] {
            let token = signed(&format!("signed.{bad}"));
            assert!(jwt::verify::<Value>(&token, &a.public()).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_header_oracle_follows_the_rules() {
        let kid = "k";
        assert!(header_accepted(br#"{"alg":"EdDSA","kid":"k"}"#, kid));
        assert!(header_accepted(
            br#"{"alg":"EdDSA","typ":"JWT","kid":"k"}"#,
            kid
        ));
        assert!(!header_accepted(
            br#"{"alg":"EdDSA","typ":"jwt","kid":"k"}"#,
            kid
        ));
        assert!(!header_accepted(br#"{"alg":"EdDSA","kid":"j"}"#, kid));
        assert!(!header_accepted(br#"{"alg":"EdDSA","kid":null}"#, kid));
        assert!(!header_accepted(
            br#"{"alg":"EdDSA","kid":"k","kid":"k"}"#,
            kid
        ));
        assert!(!header_accepted(
            br#"{"alg":"EdDSA","kid":"k","x5u":"h"}"#,
            kid
        ));
        assert!(!header_accepted(br#"["EdDSA",null,"k"]"#, kid));
        assert!(!header_accepted(br#" {"alg":"EdDSA","kid":"k"}"#, kid));
    }
}
