//! The peer gRPC service: decodes each message, routes it to the named local group,
//! and encodes the group's answer (including its errors) for the caller.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;

use cairn_cluster_config::GroupId;
use cairn_storage::codec;
use futures::StreamExt;
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use openraft::BasicNode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::{Request, Response, Status, Streaming};

use crate::error::RaftNodeError;
use crate::forward_batch::{answer_deadline, MAX_COMMANDS as MAX_FORWARDED};
use crate::listener::ConnInfo;
use crate::node::{RaftNode, FORWARD_TIMEOUT};
use crate::proto::peer_server::{Peer, PeerServer};
use crate::proto::{GroupMessage, Reply};
use crate::types::{Command, NodeId, Query, Raft, TypeConfig};

/// Serves the peer protocol for one node.
pub struct PeerService {
    node: Arc<RaftNode>,
    /// Whether every message must come over a connection whose verified
    /// certificate names its `from` (TLS on); off only in loopback plaintext.
    authenticated: bool,
}

impl PeerService {
    #[must_use]
    pub fn new(node: Arc<RaftNode>, authenticated: bool) -> PeerServer<Self> {
        PeerServer::new(Self {
            node,
            authenticated,
        })
        .max_decoding_message_size(256 << 20)
        .max_encoding_message_size(256 << 20)
    }

    /// The message of `rpc`, if its sender is who its connection's certificate
    /// says, and not cut off by fault injection.
    fn receive(
        &self,
        rpc: &'static str,
        req: Request<GroupMessage>,
    ) -> Result<GroupMessage, Status> {
        let sender = sender_of(req.extensions());
        admit(
            &self.node,
            self.authenticated,
            sender,
            rpc,
            req.into_inner(),
        )
    }

    /// As [`Self::receive`], and refused if the group is hard-pinned to a region
    /// the sender is outside of: its data (entries, snapshots, query answers)
    /// never goes there, whatever the sender claims.
    fn receive_in_region(
        &self,
        rpc: &'static str,
        req: Request<GroupMessage>,
    ) -> Result<GroupMessage, Status> {
        let msg = self.receive(rpc, req)?;
        in_region(&self.node, rpc, msg.group, msg.from)?;
        Ok(msg)
    }

    fn raft(&self, group: u64) -> Result<&Raft, Status> {
        self.node
            .raft(group)
            .ok_or_else(|| Status::not_found(format!("group {group} is not hosted on this node")))
    }
}

/// The member node the connection's verified certificate names, if any.
fn sender_of(extensions: &tonic::Extensions) -> Option<NodeId> {
    extensions.get::<ConnInfo>().and_then(|info| info.peer)
}

/// `msg`, unless its `from` is not the node the connection's certificate names
/// (refused and logged, never applied), or it is cut off from `node` by fault
/// injection.
fn admit(
    node: &RaftNode,
    authenticated: bool,
    sender: Option<NodeId>,
    rpc: &'static str,
    msg: GroupMessage,
) -> Result<GroupMessage, Status> {
    if authenticated && sender != Some(msg.from) {
        tracing::warn!(
            rpc,
            group = msg.group,
            claimed_from = msg.from,
            certificate_node = ?sender,
            "peer message refused: its from is not the node its certificate names"
        );
        return Err(Status::permission_denied(
            "the message's from is not the node this connection's certificate names",
        ));
    }
    if node.is_blocked(msg.from) {
        return Err(Status::unavailable("partitioned by fault injection"));
    }
    Ok(msg)
}

/// Refuses `rpc` for `group` from `from` if the group is hard-pinned to a region
/// `from` is outside of.
fn in_region(node: &RaftNode, rpc: &'static str, group: u64, from: NodeId) -> Result<(), Status> {
    if let Some(region) = node.pinned_away_from(group, from) {
        tracing::warn!(
            rpc,
            group,
            from,
            region,
            "peer message refused: a hard-pinned region's group asked for by a node outside it"
        );
        return Err(Status::permission_denied(format!(
            "group {group} is pinned to region {region} and node {from} is outside it"
        )));
    }
    Ok(())
}

/// Most groups one `ReadIndex` request may name (a cluster has one per region, and
/// `meta`).
const MAX_READ_GROUPS: usize = 1024;

/// Largest snapshot a node accepts (snapshots are built and received in memory).
const MAX_SNAPSHOT_BYTES: u64 = cairn_storage::codec::DECODE_LIMIT as u64;

fn decode<T: DeserializeOwned>(msg: &GroupMessage) -> Result<T, Status> {
    codec::decode("peer request", &msg.payload).map_err(|e| Status::invalid_argument(e.to_string()))
}

fn encode_reply<T: Serialize>(value: &T) -> Result<Reply, Status> {
    let payload =
        codec::encode("peer reply", value).map_err(|e| Status::internal(e.to_string()))?;
    Ok(Reply { payload })
}

fn reply<T: Serialize>(value: &T) -> Result<Response<Reply>, Status> {
    encode_reply(value).map(Response::new)
}

#[tonic::async_trait]
impl Peer for PeerService {
    async fn append_entries(&self, req: Request<GroupMessage>) -> Result<Response<Reply>, Status> {
        let msg = self.receive_in_region("AppendEntries", req)?;
        let rpc: AppendEntriesRequest<TypeConfig> = decode(&msg)?;
        reply(&self.raft(msg.group)?.append_entries(rpc).await)
    }

    async fn vote(&self, req: Request<GroupMessage>) -> Result<Response<Reply>, Status> {
        let msg = self.receive("Vote", req)?;
        if !self.node.is_admitted() {
            // Not granting a vote is always safe; granting one from a data dir that
            // lost what it acknowledged is not (see `RaftNode::is_admitted`).
            tracing::warn!(
                group = msg.group,
                candidate = msg.from,
                "vote refused: this node is not admitted (its data dir was created after \
                 `cairn init`)"
            );
            return Err(Status::failed_precondition(
                "this node is not admitted to the cluster and does not vote",
            ));
        }
        if self.node.is_holding_votes() {
            tracing::debug!(
                group = msg.group,
                candidate = msg.from,
                "vote refused: this node started less than election_timeout_max ago"
            );
            return Err(Status::unavailable(
                "this node has just started and does not vote yet",
            ));
        }
        let rpc: VoteRequest<NodeId> = decode(&msg)?;
        reply(&self.raft(msg.group)?.vote(rpc).await)
    }

    async fn install_snapshot(
        &self,
        req: Request<GroupMessage>,
    ) -> Result<Response<Reply>, Status> {
        let msg = self.receive_in_region("InstallSnapshot", req)?;
        let rpc: InstallSnapshotRequest<TypeConfig> = decode(&msg)?;
        // Snapshots are received into memory at the offset the sender names: bound
        // it, so a bad chunk cannot make this node allocate without limit.
        let end = rpc.offset.checked_add(rpc.data.len() as u64);
        if end.is_none_or(|e| e > MAX_SNAPSHOT_BYTES) {
            return Err(Status::invalid_argument(format!(
                "snapshot chunk beyond the {MAX_SNAPSHOT_BYTES}-byte limit"
            )));
        }
        reply(&self.raft(msg.group)?.install_snapshot(rpc).await)
    }

    /// A batch of writes (see `forward_batch`): each goes on its own way (proposed
    /// here if this node leads, else forwarded on), one answer each, in order.
    async fn forward_batch(&self, req: Request<GroupMessage>) -> Result<Response<Reply>, Status> {
        let msg = self.receive("ForwardBatch", req)?;
        let cmds: Vec<Command> = decode(&msg)?;
        if cmds.len() > MAX_FORWARDED {
            return Err(Status::invalid_argument(format!(
                "{} forwarded writes; at most {MAX_FORWARDED} per call",
                cmds.len()
            )));
        }
        if cmds.iter().any(|c| matches!(c, Command::Batch(_))) {
            return Err(Status::invalid_argument(
                "a batch cannot be forwarded as a write",
            ));
        }
        let group = GroupId(msg.group);
        let deadline = answer_deadline(FORWARD_TIMEOUT);
        let answers = futures::future::join_all(cmds.iter().map(|cmd| async move {
            tokio::time::timeout(deadline, self.node.write_once(group, cmd, msg.hops))
                .await
                .unwrap_or_else(|_| {
                    Err(RaftNodeError::OutcomeUnknown {
                        group: group.0,
                        detail: "not decided within the forwarding deadline".to_owned(),
                    })
                })
        }))
        .await;
        reply(&answers)
    }

    async fn query(&self, req: Request<GroupMessage>) -> Result<Response<Reply>, Status> {
        // A node outside a hard region reads nothing of it: its clients'
        // requests for the region are relayed whole instead (`relay`).
        let msg = self.receive_in_region("Query", req)?;
        let query: Query = decode(&msg)?;
        reply(
            &self
                .node
                // The relaying node's clock is not this one's: the read began
                // no later than now.
                .query_once(
                    GroupId(msg.group),
                    &query,
                    msg.hops,
                    tokio::time::Instant::now(),
                )
                .await,
        )
    }

    /// A client request relayed whole by another member of the cluster (see
    /// `crate::relay`), served here as this node's own client's: only for a
    /// group this node hosts, so a relay ends at its first hop.
    async fn relay(&self, req: Request<GroupMessage>) -> Result<Response<Reply>, Status> {
        let msg = self.receive("Relay", req)?;
        self.raft(msg.group)?;
        let Some(handler) = self.node.relay_handler() else {
            return Err(Status::unavailable(
                "this node does not serve relayed requests yet",
            ));
        };
        let payload: Vec<u8> = decode(&msg)?;
        let answer = handler
            .serve(msg.from, GroupId(msg.group), payload)
            .await
            .map_err(|e| {
                tracing::warn!(from = msg.from, group = msg.group, error = %e, "relayed request refused");
                RaftNodeError::Internal(format!("relayed request refused: {e}"))
            });
        reply(&answer)
    }

    type ReadIndexStream =
        Pin<Box<dyn futures::Stream<Item = Result<Reply, Status>> + Send + 'static>>;

    /// A follower's read-index stream: each request names the groups whose reads
    /// wait for this node, and is answered with their read indexes, one per group,
    /// in order, before the next request is read. A refused request ends the
    /// stream, and so does this node's shutdown (the peer server drains only
    /// once every stream has ended).
    async fn read_index(
        &self,
        req: Request<Streaming<GroupMessage>>,
    ) -> Result<Response<Self::ReadIndexStream>, Status> {
        let stopping = self.node.stopping();
        let node = Arc::clone(&self.node);
        let authenticated = self.authenticated;
        let sender = sender_of(req.extensions());
        let answers = req.into_inner().take_until(stopping).then(move |msg| {
            let node = Arc::clone(&node);
            async move {
                let msg = admit(&node, authenticated, sender, "ReadIndex", msg?)?;
                let groups: Vec<u64> = decode(&msg)?;
                if groups.len() > MAX_READ_GROUPS {
                    return Err(Status::invalid_argument(format!(
                        "{} groups; at most {MAX_READ_GROUPS} per read-index request",
                        groups.len()
                    )));
                }
                for group in &groups {
                    in_region(&node, "ReadIndex", *group, msg.from)?;
                }
                encode_reply(&node.leader_read_indexes(&groups).await)
            }
        });
        Ok(Response::new(Box::pin(answers)))
    }

    async fn init_group(&self, req: Request<GroupMessage>) -> Result<Response<Reply>, Status> {
        let msg = self.receive("InitGroup", req)?;
        let members: BTreeMap<NodeId, BasicNode> = decode(&msg)?;
        reply(&self.node.init_local(GroupId(msg.group), members).await)
    }

    async fn admit(&self, req: Request<GroupMessage>) -> Result<Response<Reply>, Status> {
        let msg = self.receive("Admit", req)?;
        let cluster_id: String = decode(&msg)?;
        reply(&self.node.admit(&cluster_id).await)
    }

    async fn group_state(&self, req: Request<GroupMessage>) -> Result<Response<Reply>, Status> {
        let msg = self.receive("GroupState", req)?;
        let () = decode(&msg)?;
        reply(&self.node.is_initialized_local(GroupId(msg.group)).await)
    }
}
