//! Which Raft groups exist and which nodes vote in each.
//!
//! Group ids are derived from the config: `meta` is 0 and the data group of the
//! region declared `i`-th (0-based) is `i + 1`. Nodes record the catalog (id → name)
//! in their data dir at first start and refuse to start if it later changes, so a
//! reordered region list cannot silently remap data to another group.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::{NodeConfig, RegionConfig, Residency};

/// A Raft group (shard) id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GroupId(pub u64);

/// The cluster-wide `meta` group: tenants, keys metadata, routing index. Never personal data.
pub const META_GROUP: GroupId = GroupId(0);

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupKind {
    Meta,
    Region,
}

/// One Raft group and its initial voters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSpec {
    pub id: GroupId,
    pub kind: GroupKind,
    /// `meta`, or the region's name.
    pub name: String,
    /// The region whose data the group holds (`None` for `meta`).
    pub region: Option<String>,
    pub residency: Option<Residency>,
    /// Voters, sorted by node id.
    pub voters: Vec<u64>,
    /// Voters taken from outside the region because it has too few nodes
    /// (best-effort regions only).
    pub borrowed: Vec<u64>,
}

impl GroupSpec {
    #[must_use]
    pub fn has_voter(&self, node: u64) -> bool {
        self.voters.contains(&node)
    }
}

pub(crate) fn place(regions: &[RegionConfig], nodes: &[NodeConfig], rf: usize) -> Vec<GroupSpec> {
    let mut all: Vec<u64> = nodes.iter().map(|n| n.id).collect();
    all.sort_unstable();

    let mut groups = vec![GroupSpec {
        id: META_GROUP,
        kind: GroupKind::Meta,
        name: "meta".to_owned(),
        region: None,
        residency: None,
        voters: all.clone(),
        borrowed: Vec::new(),
    }];
    for (i, region) in regions.iter().enumerate() {
        let mut own: Vec<u64> = nodes
            .iter()
            .filter(|n| n.region == region.name)
            .map(|n| n.id)
            .collect();
        own.sort_unstable();
        own.truncate(rf);
        let mut borrowed = Vec::new();
        if region.residency == Residency::BestEffort {
            for id in &all {
                if own.len() + borrowed.len() >= rf {
                    break;
                }
                if !own.contains(id) {
                    borrowed.push(*id);
                }
            }
        }
        let mut voters: Vec<u64> = own.into_iter().chain(borrowed.iter().copied()).collect();
        voters.sort_unstable();
        groups.push(GroupSpec {
            id: GroupId(i as u64 + 1),
            kind: GroupKind::Region,
            name: region.name.clone(),
            region: Some(region.name.clone()),
            residency: Some(region.residency),
            voters,
            borrowed,
        });
    }
    groups
}
