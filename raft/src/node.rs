//! [`RaftNode`]: the Raft groups hosted by this node and the operations the rest of
//! the node needs from them — writes and linearizable reads that work from any node,
//! `cairn init`, status.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cairn_cluster_config::{ClusterConfig, GroupId, GroupSpec, Residency, META_GROUP};
use cairn_storage::sm::{self, Op, Read};
use cairn_storage::{Engine, GroupState};
use openraft::error::{InitializeError, RaftError};
use openraft::{BasicNode, SnapshotPolicy};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::error::{InitError, RaftNodeError};
use crate::forward_batch::Forwarder;
use crate::lease::{LeaderReads, Lease};
use crate::log_store::LogStore;
use crate::network::{NetworkFactory, Peers, Pinned, Rpc};
use crate::propose_batch::ProposalBatcher;
use crate::read_batch::ReadBatcher;
use crate::state_machine::StateMachine;
use crate::status::{GroupStatus, PeerProgress};
use crate::types::{Answer, Command, NodeId, Outcome, Query, Raft};

/// How long a client request may wait for a leader before failing.
const REQUEST_DEADLINE: Duration = Duration::from_secs(5);
/// Longest a leader waits for a proposed entry to commit before the outcome is unknown.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(4);
/// Forwarding hops allowed (non-member → member → leader, plus one leader change).
const MAX_HOPS: u32 = 3;
/// Peer-call deadline for a forwarded request (covers COMMIT_TIMEOUT on the leader).
pub(crate) const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest a leader spends on one group's read index for a peer's `ReadIndex`
/// request (well under the follower's 2 s round limit, see `read_batch`).
const GROUP_READ_INDEX_TIMEOUT: Duration = Duration::from_millis(500);

/// One hosted group.
struct Group {
    spec: GroupSpec,
    raft: Raft,
    state: GroupState,
    committed: Arc<AtomicU64>,
    /// The index this node's state machine last applied.
    applied: Arc<AtomicU64>,
    /// Read indexes given here, as leader (for this node's reads and peers'):
    /// from the lease, or from a confirmation round.
    leader: Arc<LeaderReads>,
    /// Writes proposed here, as leader, batched into entries.
    proposals: ProposalBatcher,
}

/// What `InitGroup` did on the node that received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InitOutcome {
    Initialized,
    AlreadyInitialized,
}

/// The Raft groups of one node.
pub struct RaftNode {
    id: NodeId,
    groups: HashMap<GroupId, Group>,
    specs: Vec<GroupSpec>,
    peers: Arc<Peers>,
    /// Read indexes for this node's reads of groups it does not lead, asked of
    /// their leaders: one call at a time per leader, for every group waiting.
    reads: ReadBatcher,
    /// Writes relayed to leaders, batched per (leader, group).
    forwards: Forwarder,
    addrs: BTreeMap<NodeId, String>,
    /// Round-robin cursor for picking a member of a group this node is not in.
    next_member: AtomicUsize,
    /// Bumped whenever this node applies an entry to `meta` or installs a snapshot.
    meta_epoch: Arc<AtomicU64>,
    engine: Engine,
    /// Whether this data dir was admitted by `cairn init` (see [`RaftNode::is_admitted`]).
    admitted: AtomicBool,
    /// When this process started its groups, and how long after it grants no vote
    /// (see [`RaftNode::is_holding_votes`]).
    started: Instant,
    vote_hold: Duration,
    /// Set when [`RaftNode::shutdown`] begins: streams peers keep open to this
    /// node end, so the peer server can drain.
    stopping: tokio::sync::watch::Sender<bool>,
    /// Serves the client requests peers relay here (see [`crate::relay`]);
    /// taken out at shutdown, since it holds the node's services, which hold
    /// this node.
    relay_handler: std::sync::RwLock<Option<Arc<dyn crate::relay::RelayHandler>>>,
}

impl RaftNode {
    /// Starts an openraft instance for every group in which this node votes.
    ///
    /// # Errors
    /// Invalid Raft settings or a storage failure while loading a group.
    pub async fn start(
        cfg: &ClusterConfig,
        id: NodeId,
        engine: &Engine,
        tls: Option<&Arc<crate::tls::Tls>>,
    ) -> Result<Arc<Self>, RaftNodeError> {
        let addrs: BTreeMap<NodeId, String> = cfg
            .nodes
            .iter()
            .map(|n| (n.id, n.raft_addr.clone()))
            .collect();
        let peer_list: Vec<(NodeId, String)> = addrs.iter().map(|(k, v)| (*k, v.clone())).collect();
        let pinned = cfg
            .groups()
            .iter()
            .filter(|g| g.residency == Some(Residency::Hard))
            .filter_map(|g| {
                let region = g.region.clone()?;
                let nodes = cfg
                    .nodes
                    .iter()
                    .filter(|n| n.region == region)
                    .map(|n| n.id)
                    .collect();
                Some(Pinned {
                    group: g.id.0,
                    region,
                    nodes,
                })
            })
            .collect();
        let peers =
            Arc::new(Peers::new(id, &peer_list, pinned, tls).map_err(RaftNodeError::Internal)?);
        let tuning = &cfg.raft;
        let meta_epoch = Arc::new(AtomicU64::new(0));
        let admitted = Self::load_admission(cfg, id, engine)?;
        let vote_hold = Duration::from_millis(tuning.election_timeout_max_ms);
        // See `lease`: followers refuse votes for `election_timeout_max` after a
        // heartbeat; half of it is the leader's, half is margin.
        let lease_length = vote_hold / 2;
        let mut groups = HashMap::new();
        for spec in cfg.groups().iter().filter(|g| g.has_voter(id)) {
            let config = openraft::Config {
                cluster_name: format!("{}/{}", cfg.cluster_name, spec.name),
                heartbeat_interval: tuning.heartbeat_interval_ms,
                election_timeout_min: tuning.election_timeout_min_ms,
                election_timeout_max: tuning.election_timeout_max_ms,
                install_snapshot_timeout: 10_000,
                snapshot_policy: SnapshotPolicy::LogsSinceLast(tuning.snapshot_logs_since_last),
                max_in_snapshot_log_to_keep: tuning.max_logs_kept_after_snapshot,
                // Only an admitted node campaigns (see `is_admitted`), and not
                // before its vote hold ends (`is_holding_votes`).
                enable_elect: false,
                // An entry may carry a batch of writes up to 1 MiB
                // (`propose_batch`): 64 of them stay far below the peer
                // channel's 256 MiB message limit.
                max_payload_entries: 64,
                ..openraft::Config::default()
            }
            .validate()
            .map_err(|e| RaftNodeError::Internal(format!("raft config: {e}")))?;
            let log_store = LogStore::new(engine.log(spec.id.0));
            let committed = log_store.committed_gauge();
            let lease = Lease::new(lease_length, log_store.vote_counter());
            let last_log = log_store.last_index_gauge();
            let sm = StateMachine::new(
                engine.state(spec.id.0),
                Arc::clone(&meta_epoch),
                spec.id == META_GROUP,
            );
            let applied = sm.applied_gauge();
            let network = NetworkFactory::new(Arc::clone(&peers), spec.id.0);
            let raft = Raft::new(id, Arc::new(config), network, log_store, sm)
                .await
                .map_err(|e| RaftNodeError::Internal(format!("group {}: {e}", spec.name)))?;
            let leader = Arc::new(LeaderReads::new(id, spec.id.0, &raft, lease, last_log));
            let proposals = ProposalBatcher::new(id, spec.id.0, raft.clone(), COMMIT_TIMEOUT);
            groups.insert(
                spec.id,
                Group {
                    spec: spec.clone(),
                    raft,
                    state: engine.state(spec.id.0),
                    committed,
                    applied,
                    leader,
                    proposals,
                },
            );
        }
        let node = Arc::new(Self {
            id,
            groups,
            specs: cfg.groups().to_vec(),
            reads: Self::read_batcher(&peers),
            forwards: Forwarder::new(Arc::clone(&peers), FORWARD_TIMEOUT),
            peers,
            addrs,
            next_member: AtomicUsize::new(0),
            meta_epoch,
            engine: engine.clone(),
            admitted: AtomicBool::new(admitted),
            started: Instant::now(),
            vote_hold,
            stopping: tokio::sync::watch::Sender::new(false),
            relay_handler: std::sync::RwLock::new(None),
        });
        let weak = Arc::downgrade(&node);
        let hold_ends = node.started + vote_hold;
        tokio::spawn(async move {
            tokio::time::sleep_until(hold_ends).await;
            if let Some(node) = weak.upgrade().filter(|n| n.is_admitted()) {
                node.enable_elections();
            }
        });
        Ok(node)
    }

    fn enable_elections(&self) {
        for g in self.groups.values() {
            g.raft.runtime_config().elect(true);
        }
    }

    /// Cuts this node off from `nodes` for every group (fault injection; empty heals).
    pub fn set_partition(&self, nodes: std::collections::HashSet<NodeId>) {
        tracing::warn!(
            ?nodes,
            "fault injection: peer traffic with these nodes is dropped"
        );
        self.peers.set_blocked(nodes);
    }

    /// The region `node` is outside of, if `group` is hard-pinned to one.
    pub(crate) fn pinned_away_from(&self, group: u64, node: NodeId) -> Option<&str> {
        self.peers.pinned_away_from(group, node)
    }

    pub(crate) fn is_blocked(&self, node: NodeId) -> bool {
        self.peers.is_blocked(node)
    }

    /// Whether this data dir was admitted when the cluster was initialised.
    /// A data dir created later (a wiped disk, a replaced host) may lack entries it
    /// acknowledged before; if it voted, it could help elect a leader missing an
    /// acknowledged write. So a node that is not admitted replicates and serves
    /// reads but never votes or campaigns (etcd likewise refuses a member whose
    /// data dir was lost until it is removed and re-added).
    #[must_use]
    pub fn is_admitted(&self) -> bool {
        self.admitted.load(Ordering::Acquire)
    }

    /// Whether this node still neither votes nor campaigns because it started less
    /// than `election_timeout_max` ago. A leader's lease (see [`crate::lease`])
    /// counts on every node that acknowledged its heartbeat taking no part in an
    /// election that long after it, restarts included. openraft 0.9.25 already
    /// starts a restarted node's vote clock at its start; this hold keeps the
    /// guarantee independent of that detail (and costs nothing more).
    #[must_use]
    pub fn is_holding_votes(&self) -> bool {
        self.started.elapsed() < self.vote_hold
    }

    /// Reads the admission record; a data dir written before admission records
    /// existed (it has Raft state, no record and no admission-aware marker) is
    /// admitted and recorded as such.
    fn load_admission(
        cfg: &ClusterConfig,
        id: NodeId,
        engine: &Engine,
    ) -> Result<bool, RaftNodeError> {
        let storage = |e: cairn_storage::StorageError| RaftNodeError::Internal(e.to_string());
        if engine.admission().map_err(storage)?.is_some() {
            return Ok(true);
        }
        let mut has_state = false;
        for spec in cfg.groups().iter().filter(|g| g.has_voter(id)) {
            let log = engine.log(spec.id.0);
            has_state |= log.last().map_err(storage)?.is_some()
                || log
                    .hard_state(cairn_storage::HardState::Vote)
                    .map_err(storage)?
                    .is_some();
        }
        // Only a dir created before admissions existed may be admitted this way: a
        // wiped dir that has since replicated some state is admission-aware and
        // stays unadmitted across restarts.
        if has_state && !engine.is_admission_aware().map_err(storage)? {
            engine.set_admission("legacy").map_err(storage)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Admits this node to the cluster `cluster_id` (from `cairn init`, before any
    /// group is initialised): records it, then lets every group campaign and vote.
    ///
    /// # Errors
    /// Already admitted to another cluster initialisation, or a storage failure.
    pub(crate) async fn admit(&self, cluster_id: &str) -> Result<(), String> {
        if !self.is_admitted() {
            // Admission happens before any group is initialised; a node that
            // already replicates an initialised group joined afterwards (a wiped
            // disk) and must not be admitted by a stray or replayed request.
            for g in self.groups.values() {
                if g.raft.is_initialized().await.map_err(|e| e.to_string())? {
                    return Err(format!(
                        "node {} already holds an initialised group; it joined after \
                         `cairn init` and is not admitted",
                        self.id
                    ));
                }
            }
        }
        match self.engine.admission().map_err(|e| e.to_string())? {
            Some(existing) if existing != cluster_id => {
                return Err(format!(
                    "node {} was admitted by another initialisation ({existing})",
                    self.id
                ))
            }
            Some(_) => {}
            None => self
                .engine
                .set_admission(cluster_id)
                .map_err(|e| e.to_string())?,
        }
        self.admitted.store(true, Ordering::Release);
        if self.is_holding_votes() {
            // Enabled when the hold ends (by this task; the one `start` spawned
            // may have looked before `admitted` was set). Enabling twice is
            // harmless.
            let groups: Vec<Raft> = self.groups.values().map(|g| g.raft.clone()).collect();
            let hold_ends = self.started + self.vote_hold;
            tokio::spawn(async move {
                tokio::time::sleep_until(hold_ends).await;
                for raft in groups {
                    raft.runtime_config().elect(true);
                }
            });
        } else {
            self.enable_elections();
        }
        Ok(())
    }

    /// Changes whenever this node's replica of `meta` changes (an applied command
    /// or an installed snapshot): a cache of `meta` records read when the epoch was
    /// `e` is current while the epoch is still `e`. The epoch moves before the
    /// change's index counts as applied, so after [`Self::read_barrier_since`] the
    /// epoch reflects every change the barrier waited for.
    #[must_use]
    pub fn meta_epoch(&self) -> u64 {
        self.meta_epoch.load(Ordering::Acquire)
    }

    #[must_use]
    pub fn id(&self) -> NodeId {
        self.id
    }

    fn spec(&self, group: GroupId) -> Result<&GroupSpec, RaftNodeError> {
        self.specs
            .iter()
            .find(|s| s.id == group)
            .ok_or(RaftNodeError::UnknownGroup(group.0))
    }

    /// A member of `group` to relay through, for a node that is not one.
    fn pick_member(&self, group: GroupId) -> Result<NodeId, RaftNodeError> {
        let voters = self.spec_voters(group)?;
        voters
            .get(self.next_member() % voters.len().max(1))
            .copied()
            .ok_or(RaftNodeError::NoLeader { group: group.0 })
    }

    /// The voters of `group`, as the config places them.
    fn spec_voters(&self, group: GroupId) -> Result<&[NodeId], RaftNodeError> {
        Ok(&self.spec(group)?.voters)
    }

    /// The next value of the round-robin cursor over a group's members.
    fn next_member(&self) -> usize {
        self.next_member.fetch_add(1, Ordering::Relaxed)
    }

    /// Applies `op` to `group` through its leader, wherever that is, retrying while
    /// no leader is known. Returns the outcome decided by the log, typed as the
    /// command declares ([`Op`]).
    ///
    /// # Errors
    /// [`RaftNodeError::NoLeader`] after the deadline (nothing applied),
    /// [`RaftNodeError::OutcomeUnknown`] if the command may have been applied,
    /// [`RaftNodeError::Internal`] if the log answered another family's outcome.
    pub async fn write<O: Op>(&self, group: GroupId, op: O) -> Result<O::Outcome, RaftNodeError> {
        let cmd: Command = op.into();
        let deadline = Instant::now() + REQUEST_DEADLINE;
        let mut pause = Duration::from_millis(10);
        let outcome = loop {
            match self.write_once(group, &cmd, 0).await {
                Err(e) if e.is_retryable() && Instant::now() + pause < deadline => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
                other => break other?,
            }
        };
        O::outcome(outcome).ok_or_else(|| wrong_family(group, "command"))
    }

    /// One attempt: propose locally if this node leads, otherwise forward once.
    pub(crate) async fn write_once(
        &self,
        group: GroupId,
        cmd: &Command,
        hops: u32,
    ) -> Result<Outcome, RaftNodeError> {
        let target = match self.groups.get(&group) {
            // Propose only where this node believes it leads: a follower's
            // `client_write` would answer `ForwardToLeader` too, but that answer is
            // ambiguous (the entry may have been truncated here while another node
            // holds it and may still commit it: forwarding could apply it twice),
            // so the unambiguous case never reaches it. Proposals are batched
            // (`propose_batch`), which checks leadership again before proposing
            // and reports that ambiguous answer as "outcome unknown".
            Some(g) if g.raft.metrics().borrow().current_leader == Some(self.id) => {
                return g.proposals.propose(cmd.clone()).await;
            }
            Some(g) => g
                .raft
                .metrics()
                .borrow()
                .current_leader
                .filter(|l| *l != self.id),
            None => Some(self.pick_member(group)?),
        };
        match target {
            Some(node) if hops < MAX_HOPS => {
                self.forwards
                    .forward(node, group.0, hops + 1, cmd.clone())
                    .await
            }
            _ => Err(RaftNodeError::NoLeader { group: group.0 }),
        }
    }

    /// Runs `query` against `group`'s state, linearizably, from any node, with its
    /// answer typed as the query declares ([`Read`]).
    ///
    /// # Errors
    /// [`RaftNodeError::NoLeader`] if no leader confirmed the read in time;
    /// [`RaftNodeError::Internal`] if the state machine answered another query.
    pub async fn read<R: Read>(
        &self,
        group: GroupId,
        query: R,
    ) -> Result<R::Answer, RaftNodeError> {
        self.read_since(group, query, Instant::now()).await
    }

    /// [`Self::read`] for a read that began at `since` on this node: the moment
    /// its client request arrived, or any later moment. Linearizability only asks
    /// that the read index come from a leadership confirmation that started after
    /// that, so a read-index round another read started after `since` may serve
    /// this one too (see [`crate::read_batch`]). Two reads of one request with the
    /// same `since` are each linearizable, not a snapshot taken at one moment.
    ///
    /// `since` must not be earlier than the end of any write the same request
    /// made before this read, or the read could miss that write.
    ///
    /// # Errors
    /// As [`Self::read`].
    pub async fn read_since<R: Read>(
        &self,
        group: GroupId,
        query: R,
        since: Instant,
    ) -> Result<R::Answer, RaftNodeError> {
        let query: Query = query.into();
        let answer = Self::retry_read(|| self.query_once(group, &query, 0, since)).await?;
        R::answer(answer).ok_or_else(|| wrong_family(group, "query"))
    }

    /// Waits until this node's replica of `group` reflects every write a read
    /// that began at `since` must see (as [`Self::read_since`] does before it
    /// reads): a caller may then read state derived from the group on this node,
    /// such as a cache it invalidates on every change the group applies.
    ///
    /// # Errors
    /// [`RaftNodeError::UnknownGroup`] if this node has no replica of `group`;
    /// else as [`Self::read`].
    pub async fn read_barrier_since(
        &self,
        group: GroupId,
        since: Instant,
    ) -> Result<(), RaftNodeError> {
        Self::retry_read(|| async {
            let g = self
                .groups
                .get(&group)
                .ok_or(RaftNodeError::UnknownGroup(group.0))?;
            self.catch_up(g, group, since).await
        })
        .await
    }

    /// Runs a read attempt until it succeeds, fails for good, or the request
    /// deadline nears: reads change nothing, so every transient failure may be
    /// retried.
    async fn retry_read<T, F, Fut>(mut attempt: F) -> Result<T, RaftNodeError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, RaftNodeError>>,
    {
        let deadline = Instant::now() + REQUEST_DEADLINE;
        let mut pause = Duration::from_millis(10);
        loop {
            match attempt().await {
                // Reads change nothing: every failure may be retried.
                Err(e)
                    if !matches!(
                        e,
                        RaftNodeError::UnknownGroup(_)
                            | RaftNodeError::ShuttingDown
                            | RaftNodeError::Internal(_)
                            | RaftNodeError::PinnedAway { .. }
                    ) && Instant::now() + pause < deadline =>
                {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
                Err(RaftNodeError::OutcomeUnknown { group, .. }) => {
                    return Err(RaftNodeError::NoLeader { group })
                }
                other => return other,
            }
        }
    }

    /// One attempt at [`Self::read_since`]; `hops` counts the nodes it was
    /// relayed through.
    pub(crate) async fn query_once(
        &self,
        group: GroupId,
        query: &Query,
        hops: u32,
        since: Instant,
    ) -> Result<Answer, RaftNodeError> {
        let Some(g) = self.groups.get(&group) else {
            if let Some(region) = self.pinned_away(group) {
                // Its members refuse this node's queries: the request that
                // needs them is served by them instead (`crate::relay`).
                return Err(RaftNodeError::PinnedAway {
                    group: group.0,
                    region: region.to_owned(),
                });
            }
            if hops >= MAX_HOPS {
                return Err(RaftNodeError::NoLeader { group: group.0 });
            }
            let member = self.pick_member(group)?;
            return self
                .peers
                .call::<_, Result<Answer, RaftNodeError>>(
                    member,
                    Rpc::Query,
                    group.0,
                    hops + 1,
                    query,
                    FORWARD_TIMEOUT,
                )
                .await
                .map_err(|_| RaftNodeError::NoLeader { group: group.0 })?;
        };
        self.catch_up(g, group, since).await?;
        if !query.is_scan() {
            // A point read is a few RocksDB gets (memtable or block cache): cheaper
            // inline than the two thread hand-offs of the blocking pool.
            return execute(&g.state, query);
        }
        let state = g.state.clone();
        let query = query.clone();
        tokio::task::spawn_blocking(move || execute(&state, &query))
            .await
            .map_err(|e| RaftNodeError::Internal(e.to_string()))?
    }

    /// Waits until `g`, this node's replica of `group`, has applied every write
    /// acknowledged before `since`.
    async fn catch_up(
        &self,
        g: &Group,
        group: GroupId,
        since: Instant,
    ) -> Result<(), RaftNodeError> {
        // Read index: the leader confirms it still leads (a quorum round) and names
        // the commit index; once this replica has applied that far, its state
        // reflects every write acknowledged before the read began.
        let leader = g.raft.metrics().borrow().current_leader;
        let read_index = match leader {
            Some(l) if l == self.id => g.leader.read_index().await,
            Some(l) => self.reads.read_index_since(l, group.0, since).await,
            None => None,
        }
        .ok_or(RaftNodeError::NoLeader { group: group.0 })?;
        if g.applied.load(Ordering::Acquire) < read_index {
            g.raft
                .wait(Some(REQUEST_DEADLINE))
                .applied_index_at_least(Some(read_index), "linearizable read")
                .await
                .map_err(|_| RaftNodeError::NoLeader { group: group.0 })?;
        }
        Ok(())
    }

    /// Batches this node's read-index requests to the leaders of the groups it
    /// reads (whose own batchers answer, see [`Self::leader_read_indexes`]).
    fn read_batcher(peers: &Arc<Peers>) -> ReadBatcher {
        let peers = Arc::clone(peers);
        ReadBatcher::new(move |leader, groups: Vec<u64>| {
            let peers = Arc::clone(&peers);
            async move {
                let answers = peers
                    .read_indexes::<Vec<Result<u64, RaftNodeError>>>(
                        leader,
                        &groups,
                        FORWARD_TIMEOUT,
                    )
                    .await
                    .unwrap_or_default();
                answers.into_iter().map(Result::ok).collect()
            }
        })
    }

    /// Read indexes as only the leader can give them (from its lease, or after
    /// confirming leadership with a quorum): the indexes linearizable reads of
    /// `groups` must wait for, one answer per group, in order. Answers peers'
    /// `ReadIndex` calls. The answer goes out once every group has one, so a
    /// group that cannot confirm within [`GROUP_READ_INDEX_TIMEOUT`] (its core
    /// stalled) answers "no leader" then, rather than failing the other groups'
    /// reads with it at the follower's round deadline.
    pub(crate) async fn leader_read_indexes(
        &self,
        groups: &[u64],
    ) -> Vec<Result<u64, RaftNodeError>> {
        futures::future::join_all(groups.iter().map(|&group| async move {
            let g = self
                .groups
                .get(&GroupId(group))
                .ok_or(RaftNodeError::UnknownGroup(group))?;
            tokio::time::timeout(GROUP_READ_INDEX_TIMEOUT, g.leader.read_index())
                .await
                .ok()
                .flatten()
                .ok_or(RaftNodeError::NoLeader { group })
        }))
        .await
    }

    /// Resolves once [`Self::shutdown`] has begun.
    pub(crate) fn stopping(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut stopping = self.stopping.subscribe();
        async move {
            // An error means the node is gone: stopped as well.
            let _ = stopping.wait_for(|s| *s).await;
        }
    }

    pub(crate) fn raft(&self, group: u64) -> Option<&Raft> {
        self.groups.get(&GroupId(group)).map(|g| &g.raft)
    }

    /// Initialises a group's membership on this node (it must be a voter).
    pub(crate) async fn init_local(
        &self,
        group: GroupId,
        members: BTreeMap<NodeId, BasicNode>,
    ) -> Result<InitOutcome, String> {
        let g = self
            .groups
            .get(&group)
            .ok_or_else(|| format!("node {} is not a voter of group {group}", self.id))?;
        match g.raft.initialize(members).await {
            Ok(()) => Ok(InitOutcome::Initialized),
            Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {
                Ok(InitOutcome::AlreadyInitialized)
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// Whether this node's replica of `group` has a membership (was initialised).
    pub(crate) async fn is_initialized_local(&self, group: GroupId) -> Result<bool, String> {
        let g = self
            .groups
            .get(&group)
            .ok_or_else(|| format!("node {} is not a voter of group {group}", self.id))?;
        g.raft.is_initialized().await.map_err(|e| e.to_string())
    }

    /// Admits every node of the config to a new cluster id (this node first).
    async fn admit_all(&self) -> Result<(), InitError> {
        // A retried init (some node was unreachable last time) reuses the id this
        // node was admitted with, so nodes admitted then accept it again.
        let existing = self.engine.admission().map_err(|e| InitError::Failed {
            group: 0,
            node: self.id,
            detail: e.to_string(),
        })?;
        let cluster_id = existing.unwrap_or_else(|| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            format!("{nanos:x}-{}", self.id)
        });
        self.admit(&cluster_id)
            .await
            .map_err(|detail| InitError::Failed {
                group: 0,
                node: self.id,
                detail,
            })?;
        for &node in self.addrs.keys().filter(|n| **n != self.id) {
            self.peers
                .call::<_, Result<(), String>>(
                    node,
                    Rpc::Admit,
                    0,
                    0,
                    &cluster_id,
                    Duration::from_secs(3),
                )
                .await
                .map_err(|e| InitError::Unreachable {
                    node,
                    detail: e.to_string(),
                })?
                .map_err(|detail| InitError::Failed {
                    group: 0,
                    node,
                    detail,
                })?;
        }
        Ok(())
    }

    /// `cairn init`: initialises every group's membership from the config, exactly once.
    /// Every voter must be up; groups already initialised are left alone.
    ///
    /// # Errors
    /// [`InitError::AlreadyInitialized`] if every group already was; a node unreachable;
    /// a group failing to initialise.
    pub async fn init_cluster(&self) -> Result<Vec<(String, InitOutcome)>, InitError> {
        // Which groups already have a membership (every voter is asked).
        let mut initialized = Vec::with_capacity(self.specs.len());
        for spec in &self.specs {
            let mut any = false;
            for &voter in &spec.voters {
                let state = if voter == self.id {
                    self.is_initialized_local(spec.id).await
                } else {
                    self.peers
                        .call::<_, Result<bool, String>>(
                            voter,
                            Rpc::GroupState,
                            spec.id.0,
                            0,
                            &(),
                            Duration::from_secs(3),
                        )
                        .await
                        .map_err(|e| InitError::Unreachable {
                            node: voter,
                            detail: e.to_string(),
                        })?
                };
                any |= state.map_err(|detail| InitError::Failed {
                    group: spec.id.0,
                    node: voter,
                    detail,
                })?;
            }
            initialized.push(any);
        }
        // A brand-new cluster: admit every node first (only admitted nodes vote),
        // so that a data dir created after this moment never is.
        if !initialized.iter().any(|i| *i) {
            self.admit_all().await?;
        }
        let mut report = Vec::new();
        for (spec, initialized) in self.specs.iter().zip(initialized) {
            if initialized {
                report.push((spec.name.clone(), InitOutcome::AlreadyInitialized));
                continue;
            }
            let members: BTreeMap<NodeId, BasicNode> = spec
                .voters
                .iter()
                .map(|v| {
                    (
                        *v,
                        BasicNode::new(self.addrs.get(v).cloned().unwrap_or_default()),
                    )
                })
                .collect();
            let first = spec.voters.first().copied().unwrap_or(self.id);
            let outcome = if first == self.id {
                self.init_local(spec.id, members).await
            } else {
                self.peers
                    .call::<_, Result<InitOutcome, String>>(
                        first,
                        Rpc::InitGroup,
                        spec.id.0,
                        0,
                        &members,
                        Duration::from_secs(5),
                    )
                    .await
                    .map_err(|e| InitError::Unreachable {
                        node: first,
                        detail: e.to_string(),
                    })?
            }
            .map_err(|detail| InitError::Failed {
                group: spec.id.0,
                node: first,
                detail,
            })?;
            report.push((spec.name.clone(), outcome));
        }
        if report
            .iter()
            .all(|(_, o)| *o == InitOutcome::AlreadyInitialized)
        {
            return Err(InitError::AlreadyInitialized);
        }
        Ok(report)
    }

    /// True once every hosted group knows a leader.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.groups
            .values()
            .all(|g| g.raft.metrics().borrow().current_leader.is_some())
    }

    /// Status of every group hosted here.
    #[must_use]
    pub fn status(&self) -> Vec<GroupStatus> {
        let mut out: Vec<GroupStatus> = self.groups.values().map(group_status).collect();
        out.sort_by_key(|s| s.group_id);
        out
    }

    /// Builds a snapshot of every group hosted here and purges the log behind it
    /// (operators: before a backup; tests: to prove what snapshots contain).
    ///
    /// # Errors
    /// A group did not finish its snapshot within the deadline.
    pub async fn compact(&self) -> Result<Vec<(String, Option<u64>)>, RaftNodeError> {
        let mut out = Vec::new();
        let mut groups: Vec<&Group> = self.groups.values().collect();
        groups.sort_by_key(|g| g.spec.id);
        for g in groups {
            let applied = g.raft.metrics().borrow().last_applied.map(|l| l.index);
            g.raft
                .trigger()
                .snapshot()
                .await
                .map_err(|e| RaftNodeError::Internal(format!("{}: {e}", g.spec.name)))?;
            let mut rx = g.raft.metrics();
            // The watch guard is not Send: keep it inside this statement.
            let built = match tokio::time::timeout(
                REQUEST_DEADLINE,
                rx.wait_for(|m| m.snapshot.map(|l| l.index) >= applied),
            )
            .await
            {
                Ok(Ok(m)) => Some(m.snapshot),
                _ => None,
            };
            let snapshot = match built {
                Some(s) => s,
                None => {
                    return Err(RaftNodeError::Internal(format!(
                        "{}: snapshot not built within {REQUEST_DEADLINE:?}",
                        g.spec.name
                    )))
                }
            };
            if let Some(s) = snapshot {
                g.raft
                    .trigger()
                    .purge_log(s.index)
                    .await
                    .map_err(|e| RaftNodeError::Internal(format!("{}: {e}", g.spec.name)))?;
            }
            out.push((g.spec.name.clone(), snapshot.map(|l| l.index)));
        }
        Ok(out)
    }

    /// Stops every group's Raft instance.
    pub async fn shutdown(&self) {
        self.stopping.send_replace(true);
        // The handler holds this node (through the services): drop it, so the
        // node, and the database it holds, can be dropped.
        self.relay_handler
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        for g in self.groups.values() {
            if let Err(e) = g.raft.shutdown().await {
                tracing::warn!(group = %g.spec.name, error = %e, "raft shutdown");
            }
        }
    }
}

fn group_status(g: &Group) -> GroupStatus {
    let m = g.raft.metrics().borrow().clone();
    let membership = m.membership_config.membership();
    let last_log = m.last_log_index.unwrap_or(0);
    let replication = m
        .replication
        .as_ref()
        .map(|r| {
            r.iter()
                .map(|(node, matched)| PeerProgress {
                    node: *node,
                    matched_index: matched.map(|l| l.index),
                    lag: last_log.saturating_sub(matched.map_or(0, |l| l.index)),
                })
                .collect()
        })
        .unwrap_or_default();
    let role = format!("{:?}", m.state).to_lowercase();
    GroupStatus {
        group: g.spec.name.clone(),
        group_id: g.spec.id.0,
        region: g.spec.region.clone(),
        residency: g.spec.residency.map(|r| r.as_str().to_owned()),
        role,
        leader: m.current_leader,
        term: m.current_term,
        commit_index: g.committed.load(Ordering::Relaxed),
        applied_index: m.last_applied.map_or(0, |l| l.index),
        last_log_index: last_log,
        snapshot_index: m.snapshot.map(|l| l.index),
        purged_index: m.purged.map(|l| l.index),
        voters: membership.voter_ids().collect(),
        learners: membership.learner_ids().collect(),
        borrowed: g.spec.borrowed.clone(),
        replication,
    }
}

/// The one place a wrong-family answer is caught: the state machine answered a
/// command or query with another's outcome (a bug, never a client error).
fn wrong_family(group: GroupId, what: &str) -> RaftNodeError {
    tracing::error!(
        group = group.0,
        what,
        "the state machine answered another family"
    );
    RaftNodeError::Internal(format!("unexpected {what} answer"))
}

/// Runs `query` on this replica's state (the dispatch is the state machine's).
fn execute(state: &GroupState, query: &Query) -> Result<Answer, RaftNodeError> {
    sm::read(state, query).map_err(|e| {
        tracing::error!(error = %e, group = state.group(), "state machine read failed");
        RaftNodeError::Internal("storage read failed".to_owned())
    })
}

/// Request relaying for hard-pinned groups (see [`crate::relay`]).
impl RaftNode {
    /// Serves relayed requests with `handler` from now on, until
    /// [`Self::shutdown`] (before it is set, relayed requests are refused).
    pub fn serve_relays(&self, handler: Arc<dyn crate::relay::RelayHandler>) {
        *self
            .relay_handler
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(handler);
    }

    /// The handler for relayed requests, if set.
    pub(crate) fn relay_handler(&self) -> Option<Arc<dyn crate::relay::RelayHandler>> {
        self.relay_handler
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The region `group` is hard-pinned to, if this node is outside it: then
    /// nothing of `group` is read here, and requests that need it are relayed.
    #[must_use]
    pub fn pinned_away(&self, group: GroupId) -> Option<&str> {
        self.pinned_away_from(group.0, self.id())
    }

    /// Whether this node leads `group` now: a hint for background work that one
    /// node should do (leadership may move at any moment after).
    #[must_use]
    pub fn leads(&self, group: GroupId) -> bool {
        self.groups
            .get(&group)
            .is_some_and(|g| g.raft.metrics().borrow().current_leader == Some(self.id))
    }

    /// Whether this node holds a replica of `group` (is one of its voters).
    #[must_use]
    pub fn holds_replica(&self, group: GroupId) -> bool {
        self.spec_voters(group)
            .is_ok_and(|voters| voters.contains(&self.id()))
    }

    /// Whether some group is hard-pinned to a region this node is outside of
    /// (only then can a request of this node's clients need relaying).
    #[must_use]
    pub fn relays_any(&self) -> bool {
        self.specs.iter().any(|s| self.pinned_away(s.id).is_some())
    }

    /// Relays the encoded client request `payload` to a member of `group` (a
    /// group hard-pinned away from this node) and returns its encoded answer.
    /// Members are tried in turn while a call certainly did not reach one.
    ///
    /// # Errors
    /// [`RaftNodeError::NoLeader`] when no member could be reached (nothing
    /// was served); [`RaftNodeError::OutcomeUnknown`] when a member may have
    /// served it but its answer was lost; the member's own refusal.
    pub async fn relay(&self, group: GroupId, payload: Vec<u8>) -> Result<Vec<u8>, RaftNodeError> {
        let voters = self.spec_voters(group)?;
        let start = self.next_member();
        let mut last = None;
        for i in 0..voters.len() {
            let member = voters[(start + i) % voters.len()];
            if member == self.id() {
                continue;
            }
            let answer = self
                .peers
                .call::<_, Result<Vec<u8>, RaftNodeError>>(
                    member,
                    Rpc::Relay,
                    group.0,
                    0,
                    &payload,
                    crate::relay::RELAY_TIMEOUT,
                )
                .await;
            match answer {
                Ok(answer) => return answer,
                Err(e @ crate::network::PeerCallError::NotSent { .. }) => last = Some(e),
                Err(e) => {
                    return Err(RaftNodeError::OutcomeUnknown {
                        group: group.0,
                        detail: format!("relayed request: {e}"),
                    })
                }
            }
        }
        tracing::debug!(group = group.0, error = ?last, "no member reachable to relay to");
        Err(RaftNodeError::NoLeader { group: group.0 })
    }
}
