//! Write batching: concurrent writes share one downstream call.
//!
//! A [`Batcher`] keeps at most `max_in_flight` calls of its [`Sink`] running; the
//! writes that arrive while all are taken go out together in the next call, and
//! each caller gets its own answer. Under load one call serves many writes; a write
//! that finds a free slot goes out at once. Two sinks use it: proposing to the
//! local Raft group (`propose_batch`: one log entry, one fsync, one replication
//! round per batch) and forwarding to the group's leader (`forward_batch`: one
//! peer RPC per batch).
//!
//! A write still queued after [`MAX_QUEUED`] (the downstream is not answering:
//! quorum lost?) is withdrawn and answered "no leader" without being sent, so
//! callers and forwarding peers get a safe-to-retry answer within their
//! deadlines, however long the calls in flight take; a write whose caller went
//! away is dropped unsent.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::error::RaftNodeError;
use crate::types::{Command, Outcome};

/// How long a write may wait for a slot before it is answered "no leader".
pub(crate) const MAX_QUEUED: Duration = Duration::from_secs(2);

/// One write's answer.
pub(crate) type Reply = Result<Outcome, RaftNodeError>;

/// Where a batch goes.
pub(crate) trait Sink: Send + Sync + 'static {
    /// Sends `cmds` (in order) and returns one answer per command, or one error
    /// for all of them.
    fn flush(
        &self,
        cmds: Vec<Command>,
    ) -> impl Future<Output = Result<Vec<Reply>, RaftNodeError>> + Send;
}

/// A batcher's limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Most calls of the sink running at once.
    pub(crate) in_flight: usize,
    /// Most writes in one call.
    pub(crate) commands: usize,
    /// Most encoded bytes of writes in one call (a larger single write goes alone).
    pub(crate) bytes: usize,
}

struct Pending {
    /// Names the write in its queue (to withdraw it).
    id: u64,
    cmd: Command,
    bytes: usize,
    queued: Instant,
    reply: oneshot::Sender<Reply>,
}

#[derive(Default)]
struct Queue {
    /// Driver tasks running, each with at most one call in flight.
    drivers: usize,
    next_id: u64,
    waiting: VecDeque<Pending>,
}

/// Batches writes into calls of `S` (see the module doc).
pub(crate) struct Batcher<S: Sink> {
    sink: Arc<S>,
    group: u64,
    limits: Limits,
    queue: Arc<Mutex<Queue>>,
}

impl<S: Sink> Batcher<S> {
    pub(crate) fn new(sink: S, group: u64, limits: Limits) -> Self {
        Self {
            sink: Arc::new(sink),
            group,
            limits,
            queue: Arc::new(Mutex::new(Queue::default())),
        }
    }

    /// Sends `cmd` (with whatever else is waiting) and returns its answer.
    pub(crate) async fn submit(&self, cmd: Command) -> Reply {
        let bytes =
            cairn_storage::codec::encode("command", &cmd).map_or(self.limits.bytes, |b| b.len());
        let (reply, mut answer) = oneshot::channel();
        let (id, start) = {
            let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            let id = q.next_id;
            q.next_id = q.next_id.wrapping_add(1);
            q.waiting.push_back(Pending {
                id,
                cmd,
                bytes,
                queued: Instant::now(),
                reply,
            });
            let start = q.drivers < self.limits.in_flight;
            if start {
                q.drivers += 1;
            }
            (id, start)
        };
        if start {
            // The guard exists before the task: a task dropped before it first
            // runs (runtime shutdown) still gives its slot back.
            let idle = Idle {
                queue: Arc::clone(&self.queue),
                armed: true,
            };
            tokio::spawn(drive(
                Arc::clone(&self.sink),
                self.group,
                self.limits,
                Arc::clone(&self.queue),
                idle,
            ));
        }
        tokio::select! {
            a = &mut answer => return self.answered(a),
            () = tokio::time::sleep(MAX_QUEUED) => {}
        }
        {
            // Still queued, so never sent: withdraw it.
            let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(at) = q.waiting.iter().position(|p| p.id == id) {
                q.waiting.remove(at);
                return Err(RaftNodeError::NoLeader { group: self.group });
            }
        }
        // Sent (or being answered): its outcome is the downstream's.
        self.answered(answer.await)
    }

    fn answered(&self, answer: Result<Reply, oneshot::error::RecvError>) -> Reply {
        answer.unwrap_or_else(|_| {
            Err(RaftNodeError::OutcomeUnknown {
                group: self.group,
                detail: "the batching task stopped".to_owned(),
            })
        })
    }
}

/// If a driver ends abnormally (a panic), it is counted out; if it was the last,
/// waiting writes are answered (dropped senders: "outcome unknown"), never left
/// hanging.
struct Idle {
    queue: Arc<Mutex<Queue>>,
    armed: bool,
}

impl Drop for Idle {
    fn drop(&mut self) {
        if self.armed {
            let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            q.drivers = q.drivers.saturating_sub(1);
            if q.drivers == 0 {
                q.waiting.clear();
            }
        }
    }
}

async fn drive<S: Sink>(
    sink: Arc<S>,
    group: u64,
    limits: Limits,
    queue: Arc<Mutex<Queue>>,
    mut idle: Idle,
) {
    loop {
        let batch = {
            let mut q = queue.lock().unwrap_or_else(PoisonError::into_inner);
            prune(&mut q.waiting, group, Instant::now());
            if q.waiting.is_empty() {
                q.drivers = q.drivers.saturating_sub(1);
                idle.armed = false;
                return;
            }
            take_batch(&mut q.waiting, limits)
        };
        let (cmds, replies): (Vec<Command>, Vec<_>) =
            batch.into_iter().map(|p| (p.cmd, p.reply)).unzip();
        match sink.flush(cmds).await {
            Ok(answers) if answers.len() == replies.len() => {
                for (reply, answer) in replies.into_iter().zip(answers) {
                    let _ = reply.send(answer);
                }
            }
            Ok(answers) => {
                tracing::error!(
                    group,
                    writes = replies.len(),
                    answers = answers.len(),
                    "a batch was answered with the wrong number of results"
                );
                let e = RaftNodeError::OutcomeUnknown {
                    group,
                    detail: "batch answer mismatch".to_owned(),
                };
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Drops writes whose caller went away (they are not sent) and answers writes
/// queued longer than [`MAX_QUEUED`] "no leader", unsent.
fn prune(waiting: &mut VecDeque<Pending>, group: u64, now: Instant) {
    waiting.retain_mut(|p| {
        if p.reply.is_closed() {
            return false;
        }
        if now.saturating_duration_since(p.queued) > MAX_QUEUED {
            let (expired, _) = oneshot::channel();
            let reply = std::mem::replace(&mut p.reply, expired);
            let _ = reply.send(Err(RaftNodeError::NoLeader { group }));
            return false;
        }
        true
    });
}

/// The next batch: writes from the front of the queue, within the limits (at
/// least one).
fn take_batch(waiting: &mut VecDeque<Pending>, limits: Limits) -> Vec<Pending> {
    let mut batch = Vec::new();
    let mut bytes = 0usize;
    while let Some(next) = waiting.front() {
        if !batch.is_empty()
            && (batch.len() >= limits.commands || bytes.saturating_add(next.bytes) > limits.bytes)
        {
            break;
        }
        bytes = bytes.saturating_add(next.bytes);
        if let Some(p) = waiting.pop_front() {
            batch.push(p);
        }
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const LIMITS: Limits = Limits {
        in_flight: 2,
        commands: 256,
        bytes: 1 << 20,
    };

    /// A write the batcher can tell apart by `n` without knowing any feature: a
    /// batch of `n` empty batches (never applied here, only carried).
    fn cmd(n: u8) -> Command {
        Command::Batch(vec![Command::Batch(Vec::new()); usize::from(n)])
    }

    /// The answer `Echo` gives `cmd(n)`.
    fn answer(n: usize) -> Outcome {
        Outcome::Batch(vec![Outcome::None; n])
    }

    fn pending(bytes: usize, queued: Instant, reply: oneshot::Sender<Reply>) -> Pending {
        Pending {
            id: 0,
            cmd: cmd(0),
            bytes,
            queued,
            reply,
        }
    }

    #[test]
    fn abandoned_writes_are_dropped_and_stale_ones_answered_unsent() {
        let now = Instant::now();
        let (live, mut live_answer) = oneshot::channel();
        let (gone, gone_answer) = oneshot::channel();
        drop(gone_answer);
        let (stale, mut stale_answer) = oneshot::channel();
        let mut q: VecDeque<Pending> = [
            pending(1, now, live),
            pending(1, now, gone),
            pending(1, now.checked_sub(MAX_QUEUED * 2).unwrap_or(now), stale),
        ]
        .into_iter()
        .collect();
        prune(&mut q, 7, now);
        assert_eq!(q.len(), 1, "only the live write stays queued");
        assert_eq!(
            stale_answer.try_recv().ok(),
            Some(Err(RaftNodeError::NoLeader { group: 7 })),
            "safe to retry: it was never sent"
        );
        assert!(live_answer.try_recv().is_err(), "the live write waits on");
    }

    #[test]
    fn batches_respect_the_count_and_byte_limits_and_keep_order() {
        let put = |bytes| pending(bytes, Instant::now(), oneshot::channel().0);
        let mut q: VecDeque<Pending> = (0..600).map(|_| put(10)).collect();
        assert_eq!(take_batch(&mut q, LIMITS).len(), LIMITS.commands);
        assert_eq!(q.len(), 600 - LIMITS.commands);

        let max = LIMITS.bytes;
        let mut q: VecDeque<Pending> = [max / 2, max / 2, 1, max * 3, 5]
            .into_iter()
            .map(put)
            .collect();
        let sizes = |b: Vec<Pending>| b.iter().map(|p| p.bytes).collect::<Vec<_>>();
        assert_eq!(sizes(take_batch(&mut q, LIMITS)), [max / 2, max / 2]);
        assert_eq!(
            sizes(take_batch(&mut q, LIMITS)),
            [1],
            "the next would exceed the cap"
        );
        assert_eq!(
            sizes(take_batch(&mut q, LIMITS)),
            [max * 3],
            "an oversized write goes alone"
        );
        assert_eq!(sizes(take_batch(&mut q, LIMITS)), [5]);
        assert!(take_batch(&mut q, LIMITS).is_empty());
    }

    /// Replys each command with its key's first byte as a revision, after a
    /// pause, and records the size of every call.
    struct Echo {
        calls: Mutex<Vec<usize>>,
        running: AtomicUsize,
        most_running: AtomicUsize,
    }

    impl Sink for Echo {
        async fn flush(&self, cmds: Vec<Command>) -> Result<Vec<Reply>, RaftNodeError> {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_running.fetch_max(now, Ordering::SeqCst);
            self.calls
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(cmds.len());
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.running.fetch_sub(1, Ordering::SeqCst);
            Ok(cmds
                .iter()
                .map(|c| match c {
                    Command::Batch(inner) => Ok(answer(inner.len())),
                    _ => Err(RaftNodeError::Internal("unexpected".to_owned())),
                })
                .collect())
        }
    }

    fn echo() -> Echo {
        Echo {
            calls: Mutex::new(Vec::new()),
            running: AtomicUsize::new(0),
            most_running: AtomicUsize::new(0),
        }
    }

    #[tokio::test]
    async fn concurrent_writes_share_calls_and_each_gets_its_own_answer() {
        let b = Arc::new(Batcher::new(echo(), 1, LIMITS));
        // One write a millisecond, each call taking 20 ms: the first writes find
        // free slots, the later ones queue behind the calls in flight.
        let mut tasks = Vec::new();
        for n in 0..100u8 {
            let b2 = Arc::clone(&b);
            tasks.push(tokio::spawn(async move { (n, b2.submit(cmd(n)).await) }));
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        for t in tasks {
            let (n, reply) = t.await.expect("task");
            assert_eq!(reply, Ok(answer(usize::from(n))));
        }
        let calls = b
            .sink
            .calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        assert_eq!(calls.iter().sum::<usize>(), 100, "every write sent once");
        assert_eq!(calls[0], 1, "a write that finds a free slot goes at once");
        assert!(calls.len() > 2 && calls.len() < 50, "batched: {calls:?}");
        assert_eq!(
            b.sink.most_running.load(Ordering::SeqCst),
            LIMITS.in_flight,
            "the slots were all used, never more"
        );
    }

    /// Never answers.
    struct Stuck {
        sent: Mutex<Vec<usize>>,
    }

    impl Sink for Stuck {
        async fn flush(&self, cmds: Vec<Command>) -> Result<Vec<Reply>, RaftNodeError> {
            self.sent
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(cmds.len());
            std::future::pending().await
        }
    }

    #[tokio::test]
    async fn a_write_queued_behind_stuck_calls_is_withdrawn_unsent() {
        let limits = Limits {
            in_flight: 1,
            ..LIMITS
        };
        let b = Arc::new(Batcher::new(
            Stuck {
                sent: Mutex::new(Vec::new()),
            },
            9,
            limits,
        ));
        let stuck = {
            let b = Arc::clone(&b);
            tokio::spawn(async move { b.submit(cmd(1)).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = Instant::now();
        assert_eq!(
            b.submit(cmd(2)).await,
            Err(RaftNodeError::NoLeader { group: 9 }),
            "never sent: safe to retry"
        );
        assert!(started.elapsed() < MAX_QUEUED + Duration::from_secs(1));
        assert_eq!(
            *b.sink.sent.lock().unwrap_or_else(PoisonError::into_inner),
            [1],
            "only the first write was sent"
        );
        stuck.abort();
    }
}
