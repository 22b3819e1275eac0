//! Email identity: which addresses are one account. The key of an address is
//! the address trimmed, in Unicode NFC, lowercased as a whole (Unicode, not only
//! ASCII), with the domain in its UTS-46 A-label form; the address is kept as
//! typed (trimmed) for display. The email index in `meta` holds a blind index
//! of the key only ([`email_index`]), never the address.
//!
//! Lowercasing the part before '@' goes beyond RFC 5321, which lets a mail
//! server tell `Ann` from `ann`. No mail system in use does, and an identity
//! store that did would give one person two accounts (and two rate limit
//! budgets). Binaries before wire version 4 lowercased the domain only
//! ([`Email::earlier_key`]): the email index is re-indexed under the new key by
//! a background job (`crate::workers::email_reindex`), and until it is done a
//! lookup tries both keys.

use icu_normalizer::ComposingNormalizerBorrowed;
use zeroize::Zeroizing;

use super::keyring::TenantKeys;
use crate::error::ServiceError;

/// RFC 5321's limit on a path, which an address must fit in.
const MAX_EMAIL_BYTES: usize = 254;
/// RFC 5321's limit on the part before '@'.
const MAX_LOCAL_BYTES: usize = 64;

/// A valid address: as typed, and the key it is known by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    display: String,
    key: String,
}

impl Email {
    /// Checks an address and derives its key.
    ///
    /// # Errors
    /// [`ServiceError::InvalidRequest`] naming the rule broken (never echoing
    /// the address).
    pub fn parse(raw: &str) -> Result<Self, ServiceError> {
        let bad = |why: &str| ServiceError::InvalidRequest(format!("invalid email: {why}"));
        let display = raw.trim();
        if display.is_empty() {
            return Err(bad("empty"));
        }
        if display.len() > MAX_EMAIL_BYTES {
            return Err(bad("longer than 254 bytes"));
        }
        if display.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("contains whitespace or control characters"));
        }
        let folded = ComposingNormalizerBorrowed::new_nfc()
            .normalize(display)
            .to_lowercase();
        let Some((local, domain)) = folded.rsplit_once('@') else {
            return Err(bad("missing '@'"));
        };
        if local.is_empty() || local.len() > MAX_LOCAL_BYTES || local.contains('@') {
            return Err(bad(
                "the part before '@' must be 1-64 characters without '@'",
            ));
        }
        let not_a_host = || bad("the domain is not a host name");
        if domain.is_empty() || domain.starts_with('[') {
            return Err(not_a_host());
        }
        let domain = idna::domain_to_ascii(domain).map_err(|_| not_a_host())?;
        let labels_ok = domain
            .split('.')
            .all(|l| !l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-'));
        if !labels_ok {
            return Err(not_a_host());
        }
        let key = format!("{local}@{domain}");
        if key.len() > MAX_EMAIL_BYTES {
            return Err(bad("longer than 254 bytes"));
        }
        Ok(Self {
            display: display.to_owned(),
            key,
        })
    }

    /// The address as typed (trimmed): what the user record keeps and shows.
    #[must_use]
    pub fn display(&self) -> &str {
        &self.display
    }

    /// The identity key: two addresses with one key are one account.
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The key binaries before wire version 4 indexed this address by: trimmed,
    /// the domain lowercased, the part before '@' as typed.
    #[must_use]
    pub fn earlier_key(&self) -> String {
        match self.display.rsplit_once('@') {
            Some((local, domain)) => format!("{local}@{}", domain.to_lowercase()),
            None => self.display.clone(),
        }
    }

    /// Whether a stored address is this one: the same key.
    #[must_use]
    pub fn is(&self, stored: &str) -> bool {
        Self::parse(stored).is_ok_and(|s| s.key == self.key)
    }
}

/// The blind index of an email key (domain-separated from KV key names).
#[must_use]
pub fn email_index(keys: &TenantKeys, key: &str) -> Vec<u8> {
    let mut name = Zeroizing::new(Vec::with_capacity(6 + key.len()));
    name.extend_from_slice(b"email\0");
    name.extend_from_slice(key.as_bytes());
    keys.blind_index(&name)
}

/// Every blind index a stored address may be held under: its key's, and its
/// earlier key's (an address stored before wire version 4 and not yet
/// re-indexed). What releasing the address releases.
#[must_use]
pub fn stored_indexes(keys: &TenantKeys, stored: &str) -> Vec<Vec<u8>> {
    let Ok(email) = Email::parse(stored) else {
        return vec![email_index(keys, stored)];
    };
    let earlier = email.earlier_key();
    let mut indexes = vec![email_index(keys, email.key())];
    if earlier != email.key() {
        indexes.push(email_index(keys, &earlier));
    }
    indexes
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(raw: &str) -> String {
        Email::parse(raw).expect("valid").key
    }

    #[test]
    fn one_account_whatever_the_case_form_or_script() {
        let e = Email::parse("  Ann@Example.COM ").expect("valid");
        assert_eq!(e.display(), "Ann@Example.COM");
        assert_eq!(e.key(), "ann@example.com");
        assert_eq!(e.earlier_key(), "Ann@example.com");
        assert!(e.is("ann@example.com") && e.is("ANN@EXAMPLE.com"));
        assert!(!e.is("anne@example.com") && !e.is("not an address"));
        // Unicode lowercase of the whole address, not only ASCII.
        assert_eq!(key("ÉLODIE@example.com"), "élodie@example.com");
        // NFC: a decomposed é is the composed one.
        assert_eq!(key("e\u{301}lodie@example.com"), "\u{e9}lodie@example.com");
        // UTS-46: an internationalised domain in its A-label form, however typed.
        assert_eq!(key("ann@BÜCHER.example"), "ann@xn--bcher-kva.example");
        assert_eq!(
            key("ann@xn--bcher-kva.example"),
            "ann@xn--bcher-kva.example"
        );
        assert_eq!(
            key("ann@bu\u{308}cher.example"),
            "ann@xn--bcher-kva.example"
        );
    }

    #[test]
    fn what_cannot_be_an_address_is_refused() {
        for bad in [
            "",
            "   ",
            "no-at",
            "@example.com",
            "a@",
            "a@b@c",
            "a b@example.com",
            "a@exa mple.com",
            "a@.example.com",
            "a@example..com",
            "a@-x.com",
            "a\u{0}@x.com",
            "a@[127.0.0.1]",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(65));
        assert!(Email::parse(&long).is_err());
        let label = format!("a@{}.com", "b".repeat(64));
        assert!(Email::parse(&label).is_err());
    }

    proptest! {
        #[test]
        fn the_key_is_stable_and_case_blind(raw in "[A-Za-zÀ-ÿ0-9._+-]{1,20}@[A-Za-z0-9]{1,10}\\.[a-zA-Z]{2,4}") {
            if let Ok(e) = Email::parse(&raw) {
                // The key of a key is itself; any ASCII case of the address, and
                // its Unicode lowercase, are the same account. (Not its Unicode
                // uppercase: "ß" uppercases to "SS", which lowercases to "ss".)
                prop_assert_eq!(key(e.key()), e.key());
                prop_assert!(e.is(&raw.to_ascii_uppercase()));
                prop_assert!(e.is(&raw.to_lowercase()));
                prop_assert_eq!(Email::parse(e.display()).expect("valid").key, e.key.clone());
            }
        }
    }
}
