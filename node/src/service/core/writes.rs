//! Proposing a state change with its trace: who caused it (the [`Call`]'s
//! caller, or the node itself for background work), under which request, from
//! which address. Every identity write goes through [`Core::write`]; the events
//! its apply causes then carry that trace (`storage::sm::events`). Tenant KV
//! writes are the data plane and skip it (no events, no trace bytes per put).
//!
//! A trace is a wire version 2 entry: until this node's `meta` replica shows the
//! cluster at version 2 (`cairn init` sets it on a new cluster, `cairn
//! finalize-upgrade` after a rolling upgrade), writes go out untraced, as an
//! older node can still decode them.

use std::sync::atomic::{AtomicBool, Ordering};

use cairn_cluster_config::{GroupId, META_GROUP};
use cairn_raft::RaftNodeError;
use cairn_storage::sm::cluster::{self, WIRE_VERSION};
use cairn_storage::sm::{Op, TracedOp};
use cairn_storage::{Actor, Trace};

use super::call::{Call, Caller};
use super::clock::unix_now;
use super::Core;

/// On whose behalf a write is proposed.
#[derive(Debug, Clone, Copy)]
pub enum By<'a> {
    /// A request.
    Call(&'a Call),
    /// The node itself (background work, lazily created records): actor `system`.
    System,
}

impl<'a> From<&'a Call> for By<'a> {
    fn from(call: &'a Call) -> Self {
        Self::Call(call)
    }
}

impl By<'_> {
    /// The trace a write on this behalf carries, at `at`.
    #[must_use]
    pub fn trace(self, at: u64) -> Trace {
        match self {
            Self::System => Trace {
                actor: Actor::System,
                request_id: None,
                ip: None,
                at,
            },
            Self::Call(call) => Trace {
                actor: match call.caller() {
                    Caller::Operator => Actor::Operator,
                    Caller::ApiKey(p) => Actor::ApiKey(p.key_id().to_owned()),
                    Caller::Public => Actor::Public,
                },
                request_id: call.context().request_id.clone(),
                ip: call.context().client_ip,
                at,
            },
        }
    }
}

/// This node's view of the cluster's wire version: read from its `meta` replica
/// until it shows [`WIRE_VERSION`], then fixed (the version never goes down).
#[derive(Debug, Default)]
pub struct WireVersionView {
    current: AtomicBool,
}

impl Core {
    /// The cluster's wire version as this node's `meta` replica shows it (1 if it
    /// cannot be read: the older format is always safe to write).
    #[must_use]
    pub fn wire_version(&self) -> u32 {
        let view = &self.inner.wire_version;
        if view.current.load(Ordering::Acquire) {
            return WIRE_VERSION;
        }
        let meta = self.inner.engine.state(META_GROUP.0);
        let version = cluster::read::wire_version(&meta).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "reading the cluster's wire version");
            cluster::FIRST_WIRE_VERSION
        });
        if version >= WIRE_VERSION {
            view.current.store(true, Ordering::Release);
        }
        version
    }

    /// Whether the cluster speaks wire version `version`: commands, queries
    /// and records added in it may be sent.
    #[must_use]
    pub fn speaks(&self, version: u32) -> bool {
        self.wire_version() >= version
    }

    /// Whether writes may carry their trace (and use the other wire version 2
    /// commands).
    #[must_use]
    pub fn traced_writes(&self) -> bool {
        self.speaks(2)
    }

    /// Proposes `op` to `group` on behalf of `by`, traced once the cluster
    /// speaks wire version 2; returns the outcome decided by the log.
    ///
    /// # Errors
    /// As [`cairn_raft::RaftNode::write`].
    pub async fn write<'a, O: Op>(
        &self,
        by: impl Into<By<'a>>,
        group: GroupId,
        op: O,
    ) -> Result<O::Outcome, RaftNodeError> {
        let raft = self.raft();
        if self.traced_writes() {
            let trace = by.into().trace(unix_now());
            raft.write(group, TracedOp { trace, op }).await
        } else {
            raft.write(group, op).await
        }
    }
}
