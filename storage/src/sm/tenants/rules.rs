//! Pure tenant decisions: session policy bounds and merging, key versions, and
//! whether a master rotation re-wraps exactly the stored keys.

use std::collections::BTreeSet;

use super::{RateLimit, SessionPolicy, TenantSettings, WrappedKey};

impl SessionPolicy {
    /// The shortest lifetime a tenant may set.
    pub const MIN_SECS: u64 = 1;
    /// The longest lifetime a tenant may set (ten years).
    pub const MAX_SECS: u64 = 10 * 365 * 86_400;

    /// This policy with each given lifetime replacing its own.
    #[must_use]
    pub fn merged(
        self,
        idle_timeout_secs: Option<u64>,
        absolute_timeout_secs: Option<u64>,
    ) -> Self {
        Self {
            idle_timeout_secs: idle_timeout_secs.unwrap_or(self.idle_timeout_secs),
            absolute_timeout_secs: absolute_timeout_secs.unwrap_or(self.absolute_timeout_secs),
        }
    }

    /// Whether both lifetimes are in bounds and the idle timeout does not exceed
    /// the absolute one.
    #[must_use]
    pub fn is_valid(&self) -> bool {
        let bounds = Self::MIN_SECS..=Self::MAX_SECS;
        bounds.contains(&self.idle_timeout_secs)
            && bounds.contains(&self.absolute_timeout_secs)
            && self.idle_timeout_secs <= self.absolute_timeout_secs
    }
}

impl Default for SessionPolicy {
    /// 30 days idle, 90 days absolute.
    fn default() -> Self {
        Self {
            idle_timeout_secs: 30 * 86_400,
            absolute_timeout_secs: 90 * 86_400,
        }
    }
}

/// The actions a tenant's rate limits name.
pub const RATE_LIMIT_ACTIONS: [&str; 5] = [
    "sign_in",
    "code_send",
    "code_verify",
    "factor_verify",
    "password_reset",
];
/// The scopes a tenant's rate limits name.
pub const RATE_LIMIT_SCOPES: [&str; 3] = ["email", "ip", "pair"];

impl TenantSettings {
    /// The longest refresh retry grace a tenant may set (seconds).
    pub const MAX_REFRESH_RETRY_GRACE_SECS: u64 = 60;

    /// These settings with each setting of `patch` replacing its own.
    #[must_use]
    pub fn merged(&self, patch: &Self) -> Self {
        let mut out = self.clone();
        if patch.refresh_retry_grace_secs.is_some() {
            out.refresh_retry_grace_secs = patch.refresh_retry_grace_secs;
        }
        for (k, v) in &patch.rate_limits {
            out.rate_limits.insert(k.clone(), *v);
        }
        if patch.breached_password_check.is_some() {
            out.breached_password_check = patch.breached_password_check;
        }
        out
    }

    /// Whether every setting is in bounds and every rate limit names a known
    /// action and scope.
    #[must_use]
    pub fn is_valid(&self) -> bool {
        self.refresh_retry_grace_secs
            .is_none_or(|g| g <= Self::MAX_REFRESH_RETRY_GRACE_SECS)
            && self.rate_limits.iter().all(|((action, scope), limit)| {
                RATE_LIMIT_ACTIONS.contains(&action.as_str())
                    && RATE_LIMIT_SCOPES.contains(&scope.as_str())
                    && limit.is_valid()
            })
    }
}

impl RateLimit {
    /// The largest burst and refill a tenant may set.
    pub const MAX: u32 = 1_000_000;

    #[must_use]
    pub fn is_valid(&self) -> bool {
        (1..=Self::MAX).contains(&self.burst) && (1..=Self::MAX).contains(&self.per_minute)
    }
}

/// A new tenant's only key, if it has exactly one and that one is version 1.
#[must_use]
pub fn first_key(keys: &[WrappedKey]) -> Option<&WrappedKey> {
    match keys {
        [key] if key.version == 1 => Some(key),
        _ => None,
    }
}

/// `Err(current)` unless `proposed` is the version after `current` (`0`: none).
///
/// # Errors
/// The proposed version is not the next one.
pub fn next_key_version(current: u32, proposed: u32) -> Result<(), u32> {
    if current.checked_add(1) == Some(proposed) {
        Ok(())
    } else {
        Err(current)
    }
}

/// Whether `rewrapped` holds exactly one re-wrapped copy of every stored key
/// (`stored`: (tenant id, key version)), each under master key version `next`.
#[must_use]
pub fn rewrap_covers(
    stored: &BTreeSet<(String, u32)>,
    rewrapped: &[(String, WrappedKey)],
    next: u32,
) -> bool {
    let proposed: BTreeSet<(String, u32)> = rewrapped
        .iter()
        .map(|(id, k)| (id.clone(), k.version))
        .collect();
    proposed == *stored
        && proposed.len() == rewrapped.len()
        && rewrapped.iter().all(|(_, k)| k.kek_version == next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(version: u32, kek_version: u32) -> WrappedKey {
        WrappedKey {
            version,
            kek_version,
            wrapped: vec![0; 8],
            created_at: 1,
        }
    }

    #[test]
    fn a_rewrap_must_cover_every_stored_key_once_under_the_next_master_key() {
        let stored: BTreeSet<_> = [("a".to_owned(), 1), ("b".to_owned(), 1)].into();
        let all = vec![("a".to_owned(), key(1, 2)), ("b".to_owned(), key(1, 2))];
        assert!(rewrap_covers(&stored, &all, 2));
        assert!(!rewrap_covers(&stored, &all[..1], 2), "b missing");
        assert!(!rewrap_covers(&stored, &all, 3), "wrong master version");
        let mut twice = all.clone();
        twice.push(("a".to_owned(), key(1, 2)));
        assert!(!rewrap_covers(&stored, &twice, 2), "a duplicate");
    }

    #[test]
    fn first_keys_and_next_versions() {
        assert!(first_key(&[key(1, 1)]).is_some());
        assert!(first_key(&[key(2, 1)]).is_none());
        assert!(first_key(&[key(1, 1), key(2, 1)]).is_none());
        assert!(first_key(&[]).is_none());
        assert_eq!(next_key_version(1, 2), Ok(()));
        assert_eq!(next_key_version(1, 3), Err(1));
        assert_eq!(next_key_version(u32::MAX, 0), Err(u32::MAX));
    }

    #[test]
    fn settings_merge_setting_by_setting_and_stay_in_bounds() {
        let limit = |burst, per_minute| RateLimit { burst, per_minute };
        let mut base = TenantSettings::default();
        base.rate_limits
            .insert(("sign_in".into(), "email".into()), limit(5, 1));
        let mut patch = TenantSettings {
            refresh_retry_grace_secs: Some(0),
            ..TenantSettings::default()
        };
        patch
            .rate_limits
            .insert(("sign_in".into(), "ip".into()), limit(50, 30));
        let merged = base.merged(&patch);
        assert_eq!(merged.refresh_retry_grace_secs, Some(0));
        assert_eq!(merged.rate_limits.len(), 2, "both limits stand");
        assert!(merged.is_valid());
        assert_eq!(merged.merged(&TenantSettings::default()), merged);
        let bad = |f: &dyn Fn(&mut TenantSettings)| {
            let mut s = merged.clone();
            f(&mut s);
            s.is_valid()
        };
        assert!(!bad(&|s| s.refresh_retry_grace_secs = Some(61)));
        assert!(bad(&|s| s.refresh_retry_grace_secs = Some(60)));
        assert!(!bad(&|s| {
            s.rate_limits
                .insert(("sign_up".into(), "ip".into()), limit(1, 1));
        }));
        assert!(!bad(&|s| {
            s.rate_limits
                .insert(("sign_in".into(), "user".into()), limit(1, 1));
        }));
        assert!(!bad(&|s| {
            s.rate_limits
                .insert(("sign_in".into(), "ip".into()), limit(0, 1));
        }));
        assert!(!bad(&|s| {
            s.rate_limits
                .insert(("sign_in".into(), "ip".into()), limit(1, 0));
        }));
    }

    #[test]
    fn settings_round_trip_through_their_stored_list() {
        let mut s = TenantSettings {
            refresh_retry_grace_secs: Some(7),
            breached_password_check: Some(true),
            ..TenantSettings::default()
        };
        s.rate_limits.insert(
            ("code_send".into(), "pair".into()),
            RateLimit {
                burst: 3,
                per_minute: 2,
            },
        );
        let bytes = crate::codec::encode("settings", &s).expect("encode");
        let back: TenantSettings = crate::codec::decode("settings", &bytes).expect("decode");
        assert_eq!(back, s);
    }

    proptest! {
        #[test]
        fn merging_keeps_what_is_not_given(
            idle in 0u64..1_000_000, absolute in 0u64..1_000_000,
            new_idle in proptest::option::of(0u64..1_000_000),
            new_absolute in proptest::option::of(0u64..1_000_000),
        ) {
            let base = SessionPolicy { idle_timeout_secs: idle, absolute_timeout_secs: absolute };
            let merged = base.merged(new_idle, new_absolute);
            prop_assert_eq!(merged.idle_timeout_secs, new_idle.unwrap_or(idle));
            prop_assert_eq!(merged.absolute_timeout_secs, new_absolute.unwrap_or(absolute));
            prop_assert_eq!(base.merged(None, None), base);
        }

        #[test]
        fn a_valid_policy_is_in_bounds_and_idle_within_absolute(
            idle in 0u64..=SessionPolicy::MAX_SECS + 10,
            absolute in 0u64..=SessionPolicy::MAX_SECS + 10,
        ) {
            let p = SessionPolicy { idle_timeout_secs: idle, absolute_timeout_secs: absolute };
            let expected = (1..=SessionPolicy::MAX_SECS).contains(&idle)
                && (1..=SessionPolicy::MAX_SECS).contains(&absolute)
                && idle <= absolute;
            prop_assert_eq!(p.is_valid(), expected);
        }
    }
}
