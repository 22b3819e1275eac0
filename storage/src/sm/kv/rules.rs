//! The compare-and-set guard.

/// `Some(current)` (the key's revision, `0` for an absent key) if `expected` is
/// given and differs from it: the write must not happen.
#[must_use]
pub fn guard(current: Option<u64>, expected: Option<u64>) -> Option<u64> {
    let current = current.unwrap_or(0);
    match expected {
        Some(expected) if expected != current => Some(current),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn zero_means_absent() {
        assert_eq!(guard(None, Some(0)), None);
        assert_eq!(guard(Some(3), Some(0)), Some(3));
        assert_eq!(guard(None, Some(3)), Some(0));
    }

    proptest! {
        #[test]
        fn unguarded_writes_always_pass_and_guards_pass_only_on_equality(
            current in proptest::option::of(1u64..u64::MAX),
            expected in proptest::option::of(0u64..u64::MAX),
        ) {
            prop_assert_eq!(guard(current, None), None);
            let refused = guard(current, expected);
            match expected {
                None => prop_assert_eq!(refused, None),
                Some(e) if e == current.unwrap_or(0) => prop_assert_eq!(refused, None),
                Some(_) => prop_assert_eq!(refused, Some(current.unwrap_or(0))),
            }
        }
    }
}
