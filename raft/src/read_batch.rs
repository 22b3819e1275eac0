//! Read-index batching: concurrent linearizable reads of one group share one
//! leadership confirmation.
//!
//! A linearizable read needs a read index obtained *after* the read began: the
//! leader confirms with a quorum that it still leads, and its commit index at that
//! moment covers every write acknowledged before. A round that started before a
//! read began cannot serve that read (a write may have been acknowledged in
//! between), but one round can serve every read that was waiting when it started.
//! So a [`ReadBatcher`] runs at most one round at a time; reads arriving during a
//! round wait for the next one, which serves all of them. Under load one quorum
//! round serves many reads; a lone read costs one round, as without batching.
//!
//! The rule is about when the *read* began, not when it reached the batcher: a
//! round serves every read that began before the round started. So a read that
//! names its beginning ([`ReadBatcher::read_index_since`]: the moment its client
//! request arrived) is served at once by the last round that succeeded, if that
//! round started after it began. A request that reads two groups one after the
//! other (its API key in `meta`, then its data) often finds the second group's
//! read index already taken by a round that started while it waited for the first.
//!
//! Rounds run on a task of their own, so a reader that gives up (its client went
//! away) never strands the others; a round that fails or takes longer than
//! [`ROUND_TIMEOUT`] answers `None` to its whole batch.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

/// Longest one round may take before its reads fail (and may be retried).
pub(crate) const ROUND_TIMEOUT: Duration = Duration::from_secs(2);

type Round = dyn Fn() -> Pin<Box<dyn Future<Output = Option<u64>> + Send>> + Send + Sync;

/// Coalesces read-index requests into rounds of `round`.
pub(crate) struct ReadBatcher {
    round: Arc<Round>,
    state: Arc<Mutex<Batch>>,
}

#[derive(Default)]
struct Batch {
    running: bool,
    waiting: Vec<oneshot::Sender<Option<u64>>>,
    /// The latest round that succeeded: when it started, and its read index.
    last: Option<(Instant, u64)>,
}

impl ReadBatcher {
    /// `round` obtains one read index (`None`: no leader confirmed it).
    pub(crate) fn new<F, Fut>(round: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<u64>> + Send + 'static,
    {
        Self {
            round: Arc::new(move || Box::pin(round()) as Pin<Box<_>>),
            state: Arc::new(Mutex::new(Batch::default())),
        }
    }

    /// A read index obtained by a round that started after this call began.
    pub(crate) async fn read_index(&self) -> Option<u64> {
        self.read_index_since(Instant::now()).await
    }

    /// A read index obtained by a round that started after `since`, the moment
    /// the read began (or any later moment): the last successful round's if it
    /// started after `since`, else the next round's.
    ///
    /// `since` must not be earlier than the end of any write the caller's
    /// operation made before this read (its own write must be visible to it).
    pub(crate) async fn read_index_since(&self, since: Instant) -> Option<u64> {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut batch = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((started, index)) = batch.last {
                if started > since {
                    return Some(index);
                }
            }
            batch.waiting.push(tx);
            !std::mem::replace(&mut batch.running, true)
        };
        if start {
            tokio::spawn(drive(Arc::clone(&self.state), Arc::clone(&self.round)));
        }
        rx.await.ok().flatten()
    }
}

/// Runs rounds while reads are waiting, each round serving the reads that were
/// waiting when it started.
async fn drive(state: Arc<Mutex<Batch>>, round: Arc<Round>) {
    // If a round panics, the batcher is left idle and the reads still waiting
    // fail rather than hang. Disarmed on the normal way out, which goes idle under
    // the lock: a reader arriving just after starts a new task, undisturbed.
    let mut idle = Idle {
        state: Arc::clone(&state),
        armed: true,
    };
    loop {
        let batch = {
            let mut batch = state.lock().unwrap_or_else(PoisonError::into_inner);
            if batch.waiting.is_empty() {
                batch.running = false;
                idle.armed = false;
                return;
            }
            std::mem::take(&mut batch.waiting)
        };
        // Taken after every read of the batch began and before the round sends
        // anything.
        let started = Instant::now();
        let index = tokio::time::timeout(ROUND_TIMEOUT, round())
            .await
            .ok()
            .flatten();
        if let Some(index) = index {
            let mut batch = state.lock().unwrap_or_else(PoisonError::into_inner);
            batch.last = Some((started, index));
        }
        for reader in batch {
            // A reader that gave up has dropped its receiver: nothing to do.
            let _ = reader.send(index);
        }
    }
}

struct Idle {
    state: Arc<Mutex<Batch>>,
    armed: bool,
}

impl Drop for Idle {
    fn drop(&mut self) {
        if self.armed {
            let mut batch = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            batch.running = false;
            batch.waiting.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A round that takes 20 ms and answers the number of rounds started so far.
    fn counting() -> (ReadBatcher, Arc<AtomicU64>) {
        let rounds = Arc::new(AtomicU64::new(0));
        let r = Arc::clone(&rounds);
        let batcher = ReadBatcher::new(move || {
            let n = r.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Some(n)
            }
        });
        (batcher, rounds)
    }

    /// One read on a task of its own.
    fn spawn_read(b: &Arc<ReadBatcher>) -> tokio::task::JoinHandle<Option<u64>> {
        let b = Arc::clone(b);
        tokio::spawn(async move { b.read_index().await })
    }

    #[tokio::test]
    async fn a_lone_read_gets_a_round_of_its_own() {
        let (b, rounds) = counting();
        assert_eq!(b.read_index().await, Some(1));
        assert_eq!(b.read_index().await, Some(2));
        assert_eq!(rounds.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn concurrent_reads_share_rounds_that_started_after_they_began() {
        let (b, rounds) = counting();
        let b = Arc::new(b);
        // The first read starts round 1; the 99 others arrive while it runs and
        // must all be served by round 2, never by round 1.
        let first = spawn_read(&b);
        tokio::time::sleep(Duration::from_millis(5)).await;
        let later: Vec<_> = (0..99).map(|_| spawn_read(&b)).collect();
        assert_eq!(first.await.expect("task"), Some(1));
        for r in later {
            assert_eq!(r.await.expect("task"), Some(2));
        }
        assert_eq!(rounds.load(Ordering::SeqCst), 2, "100 reads, two rounds");
    }

    #[tokio::test]
    async fn a_read_that_began_before_a_finished_round_started_is_served_by_it() {
        let (b, rounds) = counting();
        let began = Instant::now();
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert_eq!(
            b.read_index().await,
            Some(1),
            "round 1 starts after `began`"
        );
        assert_eq!(b.read_index_since(began).await, Some(1), "no new round");
        assert_eq!(rounds.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_read_that_began_after_the_last_round_started_waits_for_a_new_one() {
        let (b, rounds) = counting();
        let b = Arc::new(b);
        // The read begins while round 1 runs: round 1 cannot serve it, even when
        // it reaches the batcher after round 1 finished.
        let first = spawn_read(&b);
        tokio::time::sleep(Duration::from_millis(5)).await;
        let began = Instant::now();
        assert_eq!(first.await.expect("task"), Some(1));
        assert_eq!(b.read_index_since(began).await, Some(2));
        assert_eq!(b.read_index_since(Instant::now()).await, Some(3));
        assert_eq!(rounds.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_failed_round_serves_no_later_read() {
        let calls = Arc::new(AtomicU64::new(0));
        let c = Arc::clone(&calls);
        let b = ReadBatcher::new(move || {
            let n = c.fetch_add(1, Ordering::SeqCst);
            async move { (n > 0).then_some(n) }
        });
        let began = Instant::now();
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert_eq!(b.read_index().await, None, "round 0 failed");
        assert_eq!(b.read_index_since(began).await, Some(1), "a new round");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn failed_slow_and_panicking_rounds_fail_their_reads_without_wedging() {
        let calls = Arc::new(AtomicU64::new(0));
        let c = Arc::clone(&calls);
        let b = ReadBatcher::new(move || {
            let n = c.fetch_add(1, Ordering::SeqCst);
            async move {
                match n {
                    0 => None,
                    1 => {
                        tokio::time::sleep(ROUND_TIMEOUT * 2).await;
                        Some(1)
                    }
                    2 => panic!("a round panicked"),
                    _ => Some(n),
                }
            }
        });
        assert_eq!(b.read_index().await, None, "failed round");
        assert_eq!(b.read_index().await, None, "timed-out round");
        assert_eq!(b.read_index().await, None, "panicked round");
        assert_eq!(b.read_index().await, Some(3), "the batcher still works");
    }
}
