//! Proposal batching: concurrent writes to one group led by this node share a
//! Raft entry.
//!
//! openraft 0.9 appends every proposal on its own and awaits that append's fsync
//! inside the group's core, so one entry per client write bounds a group at
//! roughly one fsync per write. Here a [`ProposalBatcher`] keeps at most
//! [`MAX_IN_FLIGHT`] proposals of its group in flight; the writes that arrive
//! while all are taken are proposed together as one [`Command::Batch`] entry,
//! applied in order (each with its own revision, see `state_machine`), and each
//! caller gets its own result (the queueing is [`crate::batch`]'s). Under load
//! one entry, one fsync and one replication round serve many writes; a write that
//! finds a free slot is proposed at once, as before.
//!
//! A batch is proposed only while this node's metrics say it leads; otherwise
//! every write in it is answered [`RaftNodeError::NoLeader`] (nothing was
//! proposed: safe to retry through the new leader). Once proposed, the outcome
//! rules of a single write apply to the whole batch.

use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};

use crate::batch::{Batcher, Limits, Reply, Sink};
use crate::error::RaftNodeError;
use crate::types::{Command, NodeId, Outcome, Raft};

/// Most proposals of one group in flight from this node.
const MAX_IN_FLIGHT: usize = 4;

/// Batches this node's proposals to one group (see the module doc).
pub(crate) struct ProposalBatcher {
    batcher: Batcher<Proposer>,
}

impl ProposalBatcher {
    pub(crate) fn new(id: NodeId, group: u64, raft: Raft, commit_timeout: Duration) -> Self {
        let proposer = Proposer {
            id,
            group,
            raft,
            commit_timeout,
        };
        let limits = Limits {
            in_flight: MAX_IN_FLIGHT,
            // Each write in an entry needs its own sequence number.
            commands: crate::state_machine::COMMANDS_PER_ENTRY,
            bytes: 1 << 20,
        };
        Self {
            batcher: Batcher::new(proposer, group, limits),
        }
    }

    /// Proposes `cmd` (with whatever else is waiting) and returns what applying it
    /// decided.
    ///
    /// # Errors
    /// [`RaftNodeError::NoLeader`] if this node no longer led when the batch was
    /// due (nothing proposed); [`RaftNodeError::OutcomeUnknown`] if the entry may
    /// or may not commit; [`RaftNodeError::Internal`] on a membership error.
    pub(crate) async fn propose(&self, cmd: Command) -> Result<Outcome, RaftNodeError> {
        if matches!(cmd, Command::Batch(_)) {
            // Batches are formed here, never accepted from callers or peers.
            return Err(RaftNodeError::Internal(
                "a batch cannot be proposed as a write".to_owned(),
            ));
        }
        self.batcher.submit(cmd).await
    }
}

/// Proposes batches to the local group while this node leads it.
struct Proposer {
    id: NodeId,
    group: u64,
    raft: Raft,
    commit_timeout: Duration,
}

impl Sink for Proposer {
    async fn flush(&self, mut cmds: Vec<Command>) -> Result<Vec<Reply>, RaftNodeError> {
        let entry = if cmds.len() == 1 {
            cmds.pop().unwrap_or(Command::Batch(Vec::new()))
        } else {
            Command::Batch(cmds)
        };
        Ok(match self.propose(entry).await? {
            Outcome::Batch(results) => results.into_iter().map(Ok).collect(),
            // A single write, proposed as itself.
            result => vec![Ok(result)],
        })
    }
}

impl Proposer {
    /// Proposes one entry while this node leads.
    async fn propose(&self, entry: Command) -> Result<Outcome, RaftNodeError> {
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
