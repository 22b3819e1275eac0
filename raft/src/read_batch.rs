//! Read-index batching: concurrent linearizable reads share leadership
//! confirmations, and the reads of every group one leader leads share its calls.
//!
//! A linearizable read needs a read index obtained *after* the read began: the
//! leader confirms with a quorum that it still leads, and its commit index at that
//! moment covers every write acknowledged before. A round that started before a
//! read began cannot serve that read (a write may have been acknowledged in
//! between), but one round can serve every read that was waiting when it started.
//!
//! A [`ReadBatcher`] sends each read to a *target*: on a follower, the node it
//! believes leads the read's group; on a leader, itself (its confirmation rounds,
//! see [`crate::lease`]). Each target has at most one round running; reads
//! arriving during a round wait for the target's next one, which asks for every
//! group they name at once. So under load one call serves many reads of several
//! groups (a request that reads its API key in `meta`, then its data, costs the
//! follower's leader no more calls than one that reads a single group), and a
//! lone read costs one round, as without batching. A slow or unreachable target
//! delays only the reads sent to it.
//!
//! The rule is about when the *read* began, not when it reached the batcher: a
//! round serves every read that began before the round started. So a read that
//! names its beginning ([`ReadBatcher::read_index_since`]: the moment its client
//! request arrived) is served at once by the last round that succeeded for its
//! group, whichever target ran it, if that round started after the read began. A
//! request that reads two groups one after the other often finds the second
//! group's read index already taken by a round that started while it waited for
//! the first.
//!
//! Rounds run on a task of their own, so a reader that gives up (its client went
//! away) never strands the others; a round that fails or takes longer than
//! [`ROUND_TIMEOUT`] answers `None` to its whole batch, and a round answers `None`
//! for a group its target could not confirm.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::types::NodeId;

/// Longest one round may take before its reads fail (and may be retried).
pub(crate) const ROUND_TIMEOUT: Duration = Duration::from_secs(2);

/// One round: a target and the groups (distinct, ascending) to obtain read
/// indexes for; one answer per group, in order (`None`: not confirmed).
type Round = dyn Fn(NodeId, Vec<u64>) -> Pin<Box<dyn Future<Output = Vec<Option<u64>>> + Send>>
    + Send
    + Sync;

/// Coalesces read-index requests into rounds, one round at a time per target.
pub(crate) struct ReadBatcher {
    round: Arc<Round>,
    state: Arc<Mutex<Batches>>,
}

#[derive(Default)]
struct Batches {
    targets: HashMap<NodeId, Target>,
    /// Per group, the latest round that succeeded for it: when it started, and
    /// the read index it named.
    last: HashMap<u64, (Instant, u64)>,
}

#[derive(Default)]
struct Target {
    running: bool,
    /// Reads waiting for the next round: their group, and where to answer.
    waiting: Vec<(u64, oneshot::Sender<Option<u64>>)>,
}

impl ReadBatcher {
    /// `round` obtains read indexes from one target.
    pub(crate) fn new<F, Fut>(round: F) -> Self
    where
        F: Fn(NodeId, Vec<u64>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<Option<u64>>> + Send + 'static,
    {
        Self {
            round: Arc::new(move |target, groups| Box::pin(round(target, groups)) as Pin<Box<_>>),
            state: Arc::new(Mutex::new(Batches::default())),
        }
    }

    /// A read index for `group`, from `target`, obtained by a round that started
    /// after this call began.
    pub(crate) async fn read_index(&self, target: NodeId, group: u64) -> Option<u64> {
        self.read_index_since(target, group, Instant::now()).await
    }

    /// A read index for `group` obtained by a round that started after `since`,
    /// the moment the read began (or any later moment): the last successful
    /// round's for the group if it started after `since`, else the next round of
    /// `target`'s.
    ///
    /// `since` must not be earlier than the end of any write the caller's
    /// operation made before this read (its own write must be visible to it).
    pub(crate) async fn read_index_since(
        &self,
        target: NodeId,
        group: u64,
        since: Instant,
    ) -> Option<u64> {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut batches = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(&(started, index)) = batches.last.get(&group) {
                if started > since {
                    return Some(index);
                }
            }
            let t = batches.targets.entry(target).or_default();
            t.waiting.push((group, tx));
            !std::mem::replace(&mut t.running, true)
        };
        if start {
            tokio::spawn(drive(
                Arc::clone(&self.state),
                Arc::clone(&self.round),
                target,
            ));
        }
        rx.await.ok().flatten()
    }
}

/// Runs `target`'s rounds while reads wait for it, each round serving the reads
/// that were waiting when it started.
async fn drive(state: Arc<Mutex<Batches>>, round: Arc<Round>, target: NodeId) {
    // If a round panics, the target is left idle and the reads still waiting for
    // it fail rather than hang. Disarmed on the normal way out, which goes idle
    // under the lock: a reader arriving just after starts a new task, undisturbed.
    let mut idle = Idle {
        state: Arc::clone(&state),
        target,
        armed: true,
    };
    loop {
        let batch = {
            let mut batches = state.lock().unwrap_or_else(PoisonError::into_inner);
            let t = batches.targets.entry(target).or_default();
            if t.waiting.is_empty() {
                t.running = false;
                idle.armed = false;
                return;
            }
            std::mem::take(&mut t.waiting)
        };
        let mut groups: Vec<u64> = batch.iter().map(|(g, _)| *g).collect();
        groups.sort_unstable();
        groups.dedup();
        // Taken after every read of the batch began and before the round sends
        // anything.
        let started = Instant::now();
        let answers = tokio::time::timeout(ROUND_TIMEOUT, round(target, groups.clone()))
            .await
            .unwrap_or_default();
        let answer = |group: u64| {
            let i = groups.binary_search(&group).ok()?;
            answers.get(i).copied().flatten()
        };
        {
            let mut batches = state.lock().unwrap_or_else(PoisonError::into_inner);
            for &group in &groups {
                if let Some(index) = answer(group) {
                    let last = batches.last.entry(group).or_insert((started, index));
                    // Rounds of one group may overlap across a change of leader:
                    // keep the one that started last.
                    if last.0 <= started {
                        *last = (started, index);
                    }
                }
            }
        }
        for (group, reader) in batch {
            // A reader that gave up has dropped its receiver: nothing to do.
            let _ = reader.send(answer(group));
        }
    }
}

struct Idle {
    state: Arc<Mutex<Batches>>,
    target: NodeId,
    armed: bool,
}

impl Drop for Idle {
    fn drop(&mut self) {
        if self.armed {
            let mut batches = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(t) = batches.targets.get_mut(&self.target) {
                t.running = false;
                t.waiting.clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    const TARGET: NodeId = 1;
    const GROUP: u64 = 7;

    /// Rounds that take 20 ms and answer, for every group, the number of rounds
    /// started so far; each round's (target, groups) is recorded.
    type Log = Arc<Mutex<Vec<(NodeId, Vec<u64>)>>>;

    fn counting() -> (Arc<ReadBatcher>, Log) {
        let rounds = Arc::new(Mutex::new(Vec::new()));
        let r = Arc::clone(&rounds);
        let batcher = ReadBatcher::new(move |target, groups: Vec<u64>| {
            let n = {
                let mut r = r.lock().expect("rounds");
                r.push((target, groups.clone()));
                r.len() as u64
            };
            async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                vec![Some(n); groups.len()]
            }
        });
        (Arc::new(batcher), rounds)
    }

    fn count(rounds: &Mutex<Vec<(NodeId, Vec<u64>)>>) -> usize {
        rounds.lock().expect("rounds").len()
    }

    /// One read of `group` from `target` on a task of its own.
    fn spawn_read(
        b: &Arc<ReadBatcher>,
        target: NodeId,
        group: u64,
    ) -> tokio::task::JoinHandle<Option<u64>> {
        let b = Arc::clone(b);
        tokio::spawn(async move { b.read_index(target, group).await })
    }

    #[tokio::test]
    async fn a_lone_read_gets_a_round_of_its_own() {
        let (b, rounds) = counting();
        assert_eq!(b.read_index(TARGET, GROUP).await, Some(1));
        assert_eq!(b.read_index(TARGET, GROUP).await, Some(2));
        assert_eq!(count(&rounds), 2);
    }

    #[tokio::test]
    async fn concurrent_reads_share_rounds_that_started_after_they_began() {
        let (b, rounds) = counting();
        // The first read starts round 1; the 99 others arrive while it runs and
        // must all be served by round 2, never by round 1.
        let first = spawn_read(&b, TARGET, GROUP);
        tokio::time::sleep(Duration::from_millis(5)).await;
        let later: Vec<_> = (0..99).map(|_| spawn_read(&b, TARGET, GROUP)).collect();
        assert_eq!(first.await.expect("task"), Some(1));
        for r in later {
            assert_eq!(r.await.expect("task"), Some(2));
        }
        assert_eq!(count(&rounds), 2, "100 reads, two rounds");
    }

    #[tokio::test]
    async fn the_reads_of_every_group_waiting_for_a_target_share_its_next_round() {
        let (b, rounds) = counting();
        let first = spawn_read(&b, TARGET, 0);
        tokio::time::sleep(Duration::from_millis(5)).await;
        let later: Vec<_> = [3, 0, 9, 3]
            .into_iter()
            .map(|g| spawn_read(&b, TARGET, g))
            .collect();
        assert_eq!(first.await.expect("task"), Some(1));
        for r in later {
            assert_eq!(r.await.expect("task"), Some(2));
        }
        let rounds = rounds.lock().expect("rounds").clone();
        assert_eq!(
            rounds,
            vec![(TARGET, vec![0]), (TARGET, vec![0, 3, 9])],
            "one round per target at a time, each group named once"
        );
    }

    #[tokio::test]
    async fn targets_run_their_rounds_independently() {
        let slow = Arc::new(ReadBatcher::new(|target, groups: Vec<u64>| async move {
            if target == 2 {
                tokio::time::sleep(ROUND_TIMEOUT * 2).await;
            }
            vec![Some(target); groups.len()]
        }));
        let stuck = spawn_read(&slow, 2, GROUP);
        tokio::time::sleep(Duration::from_millis(5)).await;
        let answered = tokio::time::timeout(ROUND_TIMEOUT / 2, slow.read_index(3, 4)).await;
        assert_eq!(answered, Ok(Some(3)), "target 3 is not held up by target 2");
        assert_eq!(stuck.await.expect("task"), None, "target 2 timed out");
    }

    #[tokio::test]
    async fn a_group_its_target_could_not_confirm_fails_alone() {
        let b = ReadBatcher::new(|_, groups: Vec<u64>| async move {
            groups.iter().map(|&g| (g != 5).then_some(g * 10)).collect()
        });
        let b = Arc::new(b);
        let (five, six) = tokio::join!(b.read_index(TARGET, 5), b.read_index(TARGET, 6));
        assert_eq!((five, six), (None, Some(60)));
        // A round that answers too few groups fails the ones it left out.
        let short = ReadBatcher::new(|_, _| async { vec![Some(1)] });
        let (a, z) = tokio::join!(short.read_index(TARGET, 1), short.read_index(TARGET, 2));
        assert_eq!((a, z), (Some(1), None));
    }

    #[tokio::test]
    async fn a_read_that_began_before_a_finished_round_started_is_served_by_it() {
        let (b, rounds) = counting();
        let began = Instant::now();
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert_eq!(
            b.read_index(TARGET, GROUP).await,
            Some(1),
            "round 1 starts after `began`"
        );
        assert_eq!(
            b.read_index_since(TARGET + 1, GROUP, began).await,
            Some(1),
            "no new round, whichever target the read names"
        );
        assert_eq!(
            b.read_index_since(TARGET, GROUP + 1, began).await,
            Some(2),
            "another group's round serves no read of this one"
        );
        assert_eq!(count(&rounds), 2);
    }

    #[tokio::test]
    async fn a_read_that_began_after_the_last_round_started_waits_for_a_new_one() {
        let (b, rounds) = counting();
        // The read begins while round 1 runs: round 1 cannot serve it, even when
        // it reaches the batcher after round 1 finished.
        let first = spawn_read(&b, TARGET, GROUP);
        tokio::time::sleep(Duration::from_millis(5)).await;
        let began = Instant::now();
        assert_eq!(first.await.expect("task"), Some(1));
        assert_eq!(b.read_index_since(TARGET, GROUP, began).await, Some(2));
        assert_eq!(
            b.read_index_since(TARGET, GROUP, Instant::now()).await,
            Some(3)
        );
        assert_eq!(count(&rounds), 3);
    }

    #[tokio::test]
    async fn a_failed_round_serves_no_later_read() {
        let calls = Arc::new(AtomicU64::new(0));
        let c = Arc::clone(&calls);
        let b = ReadBatcher::new(move |_, _| {
            let n = c.fetch_add(1, Ordering::SeqCst);
            async move { vec![(n > 0).then_some(n)] }
        });
        let began = Instant::now();
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert_eq!(b.read_index(TARGET, GROUP).await, None, "round 0 failed");
        assert_eq!(
            b.read_index_since(TARGET, GROUP, began).await,
            Some(1),
            "a new round"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn failed_slow_and_panicking_rounds_fail_their_reads_without_wedging() {
        let calls = Arc::new(AtomicU64::new(0));
        let c = Arc::clone(&calls);
        let b = ReadBatcher::new(move |_, _| {
            let n = c.fetch_add(1, Ordering::SeqCst);
            async move {
                match n {
                    0 => vec![None],
                    1 => {
                        tokio::time::sleep(ROUND_TIMEOUT * 2).await;
                        vec![Some(1)]
                    }
                    2 => panic!("a round panicked"),
                    _ => vec![Some(n)],
                }
            }
        });
        assert_eq!(b.read_index(TARGET, GROUP).await, None, "failed round");
        assert_eq!(b.read_index(TARGET, GROUP).await, None, "timed-out round");
        assert_eq!(b.read_index(TARGET, GROUP).await, None, "panicked round");
        assert_eq!(
            b.read_index(TARGET, GROUP).await,
            Some(3),
            "the batcher still works"
        );
    }
}
