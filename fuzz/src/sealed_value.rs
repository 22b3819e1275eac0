//! Fuzz target `sealed_value`: opening sealed values (`cairn_crypto::envelope`)
//! and unwrapping data keys (`cairn_crypto::keywrap`, the same envelope under the
//! master key). The first input byte picks one of three:
//!
//! - **0, a sealed value as stored** (any bytes, opened under a fixed key and
//!   binding), and **1, a wrapped data key as stored** (unwrapped under a fixed
//!   master key): a refusal is the one the header calls for (too short:
//!   `Malformed`; another format byte: `UnsupportedFormat`; another key version:
//!   `KeyVersionMismatch`; else `DecryptionFailed`), and `sealed_key_version`
//!   agrees. What opens is exactly as long as its plaintext plus the envelope,
//!   fails under any other binding, and seals again to a value that opens to it.
//! - **2, a plaintext and a binding**: sealing gives the documented layout and
//!   opens to the plaintext; any one flipped bit, any truncation, any change of
//!   tenant, group, key path or key version, and moving bytes between tenant and
//!   key path, all fail to open.

use std::sync::OnceLock;

use cairn_crypto::envelope::{sealed_key_version, Binding, CryptoError, DataKey, Purpose, SubKey};
use cairn_crypto::keywrap::WrapBinding;
use cairn_crypto::MasterKey;

use crate::input::{Reader, Writer};

/// Format byte, key version, nonce, then ciphertext and a 16-byte tag.
const HEADER_LEN: usize = 1 + 4 + 24;
const TAG_LEN: usize = 16;
const KEY_VERSION: u32 = 1;
const KEK_VERSION: u32 = 3;

const BINDING: Binding<'static> = Binding {
    tenant: "ten_0a1b",
    group: 1,
    key_path: b"kv/greeting",
};

const WRAP: WrapBinding<'static> = WrapBinding {
    tenant_id: "ten_0a1b",
    dek_version: 2,
    kek_version: KEK_VERSION,
};

fn dek(version: u32) -> DataKey {
    DataKey::from_bytes(&mut [0x5a; 32], version)
}

/// The value-sealing subkey every stored value in this target is opened with.
fn subkey() -> &'static SubKey {
    static KEY: OnceLock<SubKey> = OnceLock::new();
    KEY.get_or_init(|| dek(KEY_VERSION).subkey(Purpose::ValueSealing))
}

/// A fixed master key. `MasterKey` comes only from a 0600 file (or at random), so
/// it is written to one once per process.
fn master() -> &'static MasterKey {
    static KEY: OnceLock<MasterKey> = OnceLock::new();
    KEY.get_or_init(|| {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let path =
            std::env::temp_dir().join(format!("cairn-fuzz-master-{}.key", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .expect("create the master key file");
        file.write_all(&[0xa5; 32])
            .expect("write the master key file");
        drop(file);
        let key = MasterKey::load(&path).expect("load the master key file");
        let _ = std::fs::remove_file(&path);
        key
    })
}

/// The refusal the envelope header calls for, if any (`None`: only the AEAD can
/// decide).
fn header_refusal(sealed: &[u8], version: u32) -> Option<CryptoError> {
    if sealed.len() < HEADER_LEN + TAG_LEN {
        return Some(CryptoError::Malformed);
    }
    if sealed[0] != 1 {
        return Some(CryptoError::UnsupportedFormat(sealed[0]));
    }
    let found = u32::from_be_bytes([sealed[1], sealed[2], sealed[3], sealed[4]]);
    (found != version).then_some(CryptoError::KeyVersionMismatch {
        found,
        expected: version,
    })
}

/// Checks every property for one input; panics on the first that fails.
///
/// # Panics
/// When a property fails (that is the finding).
pub fn run(data: &[u8]) {
    let mut input = Reader::new(data);
    match input.byte() % 3 {
        0 => open_stored(input.rest()),
        1 => unwrap_stored(input.rest()),
        _ => round_trip(input),
    }
}

fn check_header(sealed: &[u8], version: u32, result: Result<usize, CryptoError>) {
    match (header_refusal(sealed, version), result) {
        (Some(want), Err(got)) => assert_eq!(got, want),
        (Some(want), Ok(_)) => panic!("opened a value whose header says {want:?}"),
        (None, Err(got)) => assert_eq!(got, CryptoError::DecryptionFailed),
        (None, Ok(len)) => assert_eq!(sealed.len(), HEADER_LEN + len + TAG_LEN),
    }
    // It fails only for the header rules that come before the key version.
    match (sealed_key_version(sealed), header_refusal(sealed, version)) {
        (Ok(found), refusal) => {
            assert!(sealed.len() >= HEADER_LEN + TAG_LEN && sealed[0] == 1);
            assert_eq!(found.to_be_bytes(), sealed[1..5]);
            assert!(
                found == version || matches!(refusal, Some(CryptoError::KeyVersionMismatch { .. }))
            );
        }
        (Err(e), want) => assert_eq!(Some(e), want, "sealed_key_version refused a good header"),
    }
}

fn open_stored(sealed: &[u8]) {
    let key = subkey();
    let opened = key.open(&BINDING, sealed);
    check_header(
        sealed,
        KEY_VERSION,
        opened.as_ref().map(|p| p.len()).map_err(Clone::clone),
    );
    let Ok(plain) = opened else {
        return;
    };
    let elsewhere = Binding {
        group: BINDING.group + 1,
        ..BINDING
    };
    assert_eq!(
        key.open(&elsewhere, sealed),
        Err(CryptoError::DecryptionFailed)
    );
    let again = key.seal(&BINDING, &plain).expect("seal");
    let reopened = key.open(&BINDING, &again).expect("a re-sealed value opens");
    assert_eq!(&reopened[..], &plain[..]);
}

fn unwrap_stored(wrapped: &[u8]) {
    let kek = master();
    let unwrapped = kek.unwrap_key(wrapped, &WRAP);
    // A well-formed envelope around anything but 32 bytes is `Malformed`.
    let result = match &unwrapped {
        Ok(_) => Ok(32),
        Err(CryptoError::Malformed) if header_refusal(wrapped, KEK_VERSION).is_none() => {
            assert_ne!(
                wrapped.len(),
                HEADER_LEN + 32 + TAG_LEN,
                "a 32-byte key refused as malformed"
            );
            return;
        }
        Err(e) => Err(e.clone()),
    };
    check_header(wrapped, KEK_VERSION, result);
    let Ok(key) = unwrapped else {
        return;
    };
    assert_eq!(key.version(), WRAP.dek_version);
    let other = WrapBinding {
        tenant_id: "ten_other",
        ..WRAP
    };
    assert_eq!(
        kek.unwrap_key(wrapped, &other).err(),
        Some(CryptoError::DecryptionFailed)
    );
    let again = kek.wrap(&key, &WRAP).expect("wrap");
    let back = kek
        .unwrap_key(&again, &WRAP)
        .expect("unwrap what was wrapped");
    let mac = |k: &DataKey| k.subkey(Purpose::BlindIndex).mac(b"cairn-fuzz");
    assert_eq!(mac(&back), mac(&key));
}

fn round_trip(mut input: Reader<'_>) {
    let version = input.u32();
    let group = input.u64();
    let tenant = String::from_utf8_lossy(input.field()).into_owned();
    let key_path = input.field().to_vec();
    let flip = usize::from(u16::from_be_bytes([input.byte(), input.byte()]));
    let plain = input.rest();
    let binding = Binding {
        tenant: &tenant,
        group,
        key_path: &key_path,
    };
    let key = dek(version).subkey(Purpose::ValueSealing);
    let sealed = key.seal(&binding, plain).expect("seal");
    assert_eq!(sealed.len(), HEADER_LEN + plain.len() + TAG_LEN);
    assert_eq!(sealed[0], 1, "format byte");
    assert_eq!(sealed[1..5], version.to_be_bytes());
    assert_eq!(sealed_key_version(&sealed), Ok(version));
    assert_eq!(
        key.open(&binding, &sealed).as_deref().map(|p| &p[..]),
        Ok(plain)
    );

    let mut flipped = sealed.clone();
    flipped[flip / 8 % sealed.len()] ^= 1 << (flip % 8);
    assert!(
        key.open(&binding, &flipped).is_err(),
        "opened with bit {flip} flipped"
    );
    assert!(
        key.open(&binding, &sealed[..flip % sealed.len()]).is_err(),
        "opened truncated"
    );

    let tenant2 = format!("{tenant}x");
    let mut path2 = key_path.clone();
    path2.push(0);
    let others = [
        Binding {
            tenant: &tenant2,
            ..binding
        },
        Binding {
            group: group ^ 1,
            ..binding
        },
        Binding {
            key_path: &path2,
            ..binding
        },
    ];
    for other in &others {
        assert_eq!(
            key.open(other, &sealed),
            Err(CryptoError::DecryptionFailed),
            "{other:?}"
        );
    }
    // The tenant's last byte moved to the front of the key path: same bytes in a
    // row, another binding (the lengths are in the associated data).
    if let Some((last, head)) = tenant.as_bytes().split_last() {
        if let Ok(head) = std::str::from_utf8(head) {
            let moved: Vec<u8> = std::iter::once(*last)
                .chain(key_path.iter().copied())
                .collect();
            let shifted = Binding {
                tenant: head,
                group,
                key_path: &moved,
            };
            assert_eq!(
                key.open(&shifted, &sealed),
                Err(CryptoError::DecryptionFailed)
            );
        }
    }
    let next = version.wrapping_add(1);
    assert_eq!(
        dek(next)
            .subkey(Purpose::ValueSealing)
            .open(&binding, &sealed),
        Err(CryptoError::KeyVersionMismatch {
            found: version,
            expected: next,
        })
    );
}

/// Stored values and wrapped keys made by the code under test, near misses of
/// each header rule, and plaintexts with bindings.
///
/// # Panics
/// If the code under test fails to seal or wrap.
#[must_use]
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let key = subkey();
    let sealed = key.seal(&BINDING, b"hello, sealed world").expect("seal");
    let empty = key.seal(&BINDING, b"").expect("seal");
    let wrapped = master().wrap(&dek(WRAP.dek_version), &WRAP).expect("wrap");
    let mut other_version = sealed.clone();
    other_version[4] ^= 2;
    let mut other_format = sealed.clone();
    other_format[0] = 2;
    let stored = |mode: u8, bytes: &[u8]| Writer::default().byte(mode).rest(bytes);
    let plain = |version: u32, group: u64, tenant: &str, path: &[u8], text: &[u8]| {
        Writer::default()
            .byte(2)
            .u32(version)
            .u64(group)
            .field(tenant.as_bytes())
            .field(path)
            .byte(0)
            .byte(77)
            .rest(text)
    };
    vec![
        ("stored.value".to_owned(), stored(0, &sealed)),
        ("stored.empty".to_owned(), stored(0, &empty)),
        (
            "stored.short".to_owned(),
            stored(0, &sealed[..HEADER_LEN + TAG_LEN - 1]),
        ),
        ("stored.other_version".to_owned(), stored(0, &other_version)),
        ("stored.other_format".to_owned(), stored(0, &other_format)),
        ("wrapped.key".to_owned(), stored(1, &wrapped)),
        ("wrapped.value".to_owned(), stored(1, &sealed)),
        (
            "plain.kv".to_owned(),
            plain(1, 1, "ten_0a1b", b"kv/greeting", b"hello"),
        ),
        ("plain.empty".to_owned(), plain(7, u64::MAX, "", b"", b"")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_seeds_open_and_the_near_misses_are_refused_for_their_header() {
        let seeds = seeds();
        let find = |name: &str| seeds.iter().find(|(n, _)| n == name).expect(name).1[1..].to_vec();
        assert_eq!(
            subkey()
                .open(&BINDING, &find("stored.value"))
                .as_deref()
                .map(|p| &p[..]),
            Ok(&b"hello, sealed world"[..])
        );
        assert!(subkey().open(&BINDING, &find("stored.empty")).is_ok());
        assert!(master().unwrap_key(&find("wrapped.key"), &WRAP).is_ok());
        assert_eq!(
            subkey().open(&BINDING, &find("stored.short")),
            Err(CryptoError::Malformed)
        );
        assert_eq!(
            subkey().open(&BINDING, &find("stored.other_format")),
            Err(CryptoError::UnsupportedFormat(2))
        );
        assert!(matches!(
            subkey().open(&BINDING, &find("stored.other_version")),
            Err(CryptoError::KeyVersionMismatch {
                found: 3,
                expected: 1
            })
        ));
    }
}
