//! The token bucket as GCRA (the generic cell rate algorithm): a bucket of
//! `burst` tokens refilled at `per_minute` is one number, the theoretical
//! arrival time (TAT) of the next request, in milliseconds.

/// A bucket's size and refill, as GCRA intervals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    /// Milliseconds per token.
    interval: u64,
    /// How far ahead of now the TAT may run: `burst` tokens' worth.
    tolerance: u64,
}

impl Gcra {
    /// A bucket of `burst` tokens (at least 1) refilled at `per_minute` (at
    /// least 1).
    #[must_use]
    pub fn new(burst: u32, per_minute: u32) -> Self {
        let interval = (60_000 / u64::from(per_minute.max(1))).max(1);
        Self {
            interval,
            tolerance: interval.saturating_mul(u64::from(burst.max(1))),
        }
    }

    /// Takes one token at `now` from the bucket whose TAT is `tat` (`None`: a
    /// full bucket): `Ok(new TAT)`, or `Err(milliseconds until a token is
    /// back)`.
    ///
    /// # Errors
    /// The bucket is empty.
    pub fn take(&self, tat: Option<u64>, now: u64) -> Result<u64, u64> {
        let next = tat.unwrap_or(0).max(now).saturating_add(self.interval);
        let ahead = next - now;
        if ahead > self.tolerance {
            Err(ahead - self.tolerance)
        } else {
            Ok(next)
        }
    }

    /// Whether a token could be taken at `now` (nothing is taken).
    ///
    /// # Errors
    /// As [`Self::take`].
    pub fn check(&self, tat: Option<u64>, now: u64) -> Result<(), u64> {
        self.take(tat, now).map(|_| ())
    }
}

/// Whole seconds to wait for `ms` milliseconds, rounded up (at least 1: a
/// `Retry-After: 0` would invite an immediate retry that fails again).
#[must_use]
pub fn retry_after_secs(ms: u64) -> u64 {
    ms.div_ceil(1000).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_bucket_gives_its_burst_then_one_token_per_interval() {
        let g = Gcra::new(3, 60); // a token a second
        let mut tat = None;
        for _ in 0..3 {
            tat = Some(g.take(tat, 10_000).expect("within the burst"));
        }
        assert_eq!(g.take(tat, 10_000), Err(1_000), "empty: back in a second");
        assert_eq!(g.check(tat, 10_999), Err(1));
        let tat = g.take(tat, 11_000).expect("refilled one");
        assert_eq!(g.take(Some(tat), 11_000), Err(1_000));
        assert!(g.take(Some(tat), 14_000).is_ok(), "refilled again");
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(1), 1);
        assert_eq!(retry_after_secs(1_000), 1);
        assert_eq!(retry_after_secs(1_001), 2);
        assert_eq!(retry_after_secs(0), 1);
    }

    proptest! {
        /// However requests arrive, no window of length `w` admits more than
        /// `burst + w / interval` of them, and waiting the answered time
        /// always admits the next one.
        #[test]
        fn never_more_than_the_burst_plus_the_refill(
            burst in 1u32..20, per_minute in 1u32..600,
            gaps in proptest::collection::vec(0u64..5_000, 1..200),
        ) {
            let g = Gcra::new(burst, per_minute);
            let interval = (60_000 / u64::from(per_minute)).max(1);
            let (mut now, mut tat, mut admitted) = (1_000_000u64, None, Vec::new());
            for gap in gaps {
                now += gap;
                match g.take(tat, now) {
                    Ok(t) => { tat = Some(t); admitted.push(now); }
                    Err(wait) => {
                        prop_assert!(wait > 0);
                        prop_assert!(g.check(tat, now + wait).is_ok(), "the wait is honest");
                        prop_assert!(wait == 1 || g.check(tat, now + wait - 1).is_err(), "and exact");
                    }
                }
            }
            let start = admitted[0];
            let window = now - start;
            let max = u64::from(burst) + window / interval + 1;
            prop_assert!(admitted.len() as u64 <= max, "{} admitted, at most {max}", admitted.len());
        }
    }
}
