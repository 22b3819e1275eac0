//! Webhook signatures per the Standard Webhooks specification: a `whsec_`
//! secret (base64 of random bytes), and `webhook-signature` values of the form
//! `v1,<base64 HMAC-SHA256 over "<msg id>.<timestamp>.<body>">`, several of them
//! space-separated while a rotated secret still signs alongside the new one.
//!
//! Verification (what a receiver does, and what Cairn's tests do) accepts a
//! value if any `v1` signature in it matches any of the given secrets, compared
//! in constant time; other versions are skipped.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

/// The prefix of an encoded secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// Random bytes in a secret Cairn generates (the spec allows 24 to 64).
pub const SECRET_LEN: usize = 32;

const MIN_SECRET_LEN: usize = 24;
const MAX_SECRET_LEN: usize = 64;

/// Why a secret could not be read. Never contains the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookSecretError {
    #[error("a webhook secret is whsec_ and the base64 of 24 to 64 bytes")]
    Malformed,
}

/// A webhook signing secret, zeroized on drop.
#[derive(Clone)]
pub struct WebhookSecret(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

impl WebhookSecret {
    /// A fresh random secret of [`SECRET_LEN`] bytes.
    #[must_use]
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new(vec![0u8; SECRET_LEN]);
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// The secret's raw bytes (to seal them for storage).
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// A secret from its raw bytes (as unsealed from storage).
    ///
    /// # Errors
    /// Fewer than 24 or more than 64 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WebhookSecretError> {
        if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&bytes.len()) {
            return Err(WebhookSecretError::Malformed);
        }
        Ok(Self(Zeroizing::new(bytes.to_vec())))
    }

    /// A secret from its encoded form, `whsec_<base64>` (the prefix may be
    /// left out, as the spec's libraries allow).
    ///
    /// # Errors
    /// Not base64, or the wrong length.
    pub fn parse(encoded: &str) -> Result<Self, WebhookSecretError> {
        let b64 = encoded.strip_prefix(SECRET_PREFIX).unwrap_or(encoded);
        let bytes = Zeroizing::new(
            STANDARD
                .decode(b64)
                .map_err(|_| WebhookSecretError::Malformed)?,
        );
        Self::from_bytes(&bytes)
    }

    /// The encoded form, `whsec_<base64>`: shown to the operator once.
    #[must_use]
    pub fn encode(&self) -> Zeroizing<String> {
        Zeroizing::new(format!("{SECRET_PREFIX}{}", STANDARD.encode(&*self.0)))
    }

    fn mac(&self, msg_id: &str, timestamp: u64, body: &[u8]) -> Hmac<Sha256> {
        // HMAC takes a key of any length.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC-SHA256 accepts every key length"));
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// This secret's signature of a message: `v1,<base64>`.
    #[must_use]
    pub fn sign(&self, msg_id: &str, timestamp: u64, body: &[u8]) -> String {
        let tag = self.mac(msg_id, timestamp, body).finalize().into_bytes();
        format!("v1,{}", STANDARD.encode(tag))
    }
}

/// The `webhook-signature` value for a message signed by every secret in
/// `secrets` (the current one, and a rotated one still within its overlap).
#[must_use]
pub fn signature_header(
    secrets: &[WebhookSecret],
    msg_id: &str,
    timestamp: u64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|s| s.sign(msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether the `webhook-signature` value `header` holds a `v1` signature of
/// the message by any of `secrets` (each compared in constant time).
#[must_use]
pub fn verify(
    secrets: &[WebhookSecret],
    header: &str,
    msg_id: &str,
    timestamp: u64,
    body: &[u8],
) -> bool {
    let presented: Vec<Vec<u8>> = header
        .split(' ')
        .filter_map(|sig| sig.strip_prefix("v1,"))
        .filter_map(|b64| STANDARD.decode(b64).ok())
        .collect();
    secrets.iter().any(|secret| {
        presented.iter().any(|tag| {
            secret
                .mac(msg_id, timestamp, body)
                .verify_slice(tag)
                .is_ok()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // The specification's own example (its libraries' signing test).
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TS: u64 = 1_614_265_330;
    const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SPEC_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn signs_the_specifications_example() {
        let secret = WebhookSecret::parse(SPEC_SECRET).expect("secret");
        assert_eq!(secret.sign(SPEC_ID, SPEC_TS, SPEC_BODY), SPEC_SIGNATURE);
        assert_eq!(
            secret.encode().as_str(),
            SPEC_SECRET,
            "encodes as it was given"
        );
        let bare = WebhookSecret::parse(&SPEC_SECRET[SECRET_PREFIX.len()..]).expect("bare");
        assert_eq!(bare.sign(SPEC_ID, SPEC_TS, SPEC_BODY), SPEC_SIGNATURE);
    }

    #[test]
    fn verifies_any_v1_signature_by_any_secret_and_nothing_else() {
        let spec = WebhookSecret::parse(SPEC_SECRET).expect("secret");
        let other = WebhookSecret::generate();
        let ok = |secrets: &[WebhookSecret], header: &str| {
            verify(secrets, header, SPEC_ID, SPEC_TS, SPEC_BODY)
        };
        assert!(ok(std::slice::from_ref(&spec), SPEC_SIGNATURE));
        let wrong = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=";
        let several = format!("{wrong} v2,{} {SPEC_SIGNATURE}", &SPEC_SIGNATURE[3..]);
        assert!(
            ok(std::slice::from_ref(&spec), &several),
            "one good signature among several"
        );
        assert!(ok(&[other.clone(), spec.clone()], SPEC_SIGNATURE));
        assert!(
            !ok(std::slice::from_ref(&other), SPEC_SIGNATURE),
            "another secret"
        );
        assert!(!ok(std::slice::from_ref(&spec), wrong));
        assert!(!ok(
            std::slice::from_ref(&spec),
            &format!("v2,{}", &SPEC_SIGNATURE[3..])
        ));
        assert!(!ok(std::slice::from_ref(&spec), ""));
        assert!(!ok(std::slice::from_ref(&spec), "v1,not base64!"));
        assert!(!ok(&[], SPEC_SIGNATURE));
        for (id, ts, body) in [
            ("msg_other", SPEC_TS, SPEC_BODY),
            (SPEC_ID, SPEC_TS + 1, SPEC_BODY),
            (SPEC_ID, SPEC_TS, &br#"{"test": 2432232315}"#[..]),
        ] {
            assert!(!verify(
                std::slice::from_ref(&spec),
                SPEC_SIGNATURE,
                id,
                ts,
                body
            ));
        }
    }

    #[test]
    fn a_rotation_signs_with_both_secrets() {
        let (old, new) = (WebhookSecret::generate(), WebhookSecret::generate());
        let header = signature_header(&[new.clone(), old.clone()], "msg_1", 7, b"{}");
        assert_eq!(header.split(' ').count(), 2);
        assert!(verify(&[old], &header, "msg_1", 7, b"{}"));
        assert!(verify(&[new], &header, "msg_1", 7, b"{}"));
    }

    #[test]
    fn secrets_are_random_bounded_and_never_printed() {
        let (a, b) = (WebhookSecret::generate(), WebhookSecret::generate());
        assert_ne!(a.as_bytes(), b.as_bytes());
        assert_eq!(a.as_bytes().len(), SECRET_LEN);
        let round = WebhookSecret::parse(&a.encode()).expect("round trip");
        assert_eq!(round.as_bytes(), a.as_bytes());
        assert_eq!(format!("{a:?}"), "WebhookSecret(..)");
        for bad in [
            "whsec_",
            "whsec_AAAA",
            "whsec_!!!!",
            &format!("whsec_{}", "A".repeat(100)),
        ] {
            assert_eq!(
                WebhookSecret::parse(bad).map(|_| ()),
                Err(WebhookSecretError::Malformed),
                "{bad}"
            );
        }
    }
}
