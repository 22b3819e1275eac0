//! [`NodeIdentity`]: who a data dir belongs to.

use serde::{Deserialize, Serialize};

/// Who a data dir belongs to, written at the node's first start and checked at every
/// later one, so a data dir is never used by another node or another cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeIdentity {
    pub cluster_name: String,
    pub node_id: u64,
    /// The group catalog: (group id, group name). A changed catalog would map
    /// existing data to other groups, so it is part of the identity.
    pub groups: Vec<(u64, String)>,
}
