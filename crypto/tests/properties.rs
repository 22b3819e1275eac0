//! Property tests: sealing round-trips for any key, binding and payload; any change
//! of binding fails; the decoders never panic on arbitrary bytes. JWTs: `verify`
//! never panics, and of all mutations of a valid token only the untouched one
//! verifies. Refresh tokens and API keys: parsing never panics, and every canonical
//! encoding round-trips.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use cairn_crypto::envelope::{sealed_key_version, Binding, CryptoError, DataKey, Purpose};
use cairn_crypto::jwt::{self, SigningKey};
use cairn_crypto::keywrap::WrapBinding;
use cairn_crypto::token::{ApiKey, RefreshToken};
use cairn_crypto::MasterKey;
use proptest::prelude::*;

fn data_key(bytes: [u8; 32], version: u32) -> DataKey {
    let mut b = bytes;
    DataKey::from_bytes(&mut b, version)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn seal_open_round_trips(
        key in any::<[u8; 32]>(),
        version in any::<u32>(),
        tenant in ".{0,40}",
        group in any::<u64>(),
        key_path in proptest::collection::vec(any::<u8>(), 0..64),
        payload in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        let sub = data_key(key, version).subkey(Purpose::ValueSealing);
        let binding = Binding { tenant: &tenant, group, key_path: &key_path };
        let sealed = sub.seal(&binding, &payload).expect("seal");
        prop_assert_eq!(sealed_key_version(&sealed), Ok(version));
        let opened = sub.open(&binding, &sealed).expect("open");
        prop_assert_eq!(opened.as_slice(), payload.as_slice());
    }

    #[test]
    fn another_binding_never_opens(
        key in any::<[u8; 32]>(),
        tenant in "[a-z]{1,12}",
        other_tenant in "[a-z]{1,12}",
        group in any::<u64>(),
        other_group in any::<u64>(),
        key_path in proptest::collection::vec(any::<u8>(), 0..32),
        other_path in proptest::collection::vec(any::<u8>(), 0..32),
        payload in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        prop_assume!((&tenant, group, &key_path) != (&other_tenant, other_group, &other_path));
        let sub = data_key(key, 1).subkey(Purpose::ValueSealing);
        let sealed = sub
            .seal(&Binding { tenant: &tenant, group, key_path: &key_path }, &payload)
            .expect("seal");
        let other = Binding { tenant: &other_tenant, group: other_group, key_path: &other_path };
        prop_assert_eq!(sub.open(&other, &sealed).err(), Some(CryptoError::DecryptionFailed));
    }

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..256),
        version in any::<u32>(),
    ) {
        let sub = data_key([7; 32], version).subkey(Purpose::ValueSealing);
        let binding = Binding { tenant: "t", group: 1, key_path: b"k" };
        let _ = sealed_key_version(&bytes);
        // Random bytes never authenticate (2^-128).
        prop_assert!(sub.open(&binding, &bytes).is_err());
        let kek = MasterKey::generate();
        let wb = WrapBinding { tenant_id: "t", dek_version: 1, kek_version: version };
        prop_assert!(kek.unwrap_key(&bytes, &wb).is_err());
    }

    #[test]
    fn any_single_bit_flip_is_detected(
        payload in proptest::collection::vec(any::<u8>(), 1..128),
        pos in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let sub = data_key([3; 32], 5).subkey(Purpose::ValueSealing);
        let binding = Binding { tenant: "t", group: 2, key_path: b"p" };
        let mut sealed = sub.seal(&binding, &payload).expect("seal");
        let i = pos.index(sealed.len());
        sealed[i] ^= 1 << bit;
        prop_assert!(sub.open(&binding, &sealed).is_err());
    }
}

/// One edit to a token's text.
#[derive(Debug, Clone)]
enum Mutation {
    Replace(prop::sample::Index, char),
    Insert(prop::sample::Index, char),
    Delete(prop::sample::Index),
    Truncate(prop::sample::Index),
    Append(String),
}

/// Characters that matter to a JWS: both base64 alphabets, padding, the separator,
/// whitespace, and anything else.
fn token_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => prop::sample::select(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".chars().collect::<Vec<_>>()
        ),
        1 => prop::sample::select(vec!['.', '=', '+', '/', ' ', '\n', '\0']),
        1 => any::<char>(),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<prop::sample::Index>(), token_char()).prop_map(|(i, c)| Mutation::Replace(i, c)),
        2 => (any::<prop::sample::Index>(), token_char()).prop_map(|(i, c)| Mutation::Insert(i, c)),
        2 => any::<prop::sample::Index>().prop_map(Mutation::Delete),
        1 => any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        1 => "[A-Za-z0-9_.=-]{1,8}".prop_map(Mutation::Append),
    ]
}

/// Applies `m` to an ASCII token (so every byte index is a character boundary).
fn mutate(token: &str, m: &Mutation) -> String {
    let mut t = token.to_owned();
    match m {
        Mutation::Replace(i, c) => {
            let i = i.index(t.len());
            t.replace_range(i..=i, c.encode_utf8(&mut [0; 4]));
        }
        Mutation::Insert(i, c) => t.insert(i.index(t.len() + 1), *c),
        Mutation::Delete(i) => {
            t.remove(i.index(t.len()));
        }
        Mutation::Truncate(i) => t.truncate(i.index(t.len())),
        Mutation::Append(s) => t.push_str(s),
    }
    t
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn jwt_verify_never_panics_on_arbitrary_strings(
        s in prop_oneof![".{0,300}", "[A-Za-z0-9_=+/.-]{0,400}"],
        public in any::<[u8; 32]>(),
    ) {
        let _ = jwt::header_kid(&s);
        // Random text never carries a valid signature.
        prop_assert!(jwt::verify::<serde_json::Value>(&s, &public).is_err());
    }

    #[test]
    fn jwt_only_the_untouched_token_verifies(
        seed in any::<[u8; 32]>(),
        sub in "[a-z0-9_]{1,24}",
        exp in any::<u64>(),
        m in mutation(),
    ) {
        let key = SigningKey::from_bytes(&seed).expect("32 bytes");
        let claims = Claims { sub, exp };
        let token = jwt::sign(&key, &claims).expect("sign");
        let untouched = jwt::verify::<Claims>(&token, &key.public());
        prop_assert_eq!(untouched.as_ref(), Ok(&claims));
        let mutated = mutate(&token, &m);
        let _ = jwt::header_kid(&mutated);
        let result = jwt::verify::<Claims>(&mutated, &key.public());
        if mutated == token {
            prop_assert_eq!(result.as_ref(), Ok(&claims));
        } else {
            prop_assert!(result.is_err(), "{:?} verified after {:?}", mutated, m);
        }
    }

    #[test]
    fn token_parsers_never_panic(
        s in prop_oneof![
            ".{0,260}",
            "rt1\\.[a-z0-9_A-Z.-]{0,70}\\.[0-9+-]{0,24}\\.[A-Za-z0-9_=+/-]{0,48}",
            "ck_[0-9a-fA-F_]{0,20}_[A-Za-z0-9_=+/-]{0,48}",
        ],
    ) {
        if let Ok(t) = RefreshToken::parse(&s) {
            // Whatever is accepted is canonical: it re-encodes to the input.
            let encoded = t.encode();
            prop_assert_eq!(encoded.as_str(), s.as_str());
        }
        if let Ok(k) = ApiKey::parse(&s) {
            let encoded = k.encode();
            prop_assert_eq!(encoded.as_str(), s.as_str());
        }
    }

    #[test]
    fn canonical_refresh_tokens_round_trip(
        session in "[a-z0-9_]{1,64}",
        generation in any::<u64>(),
        secret in any::<[u8; 32]>(),
    ) {
        let wire = format!("rt1.{session}.{generation}.{}", URL_SAFE_NO_PAD.encode(secret));
        let token = RefreshToken::parse(&wire).expect("canonical form parses");
        prop_assert_eq!(token.session_id(), session.as_str());
        prop_assert_eq!(token.generation(), generation);
        let encoded = token.encode();
        prop_assert_eq!(encoded.as_str(), wire.as_str());
    }

    #[test]
    fn canonical_api_keys_round_trip(id in "[0-9a-f]{16}", secret in any::<[u8; 32]>()) {
        let wire = format!("ck_{id}_{}", URL_SAFE_NO_PAD.encode(secret));
        let key = ApiKey::parse(&wire).expect("canonical form parses");
        prop_assert_eq!(key.id(), id.as_str());
        let encoded = key.encode();
        prop_assert_eq!(encoded.as_str(), wire.as_str());
        prop_assert!(key.verify_hash(&key.hash()));
    }
}
