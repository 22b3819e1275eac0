//! Pure session decisions: whether a session is still usable, and the refresh
//! decision (see the module doc of `sessions`).

use super::{RefreshOutcome, SessionRecord};

impl SessionRecord {
    /// Whether the session may still be used at `now` (not revoked, not expired).
    #[must_use]
    pub fn is_active(&self, now: u64) -> bool {
        self.revoked.is_none() && !self.is_expired(now)
    }

    #[must_use]
    pub fn is_expired(&self, now: u64) -> bool {
        now >= self.ends_at()
    }

    /// When the session ends unless refreshed first: its idle end or its absolute
    /// end, whichever comes sooner.
    #[must_use]
    pub fn ends_at(&self) -> u64 {
        self.expires_at.min(
            self.last_refreshed_at
                .saturating_add(self.idle_timeout_secs),
        )
    }
}

/// The refresh decision for session `s` when token `generation` (hash
/// `presented_hash`) is presented at `at`. `Rotated` and `Retried` carry `s`
/// unchanged; the caller applies the rotation.
///
/// The previous token is a lost-answer retry only within `retry_grace`
/// seconds of the rotation that retired it (`s.last_refreshed_at`, both times
/// the proposers'); after that it is reuse, like any older token. `None` (a
/// wire version 2 refresh) keeps the unbounded retry of old entries.
#[must_use]
pub fn refresh_decision(
    s: &SessionRecord,
    generation: u64,
    presented_hash: &[u8],
    successor_hash: &[u8],
    proof: Option<&(u64, Vec<u8>)>,
    at: u64,
    retry_grace: Option<u64>,
) -> RefreshOutcome {
    if s.revoked.is_some() {
        return RefreshOutcome::Revoked;
    }
    if s.is_expired(at) {
        return RefreshOutcome::Expired;
    }
    let g = s.generation;
    if generation == g {
        if presented_hash == s.current_hash.as_slice() {
            return RefreshOutcome::Rotated(s.clone());
        }
        return RefreshOutcome::Invalid;
    }
    if generation.checked_add(1) == Some(g) {
        let matches_previous = s.previous_hash.as_deref() == Some(presented_hash);
        if matches_previous && successor_hash == s.current_hash.as_slice() {
            let within =
                retry_grace.is_none_or(|grace| at.saturating_sub(s.last_refreshed_at) <= grace);
            // The previous token's hash proves it genuine: no walk needed.
            return if within {
                RefreshOutcome::Retried(s.clone())
            } else {
                RefreshOutcome::Reused
            };
        }
        return RefreshOutcome::Invalid;
    }
    if generation < g {
        return match proof {
            Some((pg, ph)) if *pg == g && ph.as_slice() == s.current_hash.as_slice() => {
                RefreshOutcome::Reused
            }
            Some((pg, _)) if *pg == g => RefreshOutcome::Invalid,
            _ => RefreshOutcome::NeedProof { current: g },
        };
    }
    RefreshOutcome::Invalid
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sm::sessions::Revocation;
    use proptest::prelude::*;

    fn h(g: u64) -> Vec<u8> {
        let mut v = vec![0xAA; 24];
        v.extend_from_slice(&g.to_be_bytes());
        v
    }

    fn session(generation: u64) -> SessionRecord {
        SessionRecord {
            id: "s".to_owned(),
            user_id: "u".to_owned(),
            created_at: 100,
            last_refreshed_at: 100,
            expires_at: 1_000,
            idle_timeout_secs: 500,
            amr: vec!["pwd".to_owned()],
            kid: "k".to_owned(),
            generation,
            current_hash: h(generation),
            previous_hash: generation.checked_sub(1).map(h),
            revoked: None,
            sealed_details: Vec::new(),
        }
    }

    #[test]
    fn a_session_ends_at_its_idle_or_absolute_end_whichever_is_first() {
        let s = session(0);
        assert_eq!(s.ends_at(), 600);
        assert!(s.is_active(599) && !s.is_active(600));
        let revoked = SessionRecord {
            revoked: Some(Revocation {
                at: 1,
                reason: "revoked".to_owned(),
            }),
            ..session(0)
        };
        assert!(!revoked.is_active(101));
        assert_eq!(
            refresh_decision(&revoked, 0, &h(0), &h(1), None, 101, None),
            RefreshOutcome::Revoked
        );
    }

    proptest! {
        /// Over every generation presented with its genuine hash: the current one
        /// rotates, the previous one retries, an older one needs a proof and with
        /// the right proof is reuse, a future one is invalid.
        #[test]
        fn the_refresh_decision_by_generation(g in 1u64..50, presented in 0u64..60, at in 100u64..700) {
            let s = session(g);
            let out = refresh_decision(&s, presented, &h(presented), &h(presented + 1), None, at, None);
            if at >= 600 {
                prop_assert_eq!(out, RefreshOutcome::Expired);
                return Ok(());
            }
            if presented == g {
                prop_assert_eq!(out, RefreshOutcome::Rotated(s.clone()));
            } else if presented + 1 == g {
                prop_assert_eq!(out, RefreshOutcome::Retried(s.clone()));
            } else if presented < g {
                prop_assert_eq!(out, RefreshOutcome::NeedProof { current: g });
                let proof = (g, h(g));
                prop_assert_eq!(
                    refresh_decision(&s, presented, &h(presented), &h(presented + 1), Some(&proof), at, None),
                    RefreshOutcome::Reused
                );
                let forged = (g, vec![0; 32]);
                prop_assert_eq!(
                    refresh_decision(&s, presented, &h(presented), &h(presented + 1), Some(&forged), at, None),
                    RefreshOutcome::Invalid
                );
            } else {
                prop_assert_eq!(out, RefreshOutcome::Invalid);
            }
            // A wrong hash for the current or previous generation never passes.
            let wrong = vec![1; 32];
            prop_assert_eq!(refresh_decision(&s, g, &wrong, &h(g + 1), None, at, None), RefreshOutcome::Invalid);
            prop_assert_eq!(refresh_decision(&s, g - 1, &wrong, &h(g), None, at, None), RefreshOutcome::Invalid);
        }

        /// With a grace, the previous token retries only until `grace` seconds
        /// after the rotation (`last_refreshed_at`, 100 here) and is reuse
        /// after, with no proof needed; nothing else changes.
        #[test]
        fn the_previous_token_retries_only_within_the_grace(
            g in 1u64..50, grace in 0u64..=60, after in 0u64..200,
        ) {
            let s = session(g);
            let at = 100 + after;
            let previous = refresh_decision(&s, g - 1, &h(g - 1), &h(g), None, at, Some(grace));
            if after <= grace {
                prop_assert_eq!(previous, RefreshOutcome::Retried(s.clone()));
            } else {
                prop_assert_eq!(previous, RefreshOutcome::Reused);
            }
            prop_assert_eq!(
                refresh_decision(&s, g, &h(g), &h(g + 1), None, at, Some(grace)),
                RefreshOutcome::Rotated(s.clone())
            );
            let wrong = vec![1; 32];
            prop_assert_eq!(
                refresh_decision(&s, g - 1, &wrong, &h(g), None, at, Some(grace)),
                RefreshOutcome::Invalid,
                "a forged previous token revokes nothing, in the grace or after it"
            );
        }
    }
}
