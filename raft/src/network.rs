//! The peer network, client side: one lazily connected HTTP/2 channel per peer,
//! shared by every group (each message carries its group id). openraft gets a
//! [`RaftNetworkFactory`] per group that hands out connections over those channels.

use std::collections::HashMap;
use std::time::Duration;

use cairn_storage::codec;
use futures::SinkExt;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::transport::{Channel, Endpoint};

use crate::listener::Io;
use crate::proto::peer_client::PeerClient;
use crate::proto::{GroupMessage, Reply};
use crate::tls::Tls;
use crate::types::{Node, NodeId, TypeConfig};

/// Which peer RPC to call.
#[derive(Debug, Clone, Copy)]
pub enum Rpc {
    AppendEntries,
    Vote,
    InstallSnapshot,
    ForwardBatch,
    Query,
    Relay,
    InitGroup,
    GroupState,
    Admit,
}

/// Why a peer call failed at the transport level.
#[derive(Debug, thiserror::Error)]
pub enum PeerCallError {
    /// Certainly not delivered: no such peer, or the connection could not be made.
    #[error("peer {node} not reachable: {detail}")]
    NotSent { node: NodeId, detail: String },
    /// Maybe delivered: the call failed after the request may have been sent.
    #[error("call to peer {node} failed: {detail}")]
    Failed { node: NodeId, detail: String },
    #[error("undecodable reply from peer {node}: {detail}")]
    BadReply { node: NodeId, detail: String },
}

/// A group whose data must stay on one region's nodes.
#[derive(Debug, Clone)]
pub struct Pinned {
    pub group: u64,
    pub region: String,
    /// The region's nodes: the only nodes any of the group's traffic may go to.
    pub nodes: Vec<NodeId>,
}

/// One other node: its channel, and the `ReadIndex` stream kept open to it (see
/// [`Peers::read_indexes`]).
struct Peer {
    client: PeerClient<Channel>,
    read_stream: tokio::sync::Mutex<Option<ReadStream>>,
}

/// Channels to every other node of the cluster.
pub struct Peers {
    me: NodeId,
    peers: HashMap<NodeId, Peer>,
    /// Hard-pinned groups, by id. Enforced here, below placement: whatever asks
    /// (openraft replication, a snapshot transfer, a forwarded request), no message
    /// of such a group leaves for a node outside its region.
    pinned: HashMap<u64, Pinned>,
    /// Peers this node is cut off from (fault injection for the chaos harness;
    /// empty unless `[debug] fault_injection` is on and a partition is set).
    blocked: std::sync::RwLock<std::collections::HashSet<NodeId>>,
}

impl Peers {
    /// Prepares (lazily connecting) channels to each `(id, raft_addr)`, over
    /// mutual TLS when `tls` is given.
    ///
    /// # Errors
    /// An address that is not a valid URI authority.
    pub fn new(
        me: NodeId,
        nodes: &[(NodeId, String)],
        pinned: Vec<Pinned>,
        tls: Option<&std::sync::Arc<Tls>>,
    ) -> Result<Self, String> {
        let mut peers = HashMap::new();
        for (id, addr) in nodes {
            if *id == me {
                continue;
            }
            // The scheme stays http: TLS, when on, is the connector's, below
            // HTTP/2 (so it can check the peer's identity).
            let endpoint = Endpoint::from_shared(format!("http://{addr}"))
                .map_err(|e| format!("node {id} raft_addr {addr}: {e}"))?
                .connect_timeout(Duration::from_millis(500))
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(5))
                .keep_alive_timeout(Duration::from_secs(5));
            let connector = PeerConnector {
                node: *id,
                addr: addr.clone(),
                tls: match tls {
                    Some(tls) => Some((
                        std::sync::Arc::clone(tls),
                        crate::tls::server_name(addr)
                            .map_err(|e| format!("node {id} raft_addr: {e}"))?,
                    )),
                    None => None,
                },
            };
            let client = PeerClient::new(endpoint.connect_with_connector_lazy(connector))
                .max_decoding_message_size(256 << 20)
                .max_encoding_message_size(256 << 20);
            peers.insert(
                *id,
                Peer {
                    client,
                    read_stream: tokio::sync::Mutex::default(),
                },
            );
        }
        Ok(Self {
            me,
            peers,
            pinned: pinned.into_iter().map(|p| (p.group, p)).collect(),
            blocked: std::sync::RwLock::default(),
        })
    }

    /// Cuts this node off from `nodes` (replacing any earlier set): calls to them
    /// fail as unreachable and their messages are refused. Empty heals.
    pub fn set_blocked(&self, nodes: std::collections::HashSet<NodeId>) {
        *self
            .blocked
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = nodes;
    }

    /// Whether traffic with `node` is currently cut off.
    #[must_use]
    pub fn is_blocked(&self, node: NodeId) -> bool {
        self.blocked
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&node)
    }

    /// The region `node` is outside of, if `group` is hard-pinned to one.
    #[must_use]
    pub fn pinned_away_from(&self, group: u64, node: NodeId) -> Option<&str> {
        self.pinned
            .get(&group)
            .filter(|pin| !pin.nodes.contains(&node))
            .map(|pin| pin.region.as_str())
    }

    #[must_use]
    pub fn me(&self) -> NodeId {
        self.me
    }

    /// Calls `rpc` on `node` for `group`, encoding `req` and decoding the reply.
    ///
    /// # Errors
    /// [`PeerCallError`] — the reply's own application-level result is in `Resp`.
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        node: NodeId,
        rpc: Rpc,
        group: u64,
        hops: u32,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp, PeerCallError> {
        let client = &self.route(node, format_args!("{rpc:?}"), &[group])?.client;
        let payload = encode_request(node, req)?;
        let mut request = tonic::Request::new(GroupMessage {
            group,
            from: self.me,
            hops,
            payload,
        });
        request.set_timeout(timeout);
        let mut client = client.clone();
        let reply = match rpc {
            Rpc::AppendEntries => client.append_entries(request).await,
            Rpc::Vote => client.vote(request).await,
            Rpc::InstallSnapshot => client.install_snapshot(request).await,
            Rpc::ForwardBatch => client.forward_batch(request).await,
            Rpc::Query => client.query(request).await,
            Rpc::Relay => client.relay(request).await,
            Rpc::InitGroup => client.init_group(request).await,
            Rpc::GroupState => client.group_state(request).await,
            Rpc::Admit => client.admit(request).await,
        };
        let reply = reply.map_err(|status| classify(node, &status))?;
        decode_reply(node, &reply.into_inner())
    }

    /// Read indexes for `groups` (distinct, at least one) from `node`, the node
    /// the caller believes leads them: one answer per group, in order. Sent on a
    /// `ReadIndex` stream kept open to `node`, one request and then its answer at a
    /// time (the caller runs at most one round per node, see `read_batch`): no
    /// new HTTP/2 stream, headers or server task per round. Any failure closes
    /// the stream; the next round opens another.
    ///
    /// # Errors
    /// As [`Self::call`].
    pub async fn read_indexes<Resp: DeserializeOwned>(
        &self,
        node: NodeId,
        groups: &[u64],
        timeout: Duration,
    ) -> Result<Resp, PeerCallError> {
        let peer = self.route(node, format_args!("ReadIndex"), groups)?;
        let message = GroupMessage {
            group: groups.first().copied().unwrap_or_default(),
            from: self.me,
            hops: 1,
            payload: encode_request(node, &groups)?,
        };
        let failed = |detail: String| PeerCallError::Failed { node, detail };
        let round = async {
            // Held for the whole round: a round dropped midway (its deadline)
            // drops the stream it took, so no answer is ever read by the wrong
            // round.
            let mut slot = peer.read_stream.lock().await;
            let mut stream = match slot.take() {
                Some(stream) => stream,
                None => ReadStream::open(node, peer.client.clone()).await?,
            };
            stream
                .requests
                .send(message)
                .await
                .map_err(|e| failed(format!("read-index stream closed: {e}")))?;
            let answer = match stream.answers.message().await {
                Ok(Some(answer)) => answer,
                Ok(None) => return Err(failed("read-index stream ended".to_owned())),
                Err(status) => return Err(classify(node, &status)),
            };
            let decoded = decode_reply(node, &answer)?;
            *slot = Some(stream);
            Ok(decoded)
        };
        tokio::time::timeout(timeout, round)
            .await
            .unwrap_or_else(|_| Err(failed("read-index round timed out".to_owned())))
    }

    /// The peer a message to `node` concerning `groups` goes to, unless it may not
    /// go there: a hard-pinned group's traffic stays in its region, whatever asks
    /// (`what` names the message in the log), and fault injection may cut `node`
    /// off.
    fn route(
        &self,
        node: NodeId,
        what: std::fmt::Arguments<'_>,
        groups: &[u64],
    ) -> Result<&Peer, PeerCallError> {
        for (group, pin) in groups
            .iter()
            .filter_map(|g| Some((*g, self.pinned.get(g)?)))
        {
            if !pin.nodes.contains(&node) {
                tracing::error!(
                    group,
                    region = %pin.region,
                    node,
                    rpc = %what,
                    "refused: traffic of a hard-pinned region's group addressed to a node outside the region"
                );
                return Err(PeerCallError::NotSent {
                    node,
                    detail: format!(
                        "group {group} is pinned to region {} and node {node} is outside it",
                        pin.region
                    ),
                });
            }
        }
        if self.is_blocked(node) {
            return Err(PeerCallError::NotSent {
                node,
                detail: "tcp connect error: partitioned by fault injection".to_owned(),
            });
        }
        self.peers.get(&node).ok_or_else(|| PeerCallError::NotSent {
            node,
            detail: "not a peer of this node".to_owned(),
        })
    }
}

/// Connects to one peer: TCP, then (with TLS) a handshake that presents this
/// node's certificate and accepts only the certificate of the node it meant to
/// call (its SPIFFE id), so an address alone cannot impersonate a node.
#[derive(Clone)]
struct PeerConnector {
    node: NodeId,
    addr: String,
    tls: Option<(std::sync::Arc<Tls>, rustls::pki_types::ServerName<'static>)>,
}

impl tower::Service<tonic::transport::Uri> for PeerConnector {
    type Response = hyper_util::rt::TokioIo<Box<dyn Io>>;
    type Error = std::io::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: tonic::transport::Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            // "tcp connect error" / "tls connect error": `classify` counts both
            // as never sent.
            let tcp = tokio::net::TcpStream::connect(&this.addr)
                .await
                .map_err(|e| std::io::Error::other(format!("tcp connect error: {e}")))?;
            let _ = tcp.set_nodelay(true);
            let Some((tls, name)) = this.tls else {
                return Ok(hyper_util::rt::TokioIo::new(Box::new(tcp) as Box<dyn Io>));
            };
            let connector = tokio_rustls::TlsConnector::from(tls.peer_client_config());
            let stream = connector
                .connect(name, tcp)
                .await
                .map_err(|e| std::io::Error::other(format!("tls connect error: {e}")))?;
            let named = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|leaf| crate::tls::node_of_cert(leaf, tls.cluster_name()));
            match named {
                Some(Ok(id)) if id == this.node => {}
                other => {
                    let why = match other {
                        Some(Ok(id)) => format!("it presented node {id}'s certificate"),
                        Some(Err(e)) => e,
                        None => "it presented no certificate".to_owned(),
                    };
                    tracing::warn!(node = this.node, addr = %this.addr, reason = %why, "peer refused: not the node its address belongs to");
                    return Err(std::io::Error::other(format!(
                        "tls connect error: {} is not node {}: {why}",
                        this.addr, this.node
                    )));
                }
            }
            Ok(hyper_util::rt::TokioIo::new(Box::new(stream) as Box<dyn Io>))
        })
    }
}

/// An open `ReadIndex` stream to one peer.
struct ReadStream {
    requests: futures::channel::mpsc::Sender<GroupMessage>,
    answers: tonic::Streaming<Reply>,
}

impl ReadStream {
    async fn open(node: NodeId, mut client: PeerClient<Channel>) -> Result<Self, PeerCallError> {
        let (requests, outgoing) = futures::channel::mpsc::channel(1);
        let answers = client
            .read_index(outgoing)
            .await
            .map_err(|status| classify(node, &status))?
            .into_inner();
        Ok(Self { requests, answers })
    }
}

fn encode_request<Req: Serialize>(node: NodeId, req: &Req) -> Result<Vec<u8>, PeerCallError> {
    codec::encode("peer request", req).map_err(|e| PeerCallError::NotSent {
        node,
        detail: e.to_string(),
    })
}

fn decode_reply<Resp: DeserializeOwned>(
    node: NodeId,
    reply: &Reply,
) -> Result<Resp, PeerCallError> {
    codec::decode("peer reply", &reply.payload).map_err(|e| PeerCallError::BadReply {
        node,
        detail: e.to_string(),
    })
}

/// A failed connection attempt means the request never left this node; anything
/// else (a connection closed mid-call, a reset stream, a deadline) may have reached
/// the peer. Only the former may be retried without risking a double apply, so the
/// match is deliberately narrow: hyper-util's connector failure and a refused
/// connection, which can only happen while connecting.
fn classify(node: NodeId, status: &tonic::Status) -> PeerCallError {
    let detail = error_chain(status);
    let not_sent = status.code() == tonic::Code::Unavailable && is_connect_failure(&detail);
    if not_sent || status.code() == tonic::Code::NotFound {
        PeerCallError::NotSent { node, detail }
    } else {
        PeerCallError::Failed { node, detail }
    }
}

fn error_chain(status: &tonic::Status) -> String {
    let mut detail = status.message().to_owned();
    let mut source = std::error::Error::source(status);
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
    detail
}

fn is_connect_failure(detail: &str) -> bool {
    detail.contains("tcp connect error")
        || detail.contains("tls connect error")
        || detail.contains("Connection refused")
}

/// openraft's view of the network for one group.
pub struct NetworkFactory {
    peers: std::sync::Arc<Peers>,
    group: u64,
}

impl NetworkFactory {
    #[must_use]
    pub fn new(peers: std::sync::Arc<Peers>, group: u64) -> Self {
        Self { peers, group }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: NodeId, _node: &Node) -> PeerConnection {
        PeerConnection {
            peers: std::sync::Arc::clone(&self.peers),
            group: self.group,
            target,
        }
    }
}

/// One group's connection to one peer (a view over the shared channel).
pub struct PeerConnection {
    peers: std::sync::Arc<Peers>,
    group: u64,
    target: NodeId,
}

impl PeerConnection {
    async fn raft_call<Req, Resp, E>(
        &self,
        rpc: Rpc,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, Node, E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let reply: Result<Resp, E> = self
            .peers
            .call(self.target, rpc, self.group, 0, req, option.hard_ttl())
            .await
            .map_err(|e| match e {
                PeerCallError::NotSent { .. } => RPCError::Unreachable(Unreachable::new(&e)),
                _ => RPCError::Network(NetworkError::new(&e)),
            })?;
        reply.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for PeerConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        self.raft_call(Rpc::AppendEntries, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, Node, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.raft_call(Rpc::InstallSnapshot, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        self.raft_call(Rpc::Vote, &rpc, &option).await
    }

    fn backoff(&self) -> openraft::network::Backoff {
        // A dead peer is retried every 200 ms: quick to notice its return, cheap meanwhile.
        openraft::network::Backoff::new(std::iter::repeat(Duration::from_millis(200)))
    }
}

#[cfg(test)]
mod tests {
    use super::{is_connect_failure, PeerCallError, Peers, Pinned, Rpc};
    use std::time::Duration;

    #[tokio::test]
    async fn a_pinned_group_never_sends_to_a_node_outside_its_region() {
        let nodes: Vec<(u64, String)> = (1..=4)
            .map(|i| (i, format!("127.0.0.1:{}", 1 + i)))
            .collect();
        let peers = Peers::new(
            1,
            &nodes,
            vec![Pinned {
                group: 1,
                region: "eu".to_owned(),
                nodes: vec![1, 2, 3],
            }],
            None,
        )
        .expect("peers");
        for rpc in [
            Rpc::AppendEntries,
            Rpc::InstallSnapshot,
            Rpc::Vote,
            Rpc::ForwardBatch,
            Rpc::Query,
            Rpc::Relay,
        ] {
            let r: Result<(), PeerCallError> = peers
                .call(4, rpc, 1, 0, &(), Duration::from_millis(100))
                .await;
            match r {
                Err(PeerCallError::NotSent { detail, .. }) => {
                    assert!(detail.contains("pinned to region eu"), "{detail}");
                }
                other => panic!("{rpc:?} to node 4: {other:?}"),
            }
        }
        // Another group may go there (the call then fails only to connect).
        let r: Result<(), PeerCallError> = peers
            .call(4, Rpc::Vote, 2, 0, &(), Duration::from_millis(100))
            .await;
        assert!(
            !matches!(&r, Err(PeerCallError::NotSent { detail, .. }) if detail.contains("pinned")),
            "{r:?}"
        );
    }

    #[test]
    fn only_connect_failures_count_as_not_sent() {
        assert!(is_connect_failure(
            "transport error: tcp connect error: Connection refused (os error 111)"
        ));
        assert!(is_connect_failure(
            "error trying to connect: tcp connect error: deadline has elapsed"
        ));
        // The request may have been delivered before these happened.
        assert!(!is_connect_failure(
            "connection closed before message completed"
        ));
        assert!(!is_connect_failure("connection reset by peer"));
        assert!(!is_connect_failure("Timeout expired"));
    }
}
