//! Request relaying for hard-pinned groups. A node outside a hard region holds
//! nothing of the region's groups and may not read them (`Query`, `ReadIndex`
//! and snapshots from it are refused), yet any node accepts any client request
//! (SPEC §2). So a request that needs such a group is relayed whole, over the
//! authenticated peer channel, to a member of the group, which serves it as its
//! own client's request and answers. The payloads are opaque here: the node
//! crate encodes the client request and its answer, and serves relayed requests
//! through a [`RelayHandler`]. `RaftNode::relay` sends them.

use std::time::Duration;

use cairn_cluster_config::GroupId;
use futures::future::BoxFuture;

use crate::types::NodeId;

/// Longest a relayed request may take on the node serving it (a client
/// request's own deadline on that node is shorter).
pub(crate) const RELAY_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves the client requests other nodes relay to this one.
pub trait RelayHandler: Send + Sync + 'static {
    /// The encoded answer to the encoded request `payload`, which `from` relayed
    /// for `group` (a group this node hosts). An `Err` is a payload this handler
    /// cannot serve at all; an answer the request earns (an error response
    /// included) is an `Ok`.
    fn serve(
        &self,
        from: NodeId,
        group: GroupId,
        payload: Vec<u8>,
    ) -> BoxFuture<'static, Result<Vec<u8>, String>>;
}
