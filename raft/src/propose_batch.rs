//! Proposal batching: concurrent writes to one group led by this node share a
//! Raft entry.
//!
//! openraft 0.9 appends every proposal on its own and awaits that append's fsync
//! inside the group's core, so one entry per client write bounds a group at
//! roughly one fsync per write. Here a [`ProposalBatcher`] keeps at most
//! [`MAX_IN_FLIGHT`] proposals of its group in flight; the writes that arrive
//! while all are taken are proposed together as one [`Command::Batch`] entry,
//! applied in order (each with its own revision, see `state_machine`), and each
//! caller gets its own result. Under load one entry, one fsync and one
//! replication round serve many writes; a write that finds a free slot is proposed
//! at once, as before.
//!
//! A batch is proposed only while this node's metrics say it leads; otherwise
//! every write in it is answered [`RaftNodeError::NoLeader`] (nothing was
//! proposed: safe to retry through the new leader). Once proposed, the outcome
//! rules of a single write apply to the whole batch.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, RaftError};
use tokio::sync::oneshot;

use crate::error::RaftNodeError;
use crate::types::{Command, CommandResult, NodeId, Raft};

/// Most proposals of one group in flight from this node.
const MAX_IN_FLIGHT: usize = 4;
/// Most writes in one entry (each needs its own sequence number).
const MAX_COMMANDS: usize = crate::state_machine::COMMANDS_PER_ENTRY;
/// Most encoded bytes of writes in one entry (a larger single write goes alone).
const MAX_BYTES: usize = 1 << 20;
/// A write still queued after this long (the group is not committing: quorum
/// lost?) is answered "no leader" without being proposed, so callers and
/// forwarding peers get a safe-to-retry answer within their deadlines.
const MAX_QUEUED: Duration = Duration::from_secs(2);

type Reply = oneshot::Sender<Result<CommandResult, RaftNodeError>>;

struct Pending {
    cmd: Command,
    bytes: usize,
    queued: Instant,
    reply: Reply,
}

#[derive(Default)]
struct Queue {
    /// Driver tasks running, each with at most one proposal in flight.
    drivers: usize,
    waiting: VecDeque<Pending>,
}

/// Batches this node's proposals to one group (see the module doc).
pub(crate) struct ProposalBatcher {
    id: NodeId,
    group: u64,
    raft: Raft,
    commit_timeout: Duration,
    queue: Arc<Mutex<Queue>>,
}

impl ProposalBatcher {
    pub(crate) fn new(id: NodeId, group: u64, raft: Raft, commit_timeout: Duration) -> Self {
        Self {
            id,
            group,
            raft,
            commit_timeout,
            queue: Arc::new(Mutex::new(Queue::default())),
        }
    }

    /// Proposes `cmd` (with whatever else is waiting) and returns what applying it
    /// decided.
    ///
    /// # Errors
    /// [`RaftNodeError::NoLeader`] if this node no longer led when the batch was
    /// due (nothing proposed); [`RaftNodeError::OutcomeUnknown`] if the entry may
    /// or may not commit; [`RaftNodeError::Internal`] on a membership error.
    pub(crate) async fn propose(&self, cmd: Command) -> Result<CommandResult, RaftNodeError> {
        if matches!(cmd, Command::Batch(_)) {
            // Batches are formed here, never accepted from callers or peers.
            return Err(RaftNodeError::Internal(
                "a batch cannot be proposed as a write".to_owned(),
            ));
        }
        let bytes = cairn_storage::codec::encode("command", &cmd).map_or(MAX_BYTES, |b| b.len());
        let (reply, answer) = oneshot::channel();
        let start = {
            let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            q.waiting.push_back(Pending {
                cmd,
                bytes,
                queued: Instant::now(),
                reply,
            });
            let start = q.drivers < MAX_IN_FLIGHT;
            if start {
                q.drivers += 1;
            }
            start
        };
        if start {
            // The guard exists before the task: a task dropped before it first
            // runs (runtime shutdown) still gives its slot back.
            let idle = Idle {
                queue: Arc::clone(&self.queue),
                armed: true,
            };
            tokio::spawn(drive(
                Driver {
                    id: self.id,
                    group: self.group,
                    raft: self.raft.clone(),
                    commit_timeout: self.commit_timeout,
                    queue: Arc::clone(&self.queue),
                },
                idle,
            ));
        }
        answer.await.unwrap_or_else(|_| {
            Err(RaftNodeError::OutcomeUnknown {
                group: self.group,
                detail: "the proposal task stopped".to_owned(),
            })
        })
    }
}

struct Driver {
    id: NodeId,
    group: u64,
    raft: Raft,
    commit_timeout: Duration,
    queue: Arc<Mutex<Queue>>,
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

async fn drive(d: Driver, mut idle: Idle) {
    loop {
        let batch = {
            let mut q = d.queue.lock().unwrap_or_else(PoisonError::into_inner);
            prune(&mut q.waiting, d.group, Instant::now());
            if q.waiting.is_empty() {
                q.drivers = q.drivers.saturating_sub(1);
                idle.armed = false;
                return;
            }
            take_batch(&mut q.waiting)
        };
        d.run(batch).await;
    }
}

/// Drops writes whose caller went away (they are not proposed) and answers writes
/// queued longer than [`MAX_QUEUED`] "no leader", unproposed.
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
fn take_batch(waiting: &mut VecDeque<Pending>) -> Vec<Pending> {
    let mut batch = Vec::new();
    let mut bytes = 0usize;
    while let Some(next) = waiting.front() {
        if !batch.is_empty()
            && (batch.len() >= MAX_COMMANDS || bytes.saturating_add(next.bytes) > MAX_BYTES)
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

impl Driver {
    async fn run(&self, batch: Vec<Pending>) {
        let (mut cmds, replies): (Vec<Command>, Vec<Reply>) =
            batch.into_iter().map(|p| (p.cmd, p.reply)).unzip();
        let entry = if cmds.len() == 1 {
            cmds.pop().unwrap_or(Command::Batch(Vec::new()))
        } else {
            Command::Batch(cmds)
        };
        match self.propose(entry).await {
            Ok(CommandResult::Batch(results)) if results.len() == replies.len() => {
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(Ok(result));
                }
            }
            Ok(CommandResult::Batch(results)) => {
                tracing::error!(
                    group = self.group,
                    writes = replies.len(),
                    results = results.len(),
                    "a batch entry answered the wrong number of results"
                );
                let e = RaftNodeError::Internal("batch result mismatch".to_owned());
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
            Ok(result) => {
                // A single write, proposed as itself.
                for reply in replies {
                    let _ = reply.send(Ok(result.clone()));
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }

    /// Proposes one entry while this node leads.
    async fn propose(&self, entry: Command) -> Result<CommandResult, RaftNodeError> {
        if self.raft.metrics().borrow().current_leader != Some(self.id) {
            return Err(RaftNodeError::NoLeader { group: self.group });
        }
        let unknown = |detail: &str| RaftNodeError::OutcomeUnknown {
            group: self.group,
            detail: detail.to_owned(),
        };
        match tokio::time::timeout(self.commit_timeout, self.raft.client_write(entry)).await {
            Ok(Ok(resp)) => Ok(resp.data),
            // openraft answers `ForwardToLeader` both when leadership was lost
            // before the proposal and when the proposed entry was truncated by a
            // new leader, which may still commit it if another node holds it.
            // Forwarding the writes again could apply them twice.
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))) => {
                Err(unknown("leadership changed while the write was in flight"))
            }
            Ok(Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e)))) => {
                Err(RaftNodeError::Internal(e.to_string()))
            }
            // The group stopped (shutdown or storage failure); the entry may
            // already have reached followers.
            Ok(Err(RaftError::Fatal(_))) => {
                Err(unknown("the group stopped while the write was in flight"))
            }
            Err(_elapsed) => Err(unknown("not committed within the deadline (quorum lost?)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_storage::KvCommand;

    fn put(bytes: usize) -> Pending {
        let (reply, _answer) = oneshot::channel();
        Pending {
            cmd: Command::Kv(KvCommand::Delete {
                tenant: "t".to_owned(),
                key: vec![0; 4],
                expected_revision: None,
            }),
            bytes,
            queued: Instant::now(),
            reply,
        }
    }

    #[test]
    fn abandoned_writes_are_dropped_and_stale_ones_answered_unproposed() {
        let now = Instant::now();
        let (live, mut live_answer) = oneshot::channel();
        let (gone, gone_answer) = oneshot::channel();
        drop(gone_answer);
        let (stale, mut stale_answer) = oneshot::channel();
        let pending = |reply: Reply, queued: Instant| Pending {
            cmd: Command::Batch(Vec::new()),
            bytes: 1,
            queued,
            reply,
        };
        let mut q: VecDeque<Pending> = [
            pending(live, now),
            pending(gone, now),
            pending(stale, now.checked_sub(MAX_QUEUED * 2).unwrap_or(now)),
        ]
        .into_iter()
        .collect();
        prune(&mut q, 7, now);
        assert_eq!(q.len(), 1, "only the live write stays queued");
        assert_eq!(
            stale_answer.try_recv().ok(),
            Some(Err(RaftNodeError::NoLeader { group: 7 })),
            "safe to retry: it was never proposed"
        );
        assert!(live_answer.try_recv().is_err(), "the live write waits on");
    }

    #[test]
    fn batches_respect_the_count_and_byte_limits_and_keep_order() {
        let mut q: VecDeque<Pending> = (0..600).map(|_| put(10)).collect();
        assert_eq!(take_batch(&mut q).len(), MAX_COMMANDS);
        assert_eq!(q.len(), 600 - MAX_COMMANDS);

        let mut q: VecDeque<Pending> = [MAX_BYTES / 2, MAX_BYTES / 2, 1, MAX_BYTES * 3, 5]
            .into_iter()
            .map(put)
            .collect();
        let sizes = |b: Vec<Pending>| b.iter().map(|p| p.bytes).collect::<Vec<_>>();
        assert_eq!(sizes(take_batch(&mut q)), [MAX_BYTES / 2, MAX_BYTES / 2]);
        assert_eq!(
            sizes(take_batch(&mut q)),
            [1],
            "the next would exceed the cap"
        );
        assert_eq!(
            sizes(take_batch(&mut q)),
            [MAX_BYTES * 3],
            "an oversized write goes alone"
        );
        assert_eq!(sizes(take_batch(&mut q)), [5]);
        assert!(take_batch(&mut q).is_empty());
    }
}
