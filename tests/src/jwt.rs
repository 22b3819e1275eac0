//! Token helpers for the tests: JWT parts and Ed25519 verification against a
//! published JWKS, signing forgeries, and the refresh token format
//! (`rt1.<session>.<generation>.<secret>`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde_json::Value;

use crate::api::Jwks;

/// base64url without padding.
#[must_use]
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// (header, claims) of a JWT, unverified.
///
/// # Panics
/// If `token` is not a compact JWS of JSON parts.
#[must_use]
pub fn jwt_parts(token: &str) -> (Value, Value) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a compact JWS");
    let decode = |p: &str| -> Value {
        let bytes = URL_SAFE_NO_PAD.decode(p).expect("base64url");
        serde_json::from_slice(&bytes).expect("json")
    };
    (decode(parts[0]), decode(parts[1]))
}

/// The `kid` a token's header names.
///
/// # Panics
/// If it names none.
#[must_use]
pub fn kid(token: &str) -> String {
    jwt_parts(token).0["kid"]
        .as_str()
        .expect("a kid in the header")
        .to_owned()
}

/// Verifies `token`'s Ed25519 signature with the JWKS key its `kid` names;
/// returns (header, claims).
///
/// # Panics
/// If the token does not verify.
#[track_caller]
#[must_use]
pub fn verify_jwt(token: &str, jwks: &Jwks) -> (Value, Value) {
    let (header, claims) = jwt_parts(token);
    assert_eq!(header["alg"], "EdDSA", "{header}");
    let kid = header["kid"].as_str().expect("kid");
    let jwk = jwks
        .keys
        .iter()
        .find(|k| k.kid == kid)
        .unwrap_or_else(|| panic!("kid {kid} is not in the JWKS {jwks:?}"));
    let x: [u8; 32] = URL_SAFE_NO_PAD
        .decode(&jwk.x)
        .expect("x is base64url")
        .try_into()
        .expect("32-byte key");
    let key = VerifyingKey::from_bytes(&x).expect("a valid Ed25519 key");
    let (signed, sig) = token.rsplit_once('.').expect("segments");
    let sig = URL_SAFE_NO_PAD.decode(sig).expect("signature base64url");
    let sig = Signature::from_slice(&sig).expect("64-byte signature");
    key.verify_strict(signed.as_bytes(), &sig)
        .expect("the access token's signature verifies against the JWKS");
    (header, claims)
}

/// A compact JWS of `header` and `claims` signed with `key`.
#[must_use]
pub fn sign_jwt(key: &SigningKey, header: &Value, claims: &Value) -> String {
    let signed = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    format!("{signed}.{}", b64(&key.sign(signed.as_bytes()).to_bytes()))
}

/// The generation of a refresh token.
///
/// # Panics
/// If `rt` is not a refresh token.
#[must_use]
pub fn generation(rt: &str) -> u64 {
    rt.split('.')
        .nth(2)
        .and_then(|g| g.parse().ok())
        .unwrap_or_else(|| panic!("not a refresh token: {rt}"))
}

/// A refresh token of `session_id` at `generation` with a secret we made up.
#[must_use]
pub fn forged_refresh(session_id: &str, generation: u64, fill: u8) -> String {
    format!("rt1.{session_id}.{generation}.{}", b64(&[fill; 32]))
}
