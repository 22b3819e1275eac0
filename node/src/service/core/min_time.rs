//! Minimum response times: an answer that must not tell, by when it comes,
//! which path it took (an unknown email, a missing password, a wrong password;
//! a forged, retired or revoked refresh token; an unknown or wrong API key).
//! Every verification path pads through [`at_least`], each with its minimum:
//! [`SIGN_IN_MIN_TIME`], [`REFRESH_FAILURE_MIN_TIME`],
//! [`API_KEY_FAILURE_MIN_TIME`].
//!
//! The minimum counts where the client's request arrived. A request relayed
//! from the node the client called (`crate::relay`) carries a [`DeferredPad`]:
//! the serving node records the minimum there instead of waiting it out, and
//! the client's node waits until its own arrival plus that minimum. So an answer
//! from another region comes at the same time as a local one, however long the
//! hop took.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

/// Every sign-in answer but an unexpected error takes at least this long, so
/// that the paths that fail early (unknown email, no password, an empty
/// bucket) cannot be told from a wrong password, nor from a success.
pub const SIGN_IN_MIN_TIME: Duration = Duration::from_millis(150);

/// A refused refresh takes at least this long: whether the token was forged,
/// far behind, retired (reuse) or its session revoked or expired, the answer
/// comes at the same time whether a read, a walk or a write decided it.
pub const REFRESH_FAILURE_MIN_TIME: Duration = Duration::from_millis(50);

/// A refused API key (malformed, unknown, revoked or with a wrong secret)
/// takes at least this long from the request's arrival: a cached key and one
/// read from `meta` fail alike.
pub const API_KEY_FAILURE_MIN_TIME: Duration = Duration::from_millis(25);

/// The minimum time of a relayed request's answer, left for the node the
/// client called to wait out (from its own arrival): set by [`at_least`],
/// read by the relay once the answer is made.
#[derive(Debug, Clone, Default)]
pub struct DeferredPad(Arc<AtomicU64>);

impl DeferredPad {
    /// Records that the answer must take at least `min` (the longest wins).
    pub fn defer(&self, min: Duration) {
        let ms = u64::try_from(min.as_millis()).unwrap_or(u64::MAX);
        self.0.fetch_max(ms, Ordering::Relaxed);
    }

    /// The minimum recorded, if any.
    #[must_use]
    pub fn get(&self) -> Option<Duration> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }
}

/// Runs `work` and, when `pad` says its result must not be told apart by its
/// timing, answers no sooner than `min` after the start; or, for a request
/// relayed from the client's node (`deferred`), leaves that wait to it.
pub async fn at_least<T>(
    deferred: Option<&DeferredPad>,
    min: Duration,
    pad: impl FnOnce(&T) -> bool,
    work: impl Future<Output = T>,
) -> T {
    let started = Instant::now();
    let result = work.await;
    if pad(&result) {
        match deferred {
            Some(d) => d.defer(min),
            None => tokio::time::sleep_until(started + min).await,
        }
    }
    result
}

/// As [`at_least`], counting `min` from `started` (a request's arrival).
pub async fn at_least_since<T>(
    started: Instant,
    min: Duration,
    pad: impl FnOnce(&T) -> bool,
    work: impl Future<Output = T>,
) -> T {
    let result = work.await;
    if pad(&result) {
        tokio::time::sleep_until(started + min).await;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_padded_answer_waits_for_the_minimum_and_an_unpadded_one_does_not() {
        let min = Duration::from_millis(200);
        let started = Instant::now();
        assert_eq!(at_least(None, min, |_| true, async { 1 }).await, 1);
        assert!(started.elapsed() >= min, "{:?}", started.elapsed());
        let started = Instant::now();
        assert_eq!(at_least(None, min, |_| false, async { 2 }).await, 2);
        assert!(started.elapsed() < min, "{:?}", started.elapsed());
    }

    #[tokio::test]
    async fn a_relayed_answer_leaves_its_minimum_to_the_clients_node() {
        let min = Duration::from_secs(60);
        let deferred = DeferredPad::default();
        assert_eq!(deferred.get(), None);
        assert_eq!(
            at_least(Some(&deferred), min, |_| false, async { 0 }).await,
            0
        );
        assert_eq!(deferred.get(), None, "an unpadded answer defers nothing");
        // Answers at once (the test would wait a minute otherwise)…
        assert_eq!(
            at_least(Some(&deferred), min, |_| true, async { 1 }).await,
            1
        );
        // …and the minimum is there for the client's node.
        assert_eq!(deferred.get(), Some(min));
        deferred.defer(Duration::from_millis(5));
        assert_eq!(deferred.get(), Some(min), "the longest minimum wins");
    }
}
