//! Leader leases: a leader that a quorum confirmed recently answers read indexes
//! without a new quorum round.
//!
//! A read index needs the leader to know that no other leader can have
//! acknowledged a write it has not applied. The round in
//! [`crate::read_batch`] proves that with a quorum of heartbeats for every batch of
//! reads. A lease proves it for a while from one round:
//!
//! - A follower that acknowledged a heartbeat refuses every vote request for
//!   openraft's `leader_lease` (= `election_timeout_max`) after *receiving* it, and
//!   receiving comes after the leader *sent* it. So if a round that began at `t`
//!   (its heartbeats were all sent after `t`) is confirmed by a quorum, no other
//!   node can win an election before `t + election_timeout_max`: every quorum
//!   holds a node that refuses to vote. The lease runs until
//!   `t + election_timeout_max / 2`: half is margin for clocks that run at
//!   slightly different rates on different machines.
//! - A follower that restarted no longer knows when it last heard from the
//!   leader. openraft 0.9.25 starts its vote clock at startup (so it refuses votes
//!   for `leader_lease` after it starts); independently of that, a node neither
//!   votes nor campaigns for `election_timeout_max` after it starts
//!   (`RaftNode::is_holding_votes`), and it started after acknowledging any
//!   heartbeat it acknowledged before.
//! - The leader itself may grant a higher vote and step down while its lease
//!   runs. It persists that vote (`save_vote`) before answering, and every
//!   persisted vote ends the lease ([`Lease::read_index`] compares the log store's
//!   vote counter with the one the lease was granted under).
//!
//! While the lease holds, the read index is the larger of the round's read index
//! (which covers this leader's first entry of its term, so everything committed by
//! earlier leaders) and the index of the last entry in the leader's log: no node
//! can have applied, and served a read from, a later entry. (Not the leader's
//! applied index: a follower may apply an entry before the leader does, and a
//! read served there must not be followed by an older read here. A chaos run
//! caught exactly that. Not openraft's commit index either: followers may learn
//! it before the log store hears of it.) A read may so wait for entries still
//! in flight to commit.
//!
//! Under load a read renews a lease that is past half its length with a round of
//! its own in the background; an idle leader lets it lapse, and the next read
//! pays for one round, as without leases.
//!
//! What this assumes, beyond openraft's behaviour above (re-check it on any
//! openraft upgrade; 0.10's leadership transfer elects without waiting out a
//! lease):
//! - every node runs with the same `[raft] election_timeout_max` (the cluster is
//!   configured from one file; lowering it must be done on all nodes at once, by a
//!   full restart, never node by node);
//! - a node's monotonic clock runs while its process is stopped (true of
//!   SIGSTOP and scheduling stalls; not of a suspended host, whose
//!   `CLOCK_MONOTONIC` stands still: do not suspend a host that runs a node).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::read_batch::ReadBatcher;
use crate::types::{NodeId, Raft};

/// When a confirmation round began, and under which persisted vote.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    start: Instant,
    votes: u64,
}

#[derive(Debug, Clone, Copy)]
struct Held {
    until: Instant,
    read_index: u64,
    votes: u64,
}

/// One group's leader lease on this node.
#[derive(Debug)]
pub(crate) struct Lease {
    length: Duration,
    /// Counts votes persisted by this node's log store for the group.
    votes: Arc<AtomicU64>,
    held: Mutex<Option<Held>>,
}

impl Lease {
    /// A lease of `length` (at most half of `election_timeout_max`), ended by any
    /// change of the `votes` counter.
    pub(crate) fn new(length: Duration, votes: Arc<AtomicU64>) -> Self {
        Self {
            length,
            votes,
            held: Mutex::new(None),
        }
    }

    /// Taken (`now`) before a confirmation round sends anything.
    pub(crate) fn ticket(&self, now: Instant) -> Ticket {
        Ticket {
            start: now,
            votes: self.votes.load(Ordering::Acquire),
        }
    }

    /// A quorum confirmed this node as leader in a round that began at `ticket`,
    /// and named `read_index`. No lease if this node's vote changed meanwhile.
    pub(crate) fn grant(&self, ticket: Ticket, read_index: u64) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if self.votes.load(Ordering::Acquire) != ticket.votes {
            return;
        }
        let until = ticket.start + self.length;
        *held = Some(match *held {
            Some(h) if h.votes == ticket.votes => Held {
                until: h.until.max(until),
                read_index: h.read_index.max(read_index),
                votes: h.votes,
            },
            _ => Held {
                until,
                read_index,
                votes: ticket.votes,
            },
        });
    }

    /// While the lease holds at `now`: the read index (`last`: the index of the
    /// last entry in this node's log now) and whether the lease is past half its
    /// length.
    pub(crate) fn read_index(&self, now: Instant, last: u64) -> Option<(u64, bool)> {
        let held = *self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let held = held?;
        if held.votes != self.votes.load(Ordering::Acquire) || now >= held.until {
            return None;
        }
        let renew = held.until - now < self.length / 2;
        Some((held.read_index.max(last), renew))
    }
}

/// Read indexes as only the leader can give them: from the lease while it holds,
/// else from a confirmation round (batched, and granting the lease).
pub(crate) struct LeaderReads {
    id: NodeId,
    group: u64,
    raft: Raft,
    lease: Arc<Lease>,
    confirms: Arc<ReadBatcher>,
    /// The index of the last entry in this node's log.
    last_log: Arc<AtomicU64>,
    renewing: Arc<AtomicBool>,
}

impl LeaderReads {
    pub(crate) fn new(
        id: NodeId,
        group: u64,
        raft: &Raft,
        lease: Lease,
        last_log: Arc<AtomicU64>,
    ) -> Self {
        let lease = Arc::new(lease);
        let confirms = {
            let (raft, lease) = (raft.clone(), Arc::clone(&lease));
            // Rounds of this one group, with this node as their only target.
            Arc::new(ReadBatcher::new(move |_, _| {
                let (raft, lease) = (raft.clone(), Arc::clone(&lease));
                async move {
                    let ticket = lease.ticket(Instant::now());
                    let index = raft
                        .get_read_log_id()
                        .await
                        .ok()
                        .map(|(read_log_id, _)| read_log_id.map_or(0, |l| l.index));
                    if let Some(index) = index {
                        lease.grant(ticket, index);
                    }
                    vec![index]
                }
            }))
        };
        Self {
            id,
            group,
            raft: raft.clone(),
            lease,
            confirms,
            last_log,
            renewing: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A read index obtained after this call began; `None` if this node could not
    /// confirm that it leads.
    pub(crate) async fn read_index(&self) -> Option<u64> {
        if self.raft.metrics().borrow().current_leader == Some(self.id) {
            let last = self.last_log.load(Ordering::Acquire);
            if let Some((index, renew)) = self.lease.read_index(Instant::now(), last) {
                if renew {
                    self.renew();
                }
                return Some(index);
            }
        }
        self.confirms.read_index(self.id, self.group).await
    }

    /// Starts one background round that extends the lease, unless one runs.
    fn renew(&self) {
        if self.renewing.swap(true, Ordering::AcqRel) {
            return;
        }
        let (renewing, confirms) = (Arc::clone(&self.renewing), Arc::clone(&self.confirms));
        let (id, group) = (self.id, self.group);
        tokio::spawn(async move {
            let _ = confirms.read_index(id, group).await;
            renewing.store(false, Ordering::Release);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn lease() -> (Lease, Arc<AtomicU64>) {
        let votes = Arc::new(AtomicU64::new(7));
        (Lease::new(300 * MS, Arc::clone(&votes)), votes)
    }

    #[test]
    fn a_lease_runs_from_the_start_of_its_round_and_no_longer() {
        let (lease, _) = lease();
        let t0 = Instant::now();
        assert_eq!(lease.read_index(t0, 0), None, "no round, no lease");
        let ticket = lease.ticket(t0);
        lease.grant(ticket, 40);
        let t = |ms: u32| t0 + ms * MS;
        assert_eq!(
            lease.read_index(t(100), 10),
            Some((40, false)),
            "the round's index"
        );
        assert_eq!(
            lease.read_index(t(100), 55),
            Some((55, false)),
            "or the last entry of the log"
        );
        assert_eq!(
            lease.read_index(t(160), 0),
            Some((40, true)),
            "past half: renew"
        );
        assert_eq!(lease.read_index(t(299), 0), Some((40, true)));
        assert_eq!(
            lease.read_index(t(300), 0),
            None,
            "300 ms after the round began"
        );
    }

    #[test]
    fn a_changed_vote_ends_the_lease_and_refuses_rounds_it_overlapped() {
        let (lease, votes) = lease();
        let t0 = Instant::now();
        lease.grant(lease.ticket(t0), 5);
        assert!(lease.read_index(t0, 0).is_some());
        votes.fetch_add(1, Ordering::AcqRel);
        assert_eq!(lease.read_index(t0, 0), None, "the vote changed");
        let ticket = lease.ticket(t0);
        votes.fetch_add(1, Ordering::AcqRel);
        lease.grant(ticket, 9);
        assert_eq!(
            lease.read_index(t0, 0),
            None,
            "the vote changed during the round"
        );
        lease.grant(lease.ticket(t0), 9);
        assert_eq!(lease.read_index(t0, 0), Some((9, false)));
    }

    #[test]
    fn a_later_round_extends_and_an_older_one_never_shortens() {
        let (lease, _) = lease();
        let t0 = Instant::now();
        let early = lease.ticket(t0);
        lease.grant(lease.ticket(t0 + 200 * MS), 20);
        lease.grant(early, 10);
        assert_eq!(lease.read_index(t0 + 450 * MS, 0), Some((20, true)));
        assert_eq!(lease.read_index(t0 + 500 * MS, 0), None);
    }
}
