//! What `cairn status` and `/v1/cluster/status` show per group: leader, term, indexes, peer progress.

use serde::{Deserialize, Serialize};

/// One group as seen from this node (the `/v1/cluster/status` and `cairn status` rows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupStatus {
    /// The group's name: `meta`, or the region's name for a region's data group.
    pub group: String,
    pub group_id: u64,
    pub region: Option<String>,
    pub residency: Option<String>,
    /// This node's role: leader, follower, candidate or learner.
    pub role: String,
    pub leader: Option<u64>,
    pub term: u64,
    pub commit_index: u64,
    pub applied_index: u64,
    pub last_log_index: u64,
    /// Last index covered by this node's current snapshot.
    pub snapshot_index: Option<u64>,
    /// Entries up to here were removed from this node's log.
    pub purged_index: Option<u64>,
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
    /// Voters placed from outside the region (best-effort regions).
    pub borrowed: Vec<u64>,
    /// Replication progress of every member; only present where this node leads.
    pub replication: Vec<PeerProgress>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerProgress {
    pub node: u64,
    pub matched_index: Option<u64>,
    /// Entries this member is behind the leader's last log index.
    pub lag: u64,
}
