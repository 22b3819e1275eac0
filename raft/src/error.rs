//! The errors of group writes, reads, status and init, serializable so a forwarding node relays them unchanged.

use serde::{Deserialize, Serialize};

/// Why a write, read or status call on a group failed. Serializable: a node that
/// forwarded a request relays the answering node's error unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum RaftNodeError {
    #[error("group {0} does not exist")]
    UnknownGroup(u64),
    /// Nothing was applied: no leader could be reached in time (election in
    /// progress, or a majority of the group's voters is down). Safe to retry.
    #[error("group {group} has no reachable leader (election in progress or quorum lost)")]
    NoLeader { group: u64 },
    /// The command may or may not have been applied (the connection broke or the
    /// deadline passed after it was handed to the leader).
    #[error("outcome unknown for group {group}: {detail}")]
    OutcomeUnknown { group: u64, detail: String },
    #[error("node is shutting down")]
    ShuttingDown,
    #[error("internal error: {0}")]
    Internal(String),
    /// The group is hard-pinned to a region this node is outside of: nothing of
    /// it may be read here, so the request must be served by the region's nodes
    /// (relayed whole, see [`crate::relay`]). Nothing was applied.
    #[error("group {group} is pinned to region {region}, which this node is outside of")]
    PinnedAway { group: u64, region: String },
}

impl RaftNodeError {
    /// True if the error guarantees that nothing was applied, so a retry is safe.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::NoLeader { .. })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("the cluster is already initialised (every group has a membership); nothing to do")]
    AlreadyInitialized,
    #[error(
        "node {node} is unreachable ({detail}); start every node of the cluster before `cairn init`"
    )]
    Unreachable { node: u64, detail: String },
    #[error("initialising group {group} on node {node} failed: {detail}")]
    Failed {
        group: u64,
        node: u64,
        detail: String,
    },
}
