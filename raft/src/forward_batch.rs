//! Forward batching: writes this node relays to a group's leader share peer
//! RPCs.
//!
//! A follower that receives a write forwards it to the leader. One RPC per write
//! made the leader spend more CPU on HTTP/2 framing than on the writes; here the
//! writes relayed to one (leader, group) go through a [`crate::batch::Batcher`]:
//! at most [`MAX_IN_FLIGHT`] `ForwardBatch` calls at a time, each carrying every write
//! that queued meanwhile. The leader proposes each write of a call on its own
//! (through its proposal batcher) and answers one result per write, in order.
//!
//! The outcome rules of a single forwarded write hold for each write of a call: a
//! call that certainly never left this node answers "no leader" (safe to retry);
//! a call that may have reached the leader but gave no answer leaves every write
//! in it "outcome unknown".

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::batch::{Batcher, Limits, Reply, Sink};
use crate::error::RaftNodeError;
use crate::network::{PeerCallError, Peers, Rpc};
use crate::types::{Command, NodeId};

/// Most `ForwardBatch` calls in flight from this node to one leader, per group.
const MAX_IN_FLIGHT: usize = 4;

/// Most writes in one call (the leader refuses larger calls).
pub(crate) const MAX_COMMANDS: usize = 256;

const LIMITS: Limits = Limits {
    in_flight: MAX_IN_FLIGHT,
    commands: MAX_COMMANDS,
    // A write is at most ~1 MiB; calls stay far below the 256 MiB peer limit.
    bytes: 8 << 20,
};

/// How long the leader may take over each write of a call whose deadline is
/// `timeout`: a write still undecided then is answered "outcome unknown" on its
/// own, so one slow write never costs the others of its call their answers.
pub(crate) fn answer_deadline(timeout: Duration) -> Duration {
    timeout.saturating_sub(Duration::from_millis(500))
}

/// Where a forwarded write goes: (target node, group, hops the call carries).
type Route = (NodeId, u64, u32);

/// This node's batchers of forwarded writes, one per route.
pub(crate) struct Forwarder {
    peers: Arc<Peers>,
    timeout: Duration,
    batchers: Mutex<HashMap<Route, Arc<Batcher<ForwardSink>>>>,
}

impl Forwarder {
    /// `timeout`: the deadline of one `ForwardBatch` call (the leader answers
    /// every write of a call within [`answer_deadline`]`(timeout)`).
    pub(crate) fn new(peers: Arc<Peers>, timeout: Duration) -> Self {
        Self {
            peers,
            timeout,
            batchers: Mutex::new(HashMap::new()),
        }
    }

    /// Relays `cmd` to `node` for `group` (`hops`: the hop count the call
    /// carries) and returns the answer the leader's log decided.
    pub(crate) async fn forward(&self, node: NodeId, group: u64, hops: u32, cmd: Command) -> Reply {
        let batcher = {
            let mut batchers = self.batchers.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(batchers.entry((node, group, hops)).or_insert_with(|| {
                let sink = ForwardSink {
                    peers: Arc::clone(&self.peers),
                    timeout: self.timeout,
                    node,
                    group,
                    hops,
                };
                Arc::new(Batcher::new(sink, group, LIMITS))
            }))
        };
        batcher.submit(cmd).await
    }
}

struct ForwardSink {
    peers: Arc<Peers>,
    timeout: Duration,
    node: NodeId,
    group: u64,
    hops: u32,
}

impl Sink for ForwardSink {
    async fn flush(&self, cmds: Vec<Command>) -> Result<Vec<Reply>, RaftNodeError> {
        let reply: Result<Vec<Reply>, PeerCallError> = self
            .peers
            .call(
                self.node,
                Rpc::ForwardBatch,
                self.group,
                self.hops,
                &cmds,
                self.timeout,
            )
            .await;
        reply.map_err(|e| match e {
            PeerCallError::NotSent { .. } => RaftNodeError::NoLeader { group: self.group },
            e => RaftNodeError::OutcomeUnknown {
                group: self.group,
                detail: e.to_string(),
            },
        })
    }
}
