//! The node and its cluster as the operator drives them: readiness, status,
//! `cairn init`, compaction, and (with `[debug] fault_injection`) partitions.

use cairn_cluster_config::META_GROUP;
use cairn_raft::{GroupStatus, InitError};
use cairn_storage::sm::cluster::{SetWireVersion, FIRST_WIRE_VERSION, WIRE_VERSION};

use super::core::{Call, Core, WorkCounts};
use crate::error::ServiceError;

/// This node as `/v1/cluster/status` shows it.
#[derive(Debug)]
pub struct NodeStatus {
    pub id: u64,
    pub region: String,
    pub cluster: String,
    pub ready: bool,
    /// Admitted by `cairn init`: only admitted nodes vote (a data dir created
    /// after init, e.g. a wiped disk, is not).
    pub admitted: bool,
    pub groups: Vec<GroupStatus>,
    pub wire_version: WireVersions,
    /// Expensive work done since the node started (counts).
    pub work: WorkCounts,
}

/// The log entry formats: what this node's binary decodes, and what the
/// cluster writes (as this node's `meta` replica shows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireVersions {
    pub node: u32,
    pub cluster: u32,
}

/// The node and cluster operations.
#[derive(Clone)]
pub struct ClusterService {
    core: Core,
}

impl ClusterService {
    #[must_use]
    pub fn new(core: Core) -> Self {
        Self { core }
    }

    /// This node's id.
    #[must_use]
    pub fn node_id(&self) -> u64 {
        self.core.node_id()
    }

    /// Whether this node knows a leader for every group it belongs to (anyone).
    #[must_use]
    pub fn ready(&self, _call: &Call) -> bool {
        self.core.raft().is_ready()
    }

    /// This node and its view of every group (operator).
    ///
    /// # Errors
    /// Not the operator.
    pub fn status(&self, call: &Call) -> Result<NodeStatus, ServiceError> {
        call.operator()?;
        let raft = self.core.raft();
        let region = self
            .core
            .config()
            .node(self.core.node_id())
            .map(|n| n.region.clone())
            .unwrap_or_default();
        Ok(NodeStatus {
            id: self.core.node_id(),
            region,
            cluster: self.core.config().cluster_name.clone(),
            ready: raft.is_ready(),
            admitted: raft.is_admitted(),
            groups: raft.status(),
            wire_version: WireVersions {
                node: WIRE_VERSION,
                cluster: self.core.wire_version(),
            },
            work: self.core.work().snapshot(),
        })
    }

    /// Raises the cluster's wire version to `version` (operator): the caller
    /// (`cairn init`, `cairn finalize-upgrade`) has checked that every node's
    /// binary decodes it. Returns the cluster's version after the change (never
    /// lower than before).
    ///
    /// # Errors
    /// Not the operator; `invalid_request` for a version this binary does not
    /// speak; `meta` unavailable.
    pub async fn set_wire_version(&self, call: &Call, version: u32) -> Result<u32, ServiceError> {
        call.operator()?;
        if !(FIRST_WIRE_VERSION..=WIRE_VERSION).contains(&version) {
            return Err(ServiceError::InvalidRequest(format!(
                "wire version must be {FIRST_WIRE_VERSION}-{WIRE_VERSION} on this node"
            )));
        }
        let set = self
            .core
            .write(call, META_GROUP, SetWireVersion { version })
            .await?;
        tracing::info!(version, current = set.current, "cluster wire version set");
        Ok(set.current)
    }

    /// Initialises a new cluster's groups from the config, exactly once
    /// (operator): every group and what was done to it (`Initialized`,
    /// `AlreadyInitialized`).
    ///
    /// # Errors
    /// Not the operator; `already_initialized`, `node_unreachable`, `init_failed`.
    pub async fn init(&self, call: &Call) -> Result<Vec<(String, String)>, ServiceError> {
        call.operator()?;
        let report = self.core.raft().init_cluster().await.map_err(|e| match e {
            InitError::AlreadyInitialized => ServiceError::AlreadyInitialized(e.to_string()),
            InitError::Unreachable { .. } => ServiceError::NodeUnreachable(e.to_string()),
            InitError::Failed { .. } => {
                tracing::error!(error = %e, "cluster init failed");
                ServiceError::InitFailed(e.to_string())
            }
        })?;
        Ok(report
            .into_iter()
            .map(|(group, outcome)| (group, format!("{outcome:?}")))
            .collect())
    }

    /// Snapshots every group on this node and purges the log behind the
    /// snapshot (operator): each group and its snapshot index.
    ///
    /// # Errors
    /// Not the operator; a group that fails to snapshot.
    pub async fn compact(&self, call: &Call) -> Result<Vec<(String, Option<u64>)>, ServiceError> {
        call.operator()?;
        Ok(self.core.raft().compact().await?)
    }

    /// Whether the config enables fault injection (`[debug] fault_injection`):
    /// without it, the partition operation does not exist.
    #[must_use]
    pub fn fault_injection(&self) -> bool {
        self.core.config().debug.fault_injection
    }

    /// Drops all peer traffic with the nodes `blocked` (empty heals; operator,
    /// and only with fault injection enabled).
    ///
    /// # Errors
    /// `not_found` without fault injection; not the operator.
    pub fn partition(&self, call: &Call, blocked: &[u64]) -> Result<(), ServiceError> {
        if !self.fault_injection() {
            return Err(ServiceError::NoSuchRoute);
        }
        call.operator()?;
        self.core
            .raft()
            .set_partition(blocked.iter().copied().collect());
        Ok(())
    }
}
