//! Minimum response times: an answer that must not tell, by when it comes,
//! which path it took (an unknown email, a missing password, a wrong password).

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

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
