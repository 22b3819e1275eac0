//! Property tests: sealing round-trips for any key, binding and payload; any change
//! of binding fails; the decoders never panic on arbitrary bytes.

use cairn_crypto::envelope::{sealed_key_version, Binding, CryptoError, DataKey, Purpose};
use cairn_crypto::keywrap::WrapBinding;
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
