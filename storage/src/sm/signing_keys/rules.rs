//! The signing key rotation rule.

use super::{SigningKeyRecord, SigningKeys};

/// `keys` after making `new` current at `at`: every older key is retired at `at`
/// (unless it already was), and keys retired before `at - keep_retired_secs` are
/// dropped. `None` if `new`'s `kid` is already there.
#[must_use]
pub fn rotate(
    mut keys: SigningKeys,
    new: &SigningKeyRecord,
    at: u64,
    keep_retired_secs: u64,
) -> Option<SigningKeys> {
    if keys.keys.iter().any(|k| k.kid == new.kid) {
        return None;
    }
    let horizon = at.saturating_sub(keep_retired_secs);
    keys.keys
        .retain(|k| k.retired_at.is_none_or(|r| r >= horizon));
    for k in &mut keys.keys {
        k.retired_at.get_or_insert(at);
    }
    let mut new = new.clone();
    new.retired_at = None;
    keys.keys.push(new);
    Some(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(kid: &str) -> SigningKeyRecord {
        SigningKeyRecord {
            kid: kid.to_owned(),
            public: vec![1; 32],
            sealed_private: vec![2; 40],
            created_at: 1,
            retired_at: None,
        }
    }

    #[test]
    fn retired_keys_stay_for_the_token_lifetime() {
        let mut keys = SigningKeys {
            keys: vec![key("s1")],
        };
        for (kid, at) in [("s2", 1000), ("s3", 1500), ("s4", 2000)] {
            keys = rotate(keys, &key(kid), at, 900).expect("new kid");
        }
        let kids: Vec<_> = keys.keys.iter().map(|k| k.kid.as_str()).collect();
        // s1 retired at 1000 < 2000 - 900: dropped; s2 retired at 1500: kept.
        assert_eq!(kids, ["s2", "s3", "s4"]);
        assert_eq!(keys.keys[0].retired_at, Some(1500));
        assert!(rotate(keys, &key("s4"), 2100, 900).is_none(), "kid taken");
    }

    proptest! {
        #[test]
        fn exactly_one_key_signs_and_it_is_the_new_one(
            rotations in proptest::collection::vec((0u64..10_000, 0u64..5_000), 1..12),
        ) {
            let mut keys = SigningKeys::default();
            let mut at = 0;
            for (i, (step, keep)) in rotations.into_iter().enumerate() {
                at += step;
                let kid = format!("k{i}");
                keys = rotate(keys, &key(&kid), at, keep).expect("fresh kid");
                prop_assert_eq!(keys.current().map(|k| k.kid.clone()), Some(kid));
                prop_assert_eq!(keys.keys.iter().filter(|k| k.retired_at.is_none()).count(), 1);
                prop_assert!(keys.keys.iter().all(|k| k.retired_at.is_none_or(|r| r <= at)));
            }
        }
    }
}
