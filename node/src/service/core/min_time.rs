//! Minimum response times: an answer that must not tell, by when it comes,
//! which path it took (an unknown email, a missing password, a wrong password;
//! a forged, retired or revoked refresh token; an unknown or wrong API key).
//! Every verification path pads through [`at_least`], each with its minimum:
//! [`SIGN_IN_MIN_TIME`], [`REFRESH_FAILURE_MIN_TIME`],
//! [`API_KEY_FAILURE_MIN_TIME`].

use std::future::Future;
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

/// Runs `work` and, when `pad` says its result must not be told apart by its
/// timing, answers no sooner than `min` after the start.
pub async fn at_least<T>(
    min: Duration,
    pad: impl FnOnce(&T) -> bool,
    work: impl Future<Output = T>,
) -> T {
    let started = Instant::now();
    let result = work.await;
    if pad(&result) {
        tokio::time::sleep_until(started + min).await;
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
        assert_eq!(at_least(min, |_| true, async { 1 }).await, 1);
        assert!(started.elapsed() >= min, "{:?}", started.elapsed());
        let started = Instant::now();
        assert_eq!(at_least(min, |_| false, async { 2 }).await, 2);
        assert!(started.elapsed() < min, "{:?}", started.elapsed());
    }
}
