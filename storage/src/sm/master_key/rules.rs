//! Pure master key decisions: whether a key is wrapped under the current master
//! key, and what a rotation makes current.

use super::{MasterKeyConflict, MasterKeyRecord, MasterKeyState};

/// `Some(conflict)` unless `kek_version`/`fingerprint` name the current master
/// key. Before any master key is recorded only version 1 is accepted (it then
/// establishes the master key).
#[must_use]
pub fn check(
    master: Option<&MasterKeyState>,
    kek_version: u32,
    fingerprint: &str,
) -> Option<MasterKeyConflict> {
    match master {
        Some(m) if m.current.version == kek_version && m.current.fingerprint == fingerprint => None,
        Some(m) => Some(MasterKeyConflict {
            current: Some(m.current.clone()),
        }),
        // Nothing established yet: only version 1 may establish it.
        None if kek_version == 1 => None,
        None => Some(MasterKeyConflict { current: None }),
    }
}

/// The version a rotation from `expected` makes current.
///
/// # Errors
/// `expected` is not the current version (or has no successor).
pub fn next_version(master: &MasterKeyState, expected: u32) -> Result<u32, MasterKeyConflict> {
    match expected.checked_add(1) {
        Some(next) if master.current.version == expected => Ok(next),
        _ => Err(MasterKeyConflict {
            current: Some(master.current.clone()),
        }),
    }
}

/// The first master key state: `fingerprint` current as `version` since `since`.
#[must_use]
pub fn first(fingerprint: &str, version: u32, since: u64) -> MasterKeyState {
    MasterKeyState {
        current: MasterKeyRecord {
            version,
            fingerprint: fingerprint.to_owned(),
            since,
        },
        retired: Vec::new(),
    }
}

/// `master` after rotating to `fingerprint` as version `next` at `at`: the old
/// current key joins the history.
#[must_use]
pub fn rotated(
    mut master: MasterKeyState,
    next: u32,
    fingerprint: &str,
    at: u64,
) -> MasterKeyState {
    let old = std::mem::replace(
        &mut master.current,
        MasterKeyRecord {
            version: next,
            fingerprint: fingerprint.to_owned(),
            since: at,
        },
    );
    master.retired.push(old);
    master
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn only_the_current_key_or_a_first_version_1_passes() {
        let m = first("fp1", 1, 5);
        assert_eq!(check(Some(&m), 1, "fp1"), None);
        assert!(check(Some(&m), 1, "fp2").is_some());
        assert!(check(Some(&m), 2, "fp1").is_some());
        assert_eq!(check(None, 1, "any"), None);
        assert_eq!(
            check(None, 2, "any"),
            Some(MasterKeyConflict { current: None })
        );
    }

    proptest! {
        #[test]
        fn rotations_count_up_from_the_expected_version_and_keep_history(
            rotations in 1usize..20, wrong in 0u32..100,
        ) {
            let mut m = first("fp0", 1, 0);
            for i in 0..rotations {
                let expected = m.current.version;
                if wrong != expected {
                    prop_assert!(next_version(&m, wrong).is_err());
                }
                let next = next_version(&m, expected).expect("current version");
                prop_assert_eq!(next, expected + 1);
                m = rotated(m, next, &format!("fp{}", i + 1), i as u64);
            }
            prop_assert_eq!(m.retired.len(), rotations);
            prop_assert_eq!(m.current.version as usize, rotations + 1);
            let versions: Vec<u32> = m.retired.iter().map(|r| r.version).collect();
            prop_assert!(versions.windows(2).all(|w| w[0] + 1 == w[1]));
        }
    }
}
