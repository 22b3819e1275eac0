//! Where a request goes: a tenant's home region to its data group, an id
//! (`<prefix>_<group>_<hex>`, see `ids`) to the group and region it names, and a
//! failed call on a region's group to that region's outage.

use cairn_cluster_config::{GroupId, META_GROUP};
use cairn_raft::RaftNodeError;

use super::Core;
use crate::error::ServiceError;

impl Core {
    /// The data group of `region` (a tenant's home region).
    ///
    /// # Errors
    /// `internal`: a region the config does not know (never for a stored tenant).
    pub fn region_group(&self, region: &str) -> Result<GroupId, ServiceError> {
        self.inner
            .cfg
            .region_group(region)
            .map(|g| g.id)
            .ok_or_else(|| {
                tracing::error!(region, "a tenant's home region is not in the config");
                ServiceError::Internal
            })
    }

    /// Refuses, before anything is changed, an operation on `group` when this
    /// node is outside the region `group` is hard-pinned to: the adapter then
    /// relays the request to the region's nodes (`crate::relay`). Reads of such
    /// a group refuse the same way by themselves (`RaftNodeError::PinnedAway`);
    /// an operation that writes it before reading it calls this first.
    ///
    /// # Errors
    /// [`ServiceError::Relay`].
    pub fn serve_here(&self, group: GroupId) -> Result<(), ServiceError> {
        match self.inner.raft.pinned_away(group) {
            Some(region) => Err(ServiceError::Relay {
                group: group.0,
                region: region.to_owned(),
            }),
            None => Ok(()),
        }
    }

    /// The data group and region an id (`<prefix>_<group>_<hex>`) routes to.
    #[must_use]
    pub fn id_group(&self, id: &str, prefix: &str) -> Option<(GroupId, String)> {
        let rest = id.strip_prefix(prefix)?.strip_prefix('_')?;
        let (group, random) = rest.split_once('_')?;
        if random.len() != 32
            || !random
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return None;
        }
        let group: u64 = group.parse().ok()?;
        if group.to_string().len() != rest.len() - random.len() - 1 {
            return None; // leading zeros or a sign: not an id we issued
        }
        self.inner
            .cfg
            .groups()
            .iter()
            .find(|g| g.id.0 == group && g.id != META_GROUP)
            .and_then(|g| g.region.clone().map(|r| (g.id, r)))
    }
}

/// Maps a failed call on `region`'s data group: a group that cannot reach a
/// leader or commit is that region's outage, reported as `region_unavailable`
/// (other regions keep serving).
#[must_use]
pub fn region_error(region: &str, e: RaftNodeError) -> ServiceError {
    match e {
        RaftNodeError::NoLeader { .. } | RaftNodeError::OutcomeUnknown { .. } => {
            ServiceError::RegionUnavailable(format!("region {region}: {e}"))
        }
        other => other.into(),
    }
}
