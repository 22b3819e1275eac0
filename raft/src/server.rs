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
use crate::node::{RaftNode, FORWARD_TIMEOUT};
use crate::proto::peer_server::{Peer, PeerServer};
use crate::proto::{GroupMessage, Reply};
use crate::types::{Command, NodeId, Query, Raft, TypeConfig};

/// Serves the peer protocol for one node.
pub struct PeerService {
    node: Arc<RaftNode>,
}

impl PeerService {
    #[must_use]
    pub fn new(node: Arc<RaftNode>) -> PeerServer<Self> {
        PeerServer::new(Self { node })
            .max_decoding_message_size(256 << 20)
            .max_encoding_message_size(256 << 20)
    }

    /// The message, unless its sender is cut off by fault injection.
    fn receive(&self, req: Request<GroupMessage>) -> Result<GroupMessage, Status> {
        admit(&self.node, req.into_inner())
    }

    fn raft(&self, group: u64) -> Result<&Raft, Status> {
        self.node
            .raft(group)
            .ok_or_else(|| Status::not_found(format!("group {group} is not hosted on this node")))
    }
}

/// `msg`, unless its sender is cut off from `node` by fault injection.
fn admit(node: &RaftNode, msg: GroupMessage) -> Result<GroupMessage, Status> {
    if node.is_blocked(msg.from) {
        return Err(Status::unavailable("partitioned by fault injection"));
    }
    Ok(msg)
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
        let msg = self.receive(req)?;
        let rpc: AppendEntriesRequest<TypeConfig> = decode(&msg)?;
        reply(&self.raft(msg.group)?.append_entries(rpc).await)
    }

    async fn vote(&self, req: Request<GroupMessage>) -> Result<Response<Reply>, Status> {
        let msg = self.receive(req)?;
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
        let msg = self.receive(req)?;
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
        let msg = self.receive(req)?;
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
        let msg = self.receive(req)?;
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
        let answers = req.into_inner().take_until(stopping).then(move |msg| {
            let node = Arc::clone(&node);
            async move {
                let msg = admit(&node, msg?)?;
                let groups: Vec<u64> = decode(&msg)?;
                if groups.len() > MAX_READ_GROUPS {
                    return Err(Status::invalid_argument(format!(
                        "{} groups; at most {MAX_READ_GROUPS} per read-index request",
                        groups.len()
                    )));
                }
                encode_reply(&node.leader_read_indexes(&groups).await)
            }
        });
        Ok(Response::new(Box::pin(answers)))
    }

    async fn init_group(&self, req: Request<GroupMessage>) -> Result<Response<Reply>, Status> {
        let msg = self.receive(req)?;
        let members: BTreeMap<NodeId, BasicNode> = decode(&msg)?;
        reply(&self.node.init_local(GroupId(msg.group), members).await)
    }

    async fn admit(&self, req: Request<GroupMessage>) -> Result<Response<Reply>, Status> {
        let msg = self.receive(req)?;
        let cluster_id: String = decode(&msg)?;
        reply(&self.node.admit(&cluster_id).await)
    }

    async fn group_state(&self, req: Request<GroupMessage>) -> Result<Response<Reply>, Status> {
        let msg = self.receive(req)?;
        let () = decode(&msg)?;
        reply(&self.node.is_initialized_local(GroupId(msg.group)).await)
    }
}
